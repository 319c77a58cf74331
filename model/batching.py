"""Dynamic batching: calls that arrive while the model is busy are run together in one batch.

A caller thread hands its (already validated) request to `Batcher.__call__` and blocks until
its own result is ready. When no batch is running, the caller runs one at once with whatever
is waiting (a lone request is never held back by a timer); while a batch runs, new arrivals
queue up and the first of them leads the next batch. Each request gets its own result or its
own exception: `fn` returns one entry per request, and an entry that is an exception is raised
in that request's thread only. `on_idle` runs after a batch when nobody is waiting (the app
trims the heap there: `model.serving.memory.trim`).
"""
from __future__ import annotations

import threading
from typing import Any, Callable


class _Slot:
    __slots__ = ("item", "done", "value")

    def __init__(self, item: Any) -> None:
        self.item, self.done, self.value = item, False, None


class Batcher:
    """fn(list of items) -> list of results (same length; an Exception entry is raised to its caller)."""

    def __init__(self, fn: Callable[[list], list], max_batch: int = 8,
                 on_idle: Callable[[], object] | None = None) -> None:
        if max_batch < 1:
            raise ValueError(f"max_batch must be >= 1, got {max_batch}")
        self.fn, self.max_batch, self.on_idle = fn, max_batch, on_idle
        self._cv = threading.Condition()
        self._pending: list[_Slot] = []
        self._busy = False
        self.batch_sizes: list[int] = []  # sizes of the batches run (the last 1,000), for tests and benchmarks

    def __call__(self, item: Any) -> Any:
        slot = _Slot(item)
        with self._cv:
            self._pending.append(slot)
            while True:
                while self._busy and not slot.done:
                    self._cv.wait()
                if slot.done:
                    return self._unwrap(slot)
                # nobody is running a batch and ours is still waiting: lead the next one (FIFO)
                batch, self._pending = self._pending[:self.max_batch], self._pending[self.max_batch:]
                self._busy = True
                self._run(batch)  # releases the lock while the model runs
                if slot.done:
                    return self._unwrap(slot)

    def _run(self, batch: list[_Slot]) -> None:
        """Called holding the lock; runs fn without it, then hands out the results."""
        self._cv.release()
        try:
            try:
                results = self.fn([s.item for s in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"batch function returned {len(results)} results for {len(batch)} requests")
            except BaseException as e:  # noqa: BLE001 - every caller of a failed batch sees its error
                results = [e] * len(batch)
        finally:
            self._cv.acquire()
        for s, r in zip(batch, results):
            s.value, s.done = r, True
        self.batch_sizes = (self.batch_sizes + [len(batch)])[-1000:]
        idle = not self._pending
        if idle and self.on_idle is not None:  # a burst is over: e.g. hand freed memory back
            self._cv.release()
            try:
                self.on_idle()
            except Exception:  # noqa: BLE001 - housekeeping must not fail a request
                pass
            finally:
                self._cv.acquire()
        self._busy = False
        self._cv.notify_all()

    @staticmethod
    def _unwrap(slot: _Slot) -> Any:
        if isinstance(slot.value, BaseException):
            raise slot.value
        return slot.value


__all__ = ["Batcher"]
