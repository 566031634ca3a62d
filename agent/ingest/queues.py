"""The bounded queue between one decode thread and the analysis stage."""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Generic, TypeVar

T = TypeVar("T")


class FrameQueue(Generic[T]):
    """A bounded FIFO with two policies when full.

    drop_oldest=True (live sources): `put` never blocks; the oldest item is evicted, so the
    consumer always sees the newest frames and memory stays bounded.
    drop_oldest=False (files): `put` waits for room (backpressure: nothing is lost) until
    `close()` is called.
    """

    def __init__(self, maxsize: int, drop_oldest: bool) -> None:
        if maxsize < 1:
            raise ValueError("maxsize must be >= 1")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self._items: deque[T] = deque()
        self._cond = threading.Condition()
        self._closed = False

    def put(self, item: T) -> int | None:
        """Add an item; returns how many old items were evicted to make room (0 or 1), or
        None when the queue is closed (also while waiting for room) and the item discarded.
        """
        with self._cond:
            evicted = 0
            if self.drop_oldest:
                while len(self._items) >= self.maxsize:
                    self._items.popleft()
                    evicted += 1
            else:
                while len(self._items) >= self.maxsize and not self._closed:
                    self._cond.wait()
            if self._closed:
                return None
            self._items.append(item)
            self._cond.notify_all()
            return evicted

    def get(self, timeout: float | None = 0.0) -> T | None:
        """The oldest item, waiting up to `timeout` seconds (None: until one comes or close)."""
        with self._cond:
            if timeout is None:
                while not self._items and not self._closed:
                    self._cond.wait()
            elif timeout > 0:
                deadline = time.monotonic() + timeout
                while not self._items and not self._closed:
                    left = deadline - time.monotonic()
                    if left <= 0:
                        break
                    self._cond.wait(left)
            if not self._items:
                return None
            item = self._items.popleft()
            self._cond.notify_all()
            return item

    def close(self, discard: bool = False) -> None:
        """Wake every waiter; later puts are ignored. `discard` also drops what is queued."""
        with self._cond:
            self._closed = True
            if discard:
                self._items.clear()
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
