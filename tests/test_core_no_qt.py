"""House rule 1: every core module imports and works with Qt imports blocked."""
import pkgutil
import subprocess
import sys
from pathlib import Path

import core

ROOT = Path(__file__).resolve().parent.parent

BLOCK_QT = """
import sys
class BlockQt:
    def find_spec(self, name, path=None, target=None):
        if name.split('.')[0] in ('PySide6', 'shiboken6', 'PyQt5', 'PyQt6', 'pyqtgraph', 'qtpy'):
            raise ImportError(f'Qt is blocked: core imported {name}')
sys.meta_path.insert(0, BlockQt())
import importlib
for name in sys.argv[1:]:
    importlib.import_module(name)
from core.models import build_model
from core.predict import Predictor
from core.weights import LoadedWeights
import numpy as np
p = Predictor(LoadedWeights(build_model('tutorial').eval(), 'tutorial', {}, (0.0, 1.0)))
assert p.predict(np.zeros((50, 50), np.uint8)).digit is None
print('core ok without Qt')
"""


def test_every_core_module_imports_without_qt():
    modules = [f"core.{m.name}" for m in pkgutil.iter_modules(core.__path__)]
    assert {"core.data", "core.models", "core.training", "core.weights", "core.preprocess", "core.predict", "core.cli"} <= set(modules)
    run = subprocess.run([sys.executable, "-c", BLOCK_QT, *modules], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "core ok without Qt" in run.stdout
