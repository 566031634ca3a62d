"""Alerts as they are published, for the dashboard's live feed (and the last few for a page
that opens later). Fed from the pipeline thread, read on the service's event loop."""

from __future__ import annotations

import asyncio
import collections
import threading

from agent.alerts.schema import Alert

RECENT_ALERTS = 200


class EventHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.recent: collections.deque[Alert] = collections.deque(maxlen=RECENT_ALERTS)
        self._queues: set[asyncio.Queue[Alert | None]] = set()
        self._loop: asyncio.AbstractEventLoop | None = None

    def bind(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop = loop

    def alert(self, alert: Alert) -> None:
        """Called by the publisher (any thread)."""
        with self._lock:
            self.recent.append(alert)
            loop = self._loop
        if loop is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(self._fan_out, alert)
            except RuntimeError:  # the loop closed meanwhile (shutdown)
                pass

    def find(self, alert_id: str) -> Alert | None:
        """The latest event of an alert that has evidence (its `new`)."""
        with self._lock:
            for alert in reversed(self.recent):
                if alert.alert_id == alert_id and alert.snapshot is not None:
                    return alert
        return None

    def subscribe(self) -> asyncio.Queue[Alert | None]:
        queue: asyncio.Queue[Alert | None] = asyncio.Queue(maxsize=1000)
        self._queues.add(queue)
        return queue

    def unsubscribe(self, queue: asyncio.Queue) -> None:
        self._queues.discard(queue)

    def _fan_out(self, alert: Alert) -> None:
        for queue in list(self._queues):
            if queue.full():  # a reader that stopped reading: it gets a gap, not our memory
                continue
            queue.put_nowait(alert)

    async def close(self, _app=None) -> None:
        for queue in list(self._queues):
            if not queue.full():
                queue.put_nowait(None)
