"""Fixtures: redis_server."""
