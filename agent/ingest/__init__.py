"""Video ingest: open sources, decode on one thread per stream, queue frames for analysis.

Each source kind is one module behind `agent.ingest.connection` (PyAV containers in
`source`, WebRTC in `webrtc`).

A `StreamReader` per source (start, get frames, stop); one consumer can wait on many readers
through a shared `threading.Event` passed as `wakeup`. `probe_source` answers "can I open
this URL?" for the CLI.
"""

from agent.ingest.connection import SourceError, open_connection, register_source
from agent.ingest.frames import Frame
from agent.ingest.reader import StreamReader, StreamState, StreamStats
from agent.ingest.source import decode_threads_for, probe_source, redact_url

__all__ = [
    "Frame",
    "SourceError",
    "StreamReader",
    "StreamState",
    "StreamStats",
    "decode_threads_for",
    "open_connection",
    "probe_source",
    "redact_url",
    "register_source",
]
