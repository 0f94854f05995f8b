"""The PySide6 desktop app: widgets that gather input, call the core and show its results."""
from gui.none_guard import protect_none

protect_none()  # before any widget exists: see none_guard.py
