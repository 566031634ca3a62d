"""A running agent with its HTTP service, and a small client for its API."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

from agent.app import Agent
from agent.config import load_config

TOKEN = "t0ken-for-tests"


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)


class Client:
    def __init__(self, base: str, token: str | None = TOKEN) -> None:
        self.base = base
        self.token = token

    def call(self, method: str, path: str, body=None, *, token: str | None = "default",
             content_type: str = "application/json") -> Reply:
        token = self.token if token == "default" else token
        headers = {"Content-Type": content_type}
        if token is not None:
            headers["Authorization"] = f"Bearer {token}"
        data = body if isinstance(body, bytes) else (json.dumps(body).encode() if body is not None else None)
        request = urllib.request.Request(self.base + path, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=20) as response:
                return Reply(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as exc:
            return Reply(exc.code, exc.read(), dict(exc.headers))


@dataclass
class RunningAgent:
    agent: Agent
    client: Client
    stop: threading.Event
    thread: threading.Thread

    @property
    def base(self) -> str:
        return self.client.base


def start_agent(redis_url: str, *, streams=(), token: str | None = TOKEN, host="127.0.0.1",
                **service) -> RunningAgent:
    config = load_config(
        streams=list(streams),
        alerts={"redis_url": redis_url},
        ingest={"reconnect_initial_s": 0.3, "watchdog_s": 3.0},
        service={"http_host": host, "http_port": 0, "keep_running": True, "token": token, **service},
    )
    agent = Agent(config).__enter__()
    stop = threading.Event()
    thread = threading.Thread(target=agent.run, args=(stop,), name="agent-under-test")
    thread.start()
    client = Client(f"http://127.0.0.1:{agent.http.port}", token)
    return RunningAgent(agent, client, stop, thread)


def stop_agent(running: RunningAgent) -> None:
    running.stop.set()
    running.thread.join(30)
    running.agent.__exit__(None, None, None)
    assert not running.thread.is_alive(), "the agent did not stop"


@pytest.fixture
def running_agent(redis_url):
    running = start_agent(redis_url)
    yield running
    stop_agent(running)
