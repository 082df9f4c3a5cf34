"""End to end in a real browser: create a channel and a monitor in the Prefect UI, get the DOWN alert.

Headless Chromium (Debian's /usr/bin/chromium driven by Playwright) against a real Prefect server.
Skips only when no Chromium or no Playwright can be had. On failure a screenshot is kept under
test-artifacts/; on success the filled monitor form is kept there too (docs/ uses it).
"""

from __future__ import annotations

import os
import re
import shutil
import sys
import uuid
from pathlib import Path

import pytest

from toolkit import wait_for

VENV_BIN = Path(sys.executable).parent

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
ARTIFACTS.mkdir(exist_ok=True)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


def _chromium() -> str:
    """Debian's chromium (what .ci/run installs), or the one named by CHROMIUM_PATH."""
    chosen = os.environ.get("CHROMIUM_PATH")
    candidates = [chosen] if chosen else ["/usr/bin/chromium", shutil.which("chromium"),
                                          shutil.which("chromium-browser"), shutil.which("google-chrome")]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.skip(f"no Chromium found ({chosen or 'install Debian chromium, or set CHROMIUM_PATH'}); browser test skipped")


def _field(page, label: str):
    """The input of the form field labelled ``label`` (Prefect's schema form)."""
    pattern = re.compile(rf"^\s*{re.escape(label)}(\s*\(Optional\))?\s*$")
    wrapper = page.locator(".p-label", has=page.locator("label.p-label__label", has_text=pattern)).last
    return wrapper.locator("input, textarea").first


def _card(page, type_name: str):
    """The catalogue card of a block type, found by its exact name."""
    name = page.locator("h4.block-type-card-preview__name", has_text=re.compile(rf"^\s*{re.escape(type_name)}\s*$"))
    return page.locator(".block-type-card-preview", has=name)


def _create_block(page, ui_url: str, type_name: str, block_name: str, values: dict[str, str]) -> None:
    """From the catalogue: search the type, Create, fill the form, submit, wait for the block page."""
    page.goto(f"{ui_url}/blocks/catalog")
    page.get_by_placeholder("Search blocks").fill(type_name)
    _card(page, type_name).get_by_role("button", name="Create").click()
    page.wait_for_url(re.compile(r"/create"))
    _field(page, "Block Name").fill(block_name)
    for label, value in values.items():
        _field(page, label).fill(value)
    return page


def _created(response) -> bool:
    return response.request.method == "POST" and response.url.rstrip("/").endswith("/api/block_documents")


def _submit(page, attempts: int = 3) -> None:
    """Press Create and wait for the server's answer to that POST (however long a busy machine takes),
    not for a fixed time. On a 5xx (SQLite busy on a loaded 2-core box, a retryable error that
    Prefect's own clients retry) nothing was saved and the UI shows an error toast: press again, as a
    person would. Pressing again after a slow success would make a duplicate, so only 5xx retries."""
    status = 0
    for _ in range(attempts):
        with page.expect_response(_created, timeout=120_000) as answer:
            page.get_by_role("button", name="Create", exact=True).click()
        status = answer.value.status
        if status < 500:
            break
    assert status < 300, f"the Prefect server answered HTTP {status} to the block creation"
    page.wait_for_url(re.compile(r"/blocks/block/[0-9a-f-]+"), timeout=60_000)


@pytest.fixture
def served_monitor(prefect_server, tmp_path, start_process):
    """``alerting serve`` running against the test server every 5 s, limited to one monitor tag;
    stopped with its flow runs when the test ends (the ``start_process`` fixture)."""
    _chromium()  # skip before starting anything when there is no browser
    tag = f"ui-{uuid.uuid4().hex[:6]}"
    config = tmp_path / "monitors.yaml"
    config.write_text("monitors: []\n")
    env = {**prefect_server.env, "ALERTING_MONITOR_TAG": tag, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    log = tmp_path / "serve.log"
    start_process([str(VENV_BIN / "alerting"), "serve", "-c", str(config), "--interval", "5s", "--name", tag],
                  env=env, log=log, cwd=tmp_path)
    try:
        yield tag, log
    finally:
        shutil.copy(log, ARTIFACTS / "ui-serve.log")


def test_channel_and_monitor_made_in_the_ui_alert_on_the_next_run(
    prefect_server, served_monitor, receiver, target_503
):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    (tag, serve_log), channel, monitor = served_monitor, f"ui-team-{uuid.uuid4().hex[:6]}", "shop-api"
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - a Chromium that cannot start is "no Chromium"
            pytest.skip(f"Chromium at {chromium} does not start: {exc}")
        page = browser.new_page(viewport={"width": 1200, "height": 760})
        page.set_default_timeout(60_000)  # an upper bound for each UI wait on a busy machine
        problems: list[str] = []  # kept with the screenshot when the test fails
        page.on("response", lambda r: r.status >= 400 and problems.append(f"{r.status} {r.request.method} {r.url}"))
        page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
        try:
            page.goto(f"{prefect_server.ui_url}/blocks/catalog")
            page.get_by_placeholder("Search blocks").fill("Channel")
            sync_api.expect(_card(page, "SMTP E-mail Channel")).to_be_visible()
            sync_api.expect(page.locator(".block-type-card-preview")).to_have_count(2)  # no base class shown
            page.screenshot(path=str(ARTIFACTS / "ui-blocks-catalogue.png"))
            page.get_by_placeholder("Search blocks").fill("")
            for type_name in ("Apprise Channel", "SMTP E-mail Channel", "Service Monitor"):
                sync_api.expect(_card(page, type_name)).to_have_count(1)

            _create_block(page, prefect_server.ui_url, "Apprise Channel", channel,
                          {"Apprise URL": receiver.url("json", "/ui")})
            _submit(page)

            _create_block(page, prefect_server.ui_url, "Service Monitor", monitor, {
                "URL": target_503.url("/health"),
                "Attempts": "1",
                "Channels": f'["{channel}"]',
                "Tags": f'["{tag}"]',
            })
            _field(page, "Block Name").scroll_into_view_if_needed()
            page.screenshot(path=str(ARTIFACTS / "ui-service-monitor-form.png"))  # docs/blocks.md uses it
            _submit(page)
        except Exception:
            page.screenshot(path=str(ARTIFACTS / "ui-failure.png"), full_page=True)
            (ARTIFACTS / "ui-failure.log").write_text("\n".join(problems) + "\n")
            raise
        finally:
            browser.close()

    # the served monitor picks the new blocks up at its next run, with no restart
    wait_for(lambda: receiver.received, 120, what="the DOWN alert from the served monitor",
             details=lambda: serve_log.read_text()[-3000:])
    assert [(r["path"], r["title"]) for r in receiver.received[:1]] == [("/ui", f"DOWN: {monitor}")]
    assert "HTTP 503" in receiver.received[0]["message"]
