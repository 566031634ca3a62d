"""Fixtures for ingest tests: readers that are always stopped at the end of a test."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from agent.config.ingest import IngestConfig, StreamConfig
from agent.ingest import StreamReader

ReaderFactory = Callable[..., StreamReader]


@pytest.fixture
def start_reader() -> Iterator[ReaderFactory]:
    """Factory: `start_reader(url_or_stream_config, **ingest_settings)` -> a started reader.

    Tests default to short timeouts so failures show quickly; every reader is stopped (and
    its thread checked) at the end of the test.
    """
    readers: list[StreamReader] = []

    def start(stream: str | StreamConfig, wakeup=None, **settings) -> StreamReader:
        if isinstance(stream, str):
            stream = StreamConfig(url=stream)
        defaults = {
            "open_timeout_s": 5.0,
            "watchdog_s": 3.0,
            "reconnect_initial_s": 0.2,
            "reconnect_max_s": 1.0,
        }
        reader = StreamReader(stream, IngestConfig(**{**defaults, **settings}), wakeup=wakeup)
        readers.append(reader)
        reader.start()
        return reader

    yield start
    for reader in readers:
        reader.stop(timeout=5.0)
    leaked = [r.stream_id for r in readers if r.alive]
    assert not leaked, f"decode threads still running after stop(): {leaked}"
