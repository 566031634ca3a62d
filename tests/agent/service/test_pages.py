"""The operator's pages in a real (headless) browser against a real agent.

The dashboard, opened as `/#token=...` while the agent watches the manipulated clip in real
time, must show the stream and, within seconds of the onset, the alert with its evidence
images; without a (right) token it shows the token form instead of data. The upload page
must give the file the verdict `verity score` gives it, with a timeline and a heat map per
face, and say why a file that is not media is refused.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest

from agent.alerts import read_alerts
from agent.app import Agent
from agent.config import load_config
from tests.support.browser import script_errors

pytestmark = pytest.mark.slow

TOKEN = "t0ken"
WAIT_S = 30.0


def agent_config(redis_url: str, streams: list[dict], **service):
    return load_config(
        streams=streams,
        alerts={"redis_url": redis_url},
        ingest={"reconnect_initial_s": 0.3, "watchdog_s": 3.0},
        service={"http_port": 0, "token": TOKEN, **service},
    )


@contextlib.contextmanager
def running(config):
    """The agent started, its pipeline running on a thread; yields (agent, base URL)."""
    stop = threading.Event()
    with Agent(config) as agent:
        runner = threading.Thread(target=agent.run, args=(stop,), name="agent-run", daemon=True)
        runner.start()
        try:
            yield agent, f"http://127.0.0.1:{agent.http.port}"
        finally:
            stop.set()
            runner.join(30)


@pytest.fixture(scope="module")
def idle_agent(redis_session_server):
    """An agent with the service and a token but no stream (pages, auth, uploads)."""
    config = agent_config(redis_session_server.url, [])
    with Agent(config) as agent:
        yield f"http://127.0.0.1:{agent.http.port}"


def wait_for(browser, condition, what: str, timeout: float = WAIT_S):
    """WebDriverWait, failing with what was awaited and what the page showed instead."""
    from selenium.common.exceptions import TimeoutException
    from selenium.webdriver.support.ui import WebDriverWait

    try:
        return WebDriverWait(browser, timeout, poll_frequency=0.2).until(condition)
    except TimeoutException:
        try:
            shown = browser.find_element("tag name", "body").text
        except Exception:  # noqa: BLE001
            shown = "(page unreadable)"
        raise AssertionError(
            f"waited {timeout:g} s for {what}; the page shows:\n{shown[:3000]}"
        ) from None


def find(browser, css: str):
    """The first element matching `css`, or None (for wait conditions)."""
    found = browser.find_elements("css selector", css)
    return found[0] if found else None


def image_loaded(browser, img) -> bool:
    return bool(browser.execute_script(
        "return arguments[0].complete && arguments[0].naturalWidth > 0", img
    ))


def canvas_drawn(browser, canvas) -> bool:
    """The plot has points and inked pixels (not a blank canvas)."""
    return bool(browser.execute_script(
        """
        const c = arguments[0];
        if (!(Number(c.dataset.points) > 0) || !c.width || !c.height) return false;
        const data = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
        let inked = 0;
        for (let i = 3; i < data.length; i += 4) if (data[i] > 0) inked++;
        return inked > 100;
        """,
        canvas,
    ))


# ---- dashboard ----------------------------------------------------------------------------

# Looped, so the face is still in view however long the browser takes to start.
CAM = {"id": "cam-7", "realtime": True, "loop": True, "room": "board-room", "participant": "alice"}


@pytest.fixture
def watching_clip(manipulated_clip, redis_url):
    """An agent watching the manipulated clip (looped) in real time as stream cam-7.
    Requested before `browser`, it outlives it: the screenshot shows the dashboard live."""
    config = agent_config(redis_url, [{**CAM, "url": str(manipulated_clip.path)}])
    with running(config) as (_agent, base):
        yield config, base


def new_alert_ids(redis_client, stream_key: str, timeout: float = 5.0) -> list[str]:
    deadline = time.monotonic() + timeout
    while True:
        ids = [a.alert_id for a in read_alerts(redis_client, stream_key) if a.event == "new"]
        if ids or time.monotonic() > deadline:
            return ids
        time.sleep(0.1)


def test_dashboard_shows_the_stream_and_its_alert_with_evidence(
    watching_clip, browser, redis_client
):
    config, base = watching_clip
    browser.get(f"{base}/#token={TOKEN}")
    assert "token" not in browser.current_url, "the token stayed in the address bar"

    card = wait_for(browser, lambda b: find(b, '#streams .stream-card[data-stream-id="cam-7"]'),
                    "the stream card of cam-7")
    assert card.find_element("css selector", ".stream-id").text == "cam-7"
    assert "board-room" in card.text and "alice" in card.text
    # The face is tracked from the first second; its rolling score is plotted.
    timeline = wait_for(
        browser,
        lambda b: next((c for c in b.find_elements(
            "css selector", '.stream-card[data-stream-id="cam-7"] .track canvas.timeline')
            if canvas_drawn(b, c)), None),
        "a drawn score timeline on the stream card",
    )
    assert "threshold" in timeline.get_attribute("aria-label")

    selector = '#alerts .alert-item[data-stream-id="cam-7"]'
    item = wait_for(browser, lambda b: find(b, selector), "an alert item for cam-7")
    images = wait_for(
        browser,
        lambda b: (imgs := b.find_elements("css selector", f"{selector} .evidence img"))
        and len(imgs) == 2 and all(image_loaded(b, i) for i in imgs) and imgs,
        "both evidence images of the alert to load",
    )
    text = item.text
    assert "cam-7" in text and "board-room" in text and "alice" in text
    assert {i.get_attribute("data-kind") for i in images} == {"frame", "explanation"}
    assert item.get_attribute("data-event") in ("new", "update", "end")
    # The item is an episode the agent published to Redis (one per pass of the looped clip).
    published = new_alert_ids(redis_client, config.alerts.stream_key)
    assert item.get_attribute("data-alert-id") in published
    assert browser.find_element("id", "connection").get_attribute("data-state") == "live"
    assert script_errors(browser) == []


def test_dashboard_without_the_right_token_asks_for_it(browser, idle_agent):
    browser.get(f"{idle_agent}/")
    form = wait_for(browser, lambda b: (f := find(b, "#token-form")) and f.is_displayed() and f,
                    "the token form")
    message = browser.find_element("id", "auth-message").text
    assert "token" in message.lower()
    assert not browser.find_element("id", "main").is_displayed(), "data shown without a token"
    assert browser.find_elements("css selector", ".stream-card, .alert-item") == []

    # A wrong token in the address: refused, said so, and not kept.
    browser.get(f"{idle_agent}/#token=wrong")
    wait_for(browser, lambda b: "refused" in b.find_element("id", "auth-message").text,
             "the 'token refused' message")
    assert "wrong" not in browser.current_url
    assert browser.execute_script("return sessionStorage.getItem('verity.token')") is None

    # The right one, typed in: the dashboard connects and shows the (empty) stream list.
    form = browser.find_element("id", "token-form")
    form.find_element("id", "token-input").send_keys(TOKEN)
    form.find_element("css selector", "button[type=submit]").click()
    wait_for(browser,
             lambda b: b.find_element("id", "connection").get_attribute("data-state") == "live",
             "the event stream to connect")
    assert not browser.find_element("id", "auth").is_displayed()
    assert "No streams" in browser.find_element("id", "streams").text
    assert script_errors(browser) == []


# ---- upload page --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def expected_report(manipulated_clip):
    """What `verity score` says of the clip (same code, default configuration)."""
    from agent.scoring.report import score_video

    return score_video(manipulated_clip.path, load_config())


def test_upload_page_judges_the_clip_like_verity_score(browser, idle_agent, manipulated_clip,
                                                       expected_report):
    assert expected_report.verdict == "fake"  # the clip turns self-blended at its onset
    browser.get(f"{idle_agent}/upload#token={TOKEN}")
    assert "token" not in browser.current_url
    started = time.monotonic()
    browser.find_element("id", "file").send_keys(str(manipulated_clip.path))
    verdict = wait_for(browser, lambda b: (v := find(b, "#verdict")) and v.text.strip() and v,
                       "the verdict", timeout=90)
    elapsed = time.monotonic() - started
    shown = browser.find_element("id", "result").text
    assert verdict.text.strip() == expected_report.verdict.upper(), shown
    assert not browser.find_element("id", "error").is_displayed()

    results = browser.find_elements("css selector", ".track-result")
    assert len(results) == len(expected_report.tracks)
    for element, track in zip(results, expected_report.tracks):
        assert element.get_attribute("data-track-id") == str(track.track_id)
        assert element.get_attribute("data-verdict") == track.verdict
        assert f"{track.mean_probability:.2f}" in element.text
    plots = browser.find_elements("css selector", ".track-result canvas.timeline")
    assert plots and any(canvas_drawn(browser, c) for c in plots), "no timeline drawn"
    heat_maps = browser.find_elements("css selector", ".track-result img.explanation")
    assert heat_maps and all(image_loaded(browser, img) for img in heat_maps), "heat map not loaded"
    assert script_errors(browser) == []
    print(f"upload judged in {elapsed:.1f} s")


def test_upload_page_explains_why_a_text_file_is_refused(browser, idle_agent, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video\n" * 20)
    browser.get(f"{idle_agent}/upload#token={TOKEN}")
    browser.find_element("id", "file").send_keys(str(notes))
    error = wait_for(browser, lambda b: (e := find(b, "#error")) and e.is_displayed() and e,
                     "the error message")
    assert "notes.txt" in error.text and "not an image" in error.text.lower()
    assert not browser.find_element("id", "result").is_displayed()
    assert browser.find_element("id", "verdict").text == ""

    # The same through the drop zone: a file dropped on it is sent like a chosen one.
    browser.execute_script(
        """
        const transfer = new DataTransfer();
        transfer.items.add(new File(["just words"], "dropped.txt", {type: "text/plain"}));
        const zone = document.getElementById("drop-zone");
        for (const type of ["dragenter", "dragover", "drop"]) {
          zone.dispatchEvent(new DragEvent(type, {bubbles: true, cancelable: true,
                                                  dataTransfer: transfer}));
        }
        """
    )
    wait_for(browser, lambda b: "dropped.txt" in b.find_element("id", "error").text,
             "the error message for the dropped file")
    assert script_errors(browser) == []


def test_a_participant_pushed_over_whip_alerts_on_the_dashboard(
    browser, manipulated_clip, redis_url, redis_client
):
    """The whole call path: a WebRTC peer pushes a face that turns fake; the operator sees the
    participant's stream and its alert appear live."""
    import asyncio

    from tests.support.whip_publisher import Publisher

    config = agent_config(redis_url, [], keep_running=True)
    with running(config) as (_agent, base):
        browser.get(f"{base}/#token={TOKEN}")
        wait_for(browser, lambda b: b.find_element("id", "connection").get_attribute(
            "data-state") == "live", "the dashboard to connect")
        done = threading.Event()
        outcome: dict = {}

        def call() -> None:
            async def push() -> None:
                publisher = Publisher(base, "call-9", manipulated_clip.path,
                                      query="?room=standup&participant=dana", token=TOKEN)
                outcome["status"] = (await publisher.start())[0]
                while not done.is_set():
                    await asyncio.sleep(0.2)
                outcome["hang_up"] = await publisher.hang_up()

            asyncio.run(push())

        caller = threading.Thread(target=call, name="whip-peer")
        caller.start()
        try:
            card = wait_for(browser, lambda b: find(
                b, '#streams .stream-card[data-stream-id="call-9"]'), "the participant's stream")
            assert "standup" in card.text and "dana" in card.text
            item = wait_for(browser, lambda b: find(
                b, '#alerts .alert-item[data-stream-id="call-9"]'), "the participant's alert")
            assert "dana" in item.text and "standup" in item.text
            assert item.get_attribute("data-alert-id") in new_alert_ids(
                redis_client, config.alerts.stream_key)
        finally:
            done.set()
            caller.join(30)
        assert outcome == {"status": 201, "hang_up": 200}
        # The call ended: its stream leaves the dashboard.
        wait_for(browser, lambda b: not find(b, '#streams .stream-card[data-stream-id="call-9"]'),
                 "the ended call's stream to leave the list")
        assert script_errors(browser) == []
