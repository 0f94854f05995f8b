"""Works around PySide6 6.12.0 on Python < 3.12, whose void methods return None without a reference."""
from __future__ import annotations

import ctypes
import sys

# Every call such as widget.update() then drops one reference to None; with ~60k references after importing torch,
# the interpreter aborts ("none_dealloc: deallocating None") after a few minutes of drawing. Python 3.12 made None
# immortal (PEP 683); on older Pythons we do the same by giving it a reference count no program can use up.
IMMORTAL = 1 << 60


def none_leaks() -> bool:
    """True when calling a void PySide6 method loses a reference to None (measured, not guessed from versions)."""
    from PySide6.QtCore import QObject

    probe = QObject()
    before = sys.getrefcount(None)
    for _ in range(16):
        probe.setObjectName("probe")  # returns void
    return sys.getrefcount(None) < before - 8


def protect_none() -> bool:
    """Make None effectively immortal if (and only if) this PySide6 leaks it; True when it did."""
    if sys.version_info >= (3, 12) or sys.implementation.name != "cpython" or not none_leaks():
        return False
    refcount = ctypes.c_ssize_t.from_address(id(None))  # ob_refcnt is the first field of every CPython object
    if refcount.value < IMMORTAL:
        refcount.value += IMMORTAL
    return True
