"""Fixtures: stream_servers."""
