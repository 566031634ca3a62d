"""Verity's real-time side: ingest, faces, scoring, alerts, the service and the CLI."""

__version__ = "0.1.0"
