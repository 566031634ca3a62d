"""Fixture: a headless Chromium driven by Selenium, for the operator pages' tests.

Uses Debian's `chromium` and `chromium-driver` (deploy/install-system-packages.sh); the driver
path is passed explicitly, so Selenium Manager never runs (it would try to download one).
Every test that uses `browser` leaves a screenshot in tests/.artifacts/ (gitignored), and on
failure the page's console log and HTML beside it.
"""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import pytest

ARTIFACTS = Path(__file__).resolve().parents[1] / ".artifacts"
INSTALL_HINT = ("deploy/install-system-packages.sh installs them "
                "(Debian packages chromium, chromium-driver)")
BROWSER_NAMES = ("chromium", "chromium-browser")
DRIVER_NAMES = ("chromedriver",)
WINDOW = "1280,900"


def _which(names: tuple[str, ...]) -> str | None:
    for name in names:
        found = shutil.which(name)
        if found:
            return found
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keep each phase's report on the item, so the fixture knows at teardown if the test failed."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"_browser_report_{report.when}", report)


def _artifact_stem(nodeid: str) -> str:
    name = nodeid.split("::", 1)[-1] if "::" in nodeid else nodeid
    module = Path(nodeid.split("::", 1)[0]).stem
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", f"{module}.{name}").strip("_")[:150]


@pytest.fixture
def browser(request):
    """A fresh headless Chromium per test (own profile, empty session storage)."""
    webdriver = pytest.importorskip("selenium.webdriver", reason="selenium is not installed")
    from selenium.webdriver.chrome.options import Options
    from selenium.webdriver.chrome.service import Service

    binary = _which(BROWSER_NAMES)
    driver_path = _which(DRIVER_NAMES)
    if binary is None or driver_path is None:
        missing = [n for n, p in (("chromium", binary), ("chromedriver", driver_path)) if p is None]
        pytest.skip(f"{' and '.join(missing)} not found on PATH: {INSTALL_HINT}")

    options = Options()
    options.binary_location = binary
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", f"--window-size={WINDOW}",
                     "--disable-dev-shm-usage", "--no-first-run", "--no-default-browser-check",
                     "--disable-extensions", "--disable-background-networking",
                     "--disable-component-update", "--disable-sync", "--lang=en-US"):
        options.add_argument(argument)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(executable_path=driver_path))
    driver.set_page_load_timeout(30)
    driver.set_script_timeout(30)
    try:
        yield driver
    finally:
        try:
            _save_artifacts(request.node, driver)
        finally:
            driver.quit()


def script_errors(driver) -> list[str]:
    """Errors the pages' scripts raised or logged since the last call (network failures, such
    as an expected 401, are not counted)."""
    return [
        entry.get("message", "") for entry in driver.get_log("browser")
        if entry.get("level") == "SEVERE" and entry.get("source") != "network"
    ]


def _save_artifacts(item, driver) -> None:
    failed = any(
        getattr(getattr(item, f"_browser_report_{when}", None), "failed", False)
        for when in ("setup", "call")
    )
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    stem = _artifact_stem(item.nodeid)
    for stale in ARTIFACTS.glob(f"{stem}.*"):
        stale.unlink(missing_ok=True)
    try:
        driver.save_screenshot(str(ARTIFACTS / f"{stem}.png"))
    except Exception as exc:  # noqa: BLE001 - a dead browser: the test's own error says more
        (ARTIFACTS / f"{stem}.screenshot-error.txt").write_text(f"{exc}\n")
    if failed:
        try:
            lines = [f"{e.get('level')} {e.get('message')}" for e in driver.get_log("browser")]
            (ARTIFACTS / f"{stem}.console.txt").write_text("\n".join(lines) + "\n")
            (ARTIFACTS / f"{stem}.html").write_text(driver.page_source)
        except Exception as exc:  # noqa: BLE001 - the browser died with the test
            (ARTIFACTS / f"{stem}.console-error.txt").write_text(f"{exc}\n")
