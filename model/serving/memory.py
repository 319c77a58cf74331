"""The app process's memory under load: glibc's allocator, bounded.

Measured (model/EXPERIMENTS.md, `python -m model.loadtest`): 8 clients x 8 requests left the app
at +460-620 MiB that stayed; with glibc's arenas capped at 2 and a trim after each burst of
requests, +38-53 MiB at the same speed. Every thread that allocates under contention gets an
arena of its own (up to 8 per core), and what a request frees inside one is rarely handed back to
the system: memory that is free to Python but still counted against the Space. glibc also raises
its mmap threshold after each large block is freed, so freed tensors stay in the heap too (which
is faster: fixing the threshold at 1 MiB cost 20 % of the throughput). Capping the arenas and
trimming once a burst is over (IdleTrim: after 10 s without requests) bounds what stays.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import functools
import threading

M_ARENA_MAX = -8  # glibc's mallopt parameter number (malloc.h)


@functools.cache
def _libc():
    name = ctypes.util.find_library("c")
    if not name:
        return None
    try:
        libc = ctypes.CDLL(name)
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def limit_malloc_arenas(n: int = 2) -> bool:
    """Cap glibc's malloc arenas at n (call before the server starts its threads). False where
    the C library is not glibc (nothing changes there)."""
    libc = _libc()
    return bool(libc is not None and libc.mallopt(M_ARENA_MAX, int(n)) == 1)


def trim() -> bool:
    """Hand freed heap memory back to the system (glibc malloc_trim); True if some was released."""
    libc = _libc()
    return bool(libc is not None and libc.malloc_trim(0) == 1)


class IdleTrim:
    """The app's pipeline.text_to_image.on_idle: `trim` once no batch has ended for `delay` seconds (each call
    starts the countdown again), so memory goes back to the system after a burst, not between the
    requests of one. A trim right after each request handed that request's working memory back, and
    the next request faulted it in again: a default call right after a trim took 259 ms against 232
    after none (2 threads, interleaved in one process); in a thread beside the answer it still held
    up the answer's own allocations (glibc locks the arena it trims)."""

    def __init__(self, delay: float = 10.0):
        self.delay = delay
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()

    def __call__(self) -> None:
        with self._lock:
            if self._timer is not None:
                self._timer.cancel()
            self._timer = threading.Timer(self.delay, lambda: trim())
            self._timer.daemon = True
            self._timer.start()


__all__ = ["IdleTrim", "limit_malloc_arenas", "trim"]
