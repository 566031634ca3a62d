"""Video ingest: open sources, decode on one thread per stream, queue frames for analysis.

A `StreamReader` per source (start, get frames, stop); one consumer can wait on many readers
through a shared `threading.Event` passed as `wakeup`. `probe_source` answers "can I open
this URL?" for the CLI.
"""

from agent.ingest.frames import Frame
from agent.ingest.reader import StreamReader, StreamState, StreamStats
from agent.ingest.source import SourceError, probe_source, redact_url

__all__ = [
    "Frame",
    "SourceError",
    "StreamReader",
    "StreamState",
    "StreamStats",
    "probe_source",
    "redact_url",
]
