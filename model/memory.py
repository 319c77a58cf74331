"""The app process's memory under load: glibc's allocator, bounded.

Measured (model/EXPERIMENTS.md, `python -m model.loadtest --start-app --clients 32 --requests 5`):
the app's resident memory grew 1,105 -> 1,231 MiB over the load and stayed; with glibc's malloc
arenas capped at 2, 1,101 -> 1,164 MiB. Every thread that allocates under contention gets an
arena of its own (up to 8 per core), and what a request frees inside one is rarely handed back to
the system: memory that is free to Python but still counted against the Space. Capping the arenas
(and trimming after a burst) bounds it; torch's tensors are large blocks served by mmap anyway.
"""
from __future__ import annotations

import ctypes
import ctypes.util

M_ARENA_MAX = -8  # glibc's mallopt parameter numbers (malloc.h)
M_MMAP_THRESHOLD = -3


def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(n: int = 2, mmap_threshold: int | None = None) -> bool:
    """Cap glibc's malloc arenas at n (call before the server starts its threads); mmap_threshold:
    serve every allocation of at least this many bytes by mmap (a fixed threshold: glibc otherwise
    raises it to the size of each large block freed, up to 32 MB, and then keeps tensors of that
    size in the heap after they are freed). False where the C library is not glibc (nothing changes)."""
    libc = _libc()
    if libc is None or libc.mallopt(M_ARENA_MAX, int(n)) != 1:
        return False
    return mmap_threshold is None or libc.mallopt(M_MMAP_THRESHOLD, int(mmap_threshold)) == 1


def trim() -> bool:
    """Hand freed heap memory back to the system (glibc malloc_trim); True if some was released."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)


__all__ = ["limit_malloc_arenas", "trim"]
