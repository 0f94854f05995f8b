"""Process-wide malloc settings: freed tensor memory is kept for the next training step instead of going back to the
OS and being faulted in again (glibc on Linux; elsewhere nothing changes)."""
from __future__ import annotations

import ctypes
import os
import sys

# glibc's mallopt() parameters (malloc.h)
M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# Blocks under this come from the heap and are reused; up to this much freed memory stays with the process. A training
# step of the tutorial's net allocates and frees ~3 MB in blocks of 0.1-0.7 MB, an evaluation batch up to ~25 MB.
KEEP_BYTES = 64 * 2**20


def keep_freed_memory(keep_bytes: int = KEEP_BYTES) -> bool:
    """Tell glibc's malloc to serve blocks under `keep_bytes` from its heap and keep up to `keep_bytes` of freed
    memory; True when the settings took effect (Linux with glibc), False where there is nothing to set.

    Why: glibc's default adapts its thresholds as the program runs, and in about half of fresh processes a training
    loop ended up mapping and unmapping its activations every step: 35-470 page faults a step, and the tutorial's
    preset took 3.0-4.5 s instead of 2.0 s. This is a setting of the whole process, made once by the program at start
    (main.py does), not by library functions, which leave the process as they found it."""
    try:  # glibc answers "glibc 2.36"; other C libraries and systems have no such name or no mallopt
        if not sys.platform.startswith("linux") or not (os.confstr("CS_GNU_LIBC_VERSION") or "").startswith("glibc"):
            return False
        mallopt = ctypes.CDLL("libc.so.6").mallopt  # glibc's own name for itself (no search: ldconfig takes 10 ms)
    except (ValueError, OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    # mallopt returns 1 on success (setting it again changes nothing); setting either one also turns off glibc's own
    # adapting of both
    return bool(mallopt(M_MMAP_THRESHOLD, keep_bytes)) and bool(mallopt(M_TRIM_THRESHOLD, keep_bytes))
