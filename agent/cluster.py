"""Which agent watches which stream: rendezvous (highest-random-weight) hashing.

Each stream goes to the replica with the highest hash of (stream id, replica). Every agent
computes the same answer from the same list with no coordination; adding a replica moves only
the streams the new one wins (about 1/N of them), removing one moves only its own.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

from agent.config.ingest import StreamConfig


def _weight(stream_id: str, replica: int) -> int:
    digest = hashlib.blake2b(f"{stream_id}\0{replica}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big")


def owner(stream_id: str, replicas: int) -> int:
    """The replica (0..replicas-1) that watches `stream_id`."""
    return max(range(replicas), key=lambda replica: _weight(stream_id, replica))


def my_streams(streams: Iterable[StreamConfig], ordinal: int, replicas: int) -> list[StreamConfig]:
    """The streams replica `ordinal` of `replicas` watches."""
    return [s for s in streams if owner(s.id or "", replicas) == ordinal]
