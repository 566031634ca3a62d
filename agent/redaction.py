"""Credentials never leave the process: URLs are redacted before logs, alerts and metrics."""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit


_SECRET_PARAM = re.compile(
    r"(?i)((?:^|[?&;])[^=&;]*(?:pass|pwd|secret|token|auth|key|sig|credential)[^=&;]*=)[^&;#]*"
)


def redact_url(url: str) -> str:
    """rtsp://user:pass@host/x -> rtsp://***@host/x, and ?user=a&password=x -> password=***;
    URLs without credentials are unchanged."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return _SECRET_PARAM.sub(r"\1***", re.sub(r"//[^/@]*@", "//***@", url))
    netloc = parts.netloc
    if "@" in netloc:
        netloc = "***@" + netloc.rsplit("@", 1)[1]
    query = _SECRET_PARAM.sub(r"\1***", parts.query) if parts.query else parts.query
    if netloc == parts.netloc and query == parts.query:
        return url
    return urlunsplit((parts.scheme, netloc, parts.path, query, parts.fragment))


def redact_text(text: str) -> str:
    """Every `scheme://user:pass@` inside free text (error messages) -> `scheme://***@`."""
    return re.sub(r"([A-Za-z][A-Za-z0-9+.-]*://)[^/@\s]*@", r"\1***@", text)
