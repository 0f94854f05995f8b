"""Entry point: `python main.py` opens the desktop app; `python main.py COMMAND ...` runs headless (core/cli.py)."""
from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv:
        from core.cli import main as cli_main

        return cli_main(argv)
    try:
        from gui.app import run
    except ImportError as exc:
        print(f"error: the desktop app needs PySide6 and pyqtgraph ({exc}); "
              "install them with: pip install -e .", file=sys.stderr)
        return 2
    return run()


if __name__ == "__main__":
    sys.exit(main())
