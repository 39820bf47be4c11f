"""Keep the idle daemon small: large transient buffers go back to the system.

glibc serves big allocations with ``mmap`` and returns them on ``free``, but after the first
such block is freed it raises its threshold to that block's size, so the next ones come from
the heap and stay resident. The login hash (scrypt, 16 MiB per check) would then leave 16 MiB
behind after the first login. Fixing the threshold turns the dynamic adjustment off.
"""

from __future__ import annotations

import ctypes
import ctypes.util

#: ``M_MMAP_THRESHOLD`` in glibc's malloc.h.
_M_MMAP_THRESHOLD = -3
_THRESHOLD = 256 * 1024


def return_large_blocks_to_the_system() -> bool:
    """Fix glibc's mmap threshold; False (and nothing done) on another C library."""
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    return bool(mallopt(_M_MMAP_THRESHOLD, _THRESHOLD))
