"""The public status page (alerting/status_page/): built from a store with scripted history and checked
through status.json and the parsed HTML; nothing private in it (a canary secret everywhere a secret
can go); written atomically; served read-only; seen in a real headless Chromium at desktop and phone
widths (the screenshots go to docs/img/ for the README).

The history is scripted through the real cycle code (``record_cycle``: policy, state, history,
rollups, incidents in one transaction) with an injected clock, 90 days at one check an hour:

* ``api``: down 2026-10-01 06:00-18:00 (HTTP 503), down 2026-11-28 10:00-11:00 (HTTP 503), and down
  since 11:00 today (timeout, still going on);
* ``db`` (public name "Database"): refused during its maintenance window 2026-11-27 02:00-04:00;
* ``web``: up, slow (900 ms) for the last 6 hours;
* ``cdn``: up; then its stored status is set to ``DEGRADED`` (a status this alerting's policy does not
  make yet; the page shows whatever status a newer alerting stores);
* ``backoffice-private``: down all along, and not public: it must appear nowhere.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import uuid
from datetime import datetime, timedelta, timezone
from html.parser import HTMLParser
from pathlib import Path

import httpx
import pytest
from sqlalchemy import text

from alerting.config import load_config
from alerting.cycle import open_store, run_cycle
from alerting.models import CheckResult, ErrorKind
from alerting.record import prune_history, record_cycle
from alerting.status_page.build import build_after_cycle, build_site, site_dir
from alerting.status_page.write import MARKER, SiteError, publish
from toolkit import Receiver, Target, free_port, wait_for

ALERTING = str(Path(sys.executable).parent / "alerting")
DOCS_IMG = Path(__file__).resolve().parent.parent / "docs" / "img"
NOW = datetime(2026, 11, 30, 12, 0, tzinfo=timezone.utc)
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

CONFIG = """
defaults:
  attempts: 1
monitors:
  - {name: api, url: "http://127.0.0.1:9/api"}
  - name: db
    url: "http://127.0.0.1:9/db"
    maintenance: [{name: upgrade, start: "2026-11-27T02:00:00Z", end: "2026-11-27T04:00:00Z"}]
  - {name: web, url: "http://127.0.0.1:9/web"}
  - {name: cdn, url: "http://127.0.0.1:9/cdn"}
  - {name: backoffice-private, url: "http://127.0.0.1:9/private"}
status_page:
  out: site
  title: Example status
  description: Live status of the Example services.
  monitors: [api, {name: db, public_name: Database}, web, cdn]
"""


def alerting(args: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess:
    """Run ``alerting ARGS`` in its own process group; the whole group is killed if it overruns."""
    proc = subprocess.Popen([ALERTING, *args], cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=120)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        raise AssertionError(f"alerting {' '.join(args)} did not finish:\n{out}\n{err}") from None
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err)


def _result(name: str, t: datetime) -> CheckResult:
    """What each monitor's check returned at ``t`` (the script in the module docstring)."""
    def down(error: ErrorKind, status: int | None = None) -> CheckResult:
        return CheckResult(monitor=name, url="http://127.0.0.1:9/x", ok=False, status_code=status, latency_ms=30,
                           error=error, message="scripted failure", checked_at=t)

    if name == "api":
        if datetime(2026, 10, 1, 6, tzinfo=timezone.utc) <= t < datetime(2026, 10, 1, 18, tzinfo=timezone.utc):
            return down(ErrorKind.UNEXPECTED_STATUS, 503)
        if datetime(2026, 11, 28, 10, tzinfo=timezone.utc) <= t < datetime(2026, 11, 28, 11, tzinfo=timezone.utc):
            return down(ErrorKind.UNEXPECTED_STATUS, 503)
        if t >= NOW - timedelta(hours=1):
            return down(ErrorKind.TIMEOUT)
    if name == "db" and datetime(2026, 11, 27, 2, tzinfo=timezone.utc) <= t < datetime(2026, 11, 27, 4, tzinfo=timezone.utc):
        return down(ErrorKind.REFUSED)
    if name == "backoffice-private":
        return down(ErrorKind.UNEXPECTED_STATUS, 500)
    slow = name == "web" and t >= NOW - timedelta(hours=6)
    return CheckResult(monitor=name, url="http://127.0.0.1:9/x", ok=True, status_code=200,
                       latency_ms=900 if slow else 40, checked_at=t)


def scripted_store(folder: Path) -> Path:
    """A config and its store holding the scripted 90 days; returns the config path."""
    config_path = folder / "monitors.yaml"
    config_path.write_text(CONFIG)
    config = load_config(config_path)
    specs = {m.name: m for m in config.monitors}
    with open_store(config) as store:
        t = NOW - timedelta(days=90)
        while t < NOW:  # pruning (at most hourly, so every step here) once at the end: same rows, half the CPU
            record_cycle(store, config, specs, [_result(name, t) for name in specs], t, prune=False)
            last, t = t, t + timedelta(hours=1)
        prune_history(store, config, last)
        with store.begin() as tx:  # a status a newer alerting stores (another engineer adds DEGRADED)
            tx.conn.execute(text("UPDATE monitor_state SET status = 'DEGRADED' WHERE monitor = 'cdn'"))
    return config_path


@pytest.fixture(scope="module")
def built_site(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("status-page")
    config_path = scripted_store(folder)
    config = load_config(config_path)
    out = site_dir(config)
    assert out is not None and out == folder / "site"
    with open_store(config) as store:
        build_site(config, store, out, NOW)
    return out


class Parsed(HTMLParser):
    """What a reader of index.html gets: the banner, each monitor section (name, status text, bar
    cells), the incident lines, and every external reference (there must be none)."""

    def __init__(self) -> None:
        super().__init__()
        self.stack: list[tuple[str, dict]] = []
        self.banner = ""
        self.sections: dict[str, dict] = {}
        self.current: dict | None = None
        self.incidents: list[str] = []
        self.external: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag, attrs):
        a = {k: v or "" for k, v in attrs}
        for key in ("src", "href"):
            if key in a and a[key] != "status.json":
                self.external.append(a[key])
        if tag == "script":
            self.scripts += 1
        if tag == "section":
            self.current = {"id": a["id"], "name": "", "status": "", "cells": [], "bar_label": ""}
            self.sections[a["id"]] = self.current
        if tag == "div" and "bar" in a.get("class", "").split() and self.current is not None:
            self.current["bar_label"] = a["aria-label"]
        if tag == "table" and self.current is not None:
            self.current["row_class"] = a.get("class", "")
        if tag == "td" and self.current is not None:  # a bare cell has the kind of its row
            self.current["cells"].append(a.get("class") or self.current["row_class"])
        if tag == "li":
            self.incidents.append("")
        if tag not in ("td", "tr", "meta", "br"):  # void or end-tag-optional elements are not stacked
            self.stack.append((tag, a))

    def handle_endtag(self, tag):
        while self.stack:
            if self.stack.pop()[0] == tag:
                break
        if tag == "section":
            self.current = None

    def handle_data(self, data):
        classes = {c for _, a in self.stack for c in a.get("class", "").split()}
        if "banner" in classes:
            self.banner += data
        if self.current is not None and "name" in classes:
            self.current["name"] += data
        if self.current is not None and "st" in classes:
            self.current["status"] += data
        if any(tag == "li" for tag, _ in self.stack):
            self.incidents[-1] += data


def parse(html: str) -> Parsed:
    p = Parsed()
    p.feed(html)
    p.close()
    return p


CELL_CLASS = {"up": "u", "minor": "n", "major": "x", "maintenance": "m", "none": "e"}


def test_status_json_follows_the_scripted_history(built_site):
    doc = json.loads((built_site / "status.json").read_text())
    assert doc["title"] == "Example status"
    assert doc["overall"] == {"status": "partial", "text": "Partial outage"}  # 1 of 4 down, 1 degraded
    assert doc["last_check"] == "2026-11-30T11:00:00Z"
    monitors = {m["id"]: m for m in doc["monitors"]}
    assert list(monitors) == ["api", "database", "web", "cdn"]  # config order; the private one is not there
    assert [(m["name"], m["status"], m["status_text"]) for m in monitors.values()] == [
        ("api", "down", "Down"), ("Database", "up", "Operational"), ("web", "up", "Operational"),
        ("cdn", "degraded", "Degraded performance")]
    for m in monitors.values():
        days = m["days"]
        assert days["from"] == "2026-09-02" and len(days["status"]) == 90  # 90 UTC days, today last
        assert m["badge"] == f"badges/{m['id']}.svg"

    api = monitors["api"]["days"]
    day = {d: i for i, d in enumerate([(datetime(2026, 9, 2) + timedelta(days=k)).date().isoformat() for k in range(90)])}
    assert api["status"][day["2026-10-01"]] == "major" and api["uptime"][day["2026-10-01"]] == 50.0  # 12 of 24 h
    assert api["status"][day["2026-11-28"]] == "minor" and api["incidents"][day["2026-11-28"]] == 1  # 23 of 24 h
    assert api["status"][-1] == "major" and api["uptime"][-1] == round(100 * 11 / 12, 3)  # down since 11:00
    assert api["status"].count("up") == 87

    db = monitors["database"]["days"]
    i = day["2026-11-27"]  # refused only inside the maintenance window: maintenance, not downtime
    assert (db["status"][i], db["uptime"][i], db["maintenance"][i], db["incidents"][i]) == ("maintenance", 100.0, True, 0)
    assert set(db["status"]) == {"up", "maintenance"} and monitors["database"]["uptime_90d"] == 100.0

    web = monitors["web"]["response_ms_hourly"]
    assert len(web) == 24 and web[-1] is None  # the current hour (12:00) has no check yet
    assert web[-2] > 500 > web[0]  # the slow spell: the last 6 hours
    assert set(monitors["cdn"]["days"]["status"]) == {"up"}

    assert [(i["monitor"], i["summary"], i["started"], i["ended"], i["maintenance"]) for i in doc["incidents"]] == [
        ("api", "timeout", "2026-11-30T11:00:00Z", None, False),
        ("api", "HTTP 503", "2026-11-28T10:00:00Z", "2026-11-28T11:00:00Z", False),
        ("database", "connection refused", "2026-11-27T02:00:00Z", "2026-11-27T04:00:00Z", True),
        ("api", "HTTP 503", "2026-10-01T06:00:00Z", "2026-10-01T18:00:00Z", False),
    ]
    assert doc["incidents"][3]["duration_s"] == 12 * 3600


def test_the_html_shows_the_same_as_the_json(built_site):
    doc = json.loads((built_site / "status.json").read_text())
    page = parse((built_site / "index.html").read_text())
    assert page.banner.strip() == "Partial outage"
    assert page.external == [] and page.scripts == 1  # no CDN, no framework: one inline script
    assert list(page.sections) == [f"m-{m['id']}" for m in doc["monitors"]]
    for m in doc["monitors"]:
        section = page.sections[f"m-{m['id']}"]
        assert (section["name"], section["status"]) == (m["name"], m["status_text"])  # text carries the status
        assert section["cells"] == [CELL_CLASS[s] for s in m["days"]["status"]]
    assert "maintenance on 1 day" in page.sections["m-database"]["bar_label"]
    lines = [" ".join(line.split()) for line in page.incidents]
    assert len(lines) == 4
    assert lines[0].startswith("api: timeout. 2026-11-30 11:00 UTC to ongoing (1 h)")
    assert lines[1] == "api: HTTP 503. 2026-11-28 10:00 UTC to 2026-11-28 11:00 UTC (1 h)"
    assert lines[2].startswith("Database: during maintenance, connection refused.")


def test_badges_say_the_status_and_uptime(built_site):
    badges = sorted(p.name for p in (built_site / "badges").iterdir())
    assert badges == ["api.svg", "cdn.svg", "database.svg", "web.svg"]
    import xml.etree.ElementTree as ET

    ns = "{http://www.w3.org/2000/svg}"
    texts = {name: [t.text for t in ET.parse(built_site / "badges" / name).getroot().iter(f"{ns}text")] for name in badges}
    assert texts["api.svg"][0] == "api" and texts["api.svg"][1].startswith("down 99.")
    assert texts["database.svg"] == ["Database", "up 100%"]
    assert texts["cdn.svg"] == ["cdn", "degraded 100%"]


def test_nothing_private_is_published(built_site):
    for path in built_site.rglob("*"):
        if path.is_file():
            content = path.read_text()
            for private in ("backoffice-private", "127.0.0.1", "scripted failure", "http://", "upgrade"):
                if private == "http://" and path.suffix == ".svg":
                    continue  # the SVG namespace
                assert private not in content, f"{private!r} in {path.name}"


CANARY = "Canary7" + uuid.uuid4().hex[:6].replace("a", "k").replace("b", "q")


def test_the_canary_secret_never_reaches_the_site(tmp_path):
    """The canary in monitor URLs (user info, path, query), headers, the channel URL (path and
    +X-Token) and error texts; real checks against a real target, then the real command."""
    target, receiver = Target(), Receiver()
    try:
        target.route(f"/ping/{CANARY}", statuses=[503])
        target.route("/ok")
        config_path = tmp_path / "monitors.yaml"
        config_path.write_text(
            "defaults:\n  attempts: 1\n  retry_backoff: 0s\n  timeout: 5s\n  channels: [ops]\n"
            f"channels:\n  ops: \"{receiver.apprise_url(f'/ops/{CANARY}', f'+X-Token={CANARY}')}\"\n"
            "monitors:\n"
            f"  - name: api\n    url: 'http://user:{CANARY}@127.0.0.1:{target.port}/ping/{CANARY}?token={CANARY}'\n"
            f"    headers: {{Authorization: 'Bearer {CANARY}', X-Api-Key: '{CANARY}'}}\n"
            f"  - name: refused\n    url: 'http://127.0.0.1:{free_port()}/x/{CANARY}?access_token={CANARY}'\n"
            f"  - name: texts\n    url: 'http://127.0.0.1:{target.port}/ok'\n"
            "status_page:\n  out: site\n"
        )
        config = load_config(config_path)
        with open_store(config) as store:
            report = run_cycle(config, store)
            assert {r.monitor for r in report.results if not r.ok} >= {"api", "refused"}
            # an error text that carries the secret (as a TLS or proxy message might)
            specs = {m.name: m for m in config.monitors}
            leaky = CheckResult(monitor="texts", url=f"http://127.0.0.1/{CANARY}", ok=False, status_code=None,
                                error=ErrorKind.TLS, message=f"certificate for {CANARY}.example.com: {CANARY}")
            record_cycle(store, config, {"texts": specs["texts"]}, [leaky], leaky.checked_at)
        proc = alerting(["status-page", "build", "-c", str(config_path)], cwd=tmp_path)
        assert proc.returncode == 0, proc.stderr
        assert CANARY not in proc.stdout + proc.stderr
        site = tmp_path / "site"
        doc = json.loads((site / "status.json").read_text())
        assert {m["id"]: m["status"] for m in doc["monitors"]} == {"api": "down", "refused": "down", "texts": "down"}
        assert sorted(i["summary"] for i in doc["incidents"]) == ["HTTP 503", "TLS error", "connection refused"]
        files = [p for p in site.rglob("*") if p.is_file()]
        assert len(files) >= 6  # index, json, marker, three badges
        for path in files:
            content = path.read_text()
            assert CANARY not in content, f"the canary leaks into {path.relative_to(site)}"
            assert "127.0.0.1" not in content and str(target.port) not in content.replace(f'"{target.port}"', "")
    finally:
        target.close()
        receiver.close()


def _complete(folder: Path) -> str | None:
    """Why the site in ``folder`` is not a complete one (None when it is)."""
    try:
        html = (folder / "index.html").read_text()
        doc = json.loads((folder / "status.json").read_text())
    except FileNotFoundError as exc:
        return f"missing {exc.filename}"
    except ValueError as exc:
        return f"status.json unreadable: {exc}"
    if not html.rstrip().endswith("</html>"):
        return "index.html cut short"
    missing = [m["badge"] for m in doc["monitors"] if not (folder / m["badge"]).is_file()]
    return f"missing {missing}" if missing else None


def test_readers_see_a_whole_site_while_it_is_rebuilt_and_after_a_failed_build(built_site, tmp_path):
    site = tmp_path / "site"
    shutil.copytree(built_site, site)
    config = load_config(built_site.parent / "monitors.yaml")
    problems: list[str] = []
    reads = [0]
    stop = threading.Event()

    def reader() -> None:
        while not stop.is_set():
            why = _complete(site)
            if why:
                problems.append(why)
            reads[0] += 1

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    try:
        with open_store(config) as store:
            for k in range(6):
                build_site(config, store, site, NOW + timedelta(minutes=k))
                wait_for(lambda n=reads[0]: reads[0] > n, 30, what="the reader to read the new site")
    finally:
        stop.set()
        thread.join(timeout=30)
    assert problems == [] and reads[0] >= 6
    assert json.loads((site / "status.json").read_text())["generated_at"] == "2026-11-30T12:05:00Z"
    before = {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()}

    # a build that fails half way (a file where a folder must go) leaves the old site as it was
    with pytest.raises(SiteError):
        publish(site, {"index.html": "<html>new</html>", "badges": "not a folder", "badges/api.svg": "<svg/>"})
    assert {p.relative_to(site): p.read_bytes() for p in site.rglob("*") if p.is_file()} == before
    assert [p.name for p in tmp_path.iterdir()] == ["site"]  # no half-built folder left behind

    # a folder with someone else's files is refused, not replaced (the site is swapped in whole)
    foreign = tmp_path / "home"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    with pytest.raises(SiteError, match="has files that alerting did not make"):
        publish(foreign, {"index.html": "x"})
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_after_a_cycle_a_failed_build_is_logged_and_never_raises(built_site, tmp_path, caplog):
    config = load_config(built_site.parent / "monitors.yaml")
    config.status_page = config.status_page.model_copy(update={"out": str(tmp_path / "taken")})
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "other.txt").write_text("not ours")
    with open_store(config) as store:
        build_after_cycle(config, store)  # must not raise
    assert any("Could not build the status page" in r.getMessage() for r in caplog.records)
    config.status_page = config.status_page.model_copy(update={"out": str(tmp_path / "fresh")})
    with open_store(config) as store:
        build_after_cycle(config, store)
    assert _complete(tmp_path / "fresh") is None


def test_build_command_refuses_bad_input_with_status_2(tmp_path):
    config = tmp_path / "monitors.yaml"
    config.write_text("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\nstatus_page:\n  out: site\n"
                      "  monitors: [api, {name: nope, public_name: Nope}]\n")
    cases = [
        (["-c", str(config)], "monitors.yaml: field 'status_page.monitors[1]': no monitor named 'nope'"),
    ]
    plain = tmp_path / "plain.yaml"
    plain.write_text("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\n")
    cases.append((["-c", str(plain)], "plain.yaml: field 'status_page': not in the config"))
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "notes.txt").write_text("x")
    cases.append((["-c", str(plain), "--out", str(tmp_path / "mine")], "has files that alerting did not make"))
    for args, expected in cases:
        proc = alerting(["status-page", "build", *args])
        assert proc.returncode == 2, proc.stdout + proc.stderr
        assert expected in " ".join(proc.stderr.split()) and "Traceback" not in proc.stderr


def test_serve_gives_the_generated_files_only_read_only(built_site, tmp_path, start_process):
    site = tmp_path / "site"
    shutil.copytree(built_site, site)
    (site / "stray.txt").write_text("someone put this here")
    port = free_port()
    log = tmp_path / "serve.log"
    start_process([ALERTING, "status-page", "serve", "--dir", str(site), "--listen", f"127.0.0.1:{port}"],
                  log=log, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"

    def up():
        try:
            return httpx.get(base + "/", timeout=5)
        except httpx.TransportError:
            return None

    index = wait_for(up, 60, what="the status page server", details=lambda: log.read_text())
    assert index.status_code == 200 and index.headers["content-type"].startswith("text/html")
    assert parse(index.text).banner.strip() == "Partial outage"
    with httpx.Client(base_url=base, timeout=5) as client:
        assert client.get("/status.json").json()["overall"]["status"] == "partial"
        badge = client.get("/badges/api.svg")
        assert badge.status_code == 200 and badge.headers["content-type"] == "image/svg+xml"
        for path in ("/badges/", "/badges", "/stray.txt", f"/{MARKER}", "/../monitors.yaml", "/%2e%2e/monitors.yaml",
                     "/badges/..%2f..%2fmonitors.yaml", "/index.html/"):
            assert client.get(path).status_code == 404, path
        assert client.post("/", content=b"x").status_code == 405
        assert client.put("/index.html", content=b"x").status_code == 405
        assert client.head("/").status_code == 200
        # a rebuild is served as soon as it is swapped in
        config = load_config(built_site.parent / "monitors.yaml")
        with open_store(config) as store:
            build_site(config, store, site, NOW + timedelta(hours=1))
        assert client.get("/status.json").json()["generated_at"] == "2026-11-30T13:00:00Z"


def _chromium() -> str:
    chosen = os.environ.get("CHROMIUM_PATH")
    candidates = [chosen] if chosen else ["/usr/bin/chromium", shutil.which("chromium"),
                                          shutil.which("chromium-browser"), shutil.which("google-chrome")]
    for candidate in candidates:
        if candidate and os.path.exists(candidate):
            return candidate
    pytest.skip(f"no Chromium found ({chosen or 'install Debian chromium, or set CHROMIUM_PATH'}); browser test skipped")


@pytest.mark.parametrize("width,height,name", [(1200, 900, "desktop"), (390, 844, "phone")])
def test_a_person_sees_the_banner_each_status_and_the_bars(built_site, width, height, name):
    chromium = _chromium()
    sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is not installed (pip install playwright)")
    doc = json.loads((built_site / "status.json").read_text())
    with sync_api.sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - a Chromium that cannot start is "no Chromium"
            pytest.skip(f"Chromium at {chromium} does not start: {exc}")
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.set_default_timeout(60_000)
            requests: list[str] = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto((built_site / "index.html").as_uri())  # a file: it renders offline
            expect = sync_api.expect
            expect(page.get_by_role("status")).to_have_text("Partial outage")
            for m in doc["monitors"]:
                section = page.locator(f"#m-{m['id']}")
                expect(section.locator(".name")).to_have_text(m["name"])
                expect(section.locator(".st")).to_have_text(m["status_text"])
                expect(section.locator(".st")).to_be_visible()
                bar = section.locator(".bar")
                expect(bar).to_be_visible()
                box = bar.bounding_box()
                assert box is not None and box["width"] > 0.8 * min(width, 960) - 60 and box["height"] >= 20
                visible = section.locator(".bar td:visible")
                expect(visible).to_have_count(90 if width > 600 else 30)  # a phone shows the last 30 days
                expect(section.locator(".bar td").last).to_have_attribute("title", "2026-11-30: " + (
                    {"api": "91.67% up, 1 incident", "database": "100% up"}.get(m["id"], "100% up")))
            assert page.evaluate("document.documentElement.scrollWidth") <= width  # no sideways scrolling
            assert [u for u in requests if not u.startswith("file:")] == []  # nothing fetched from anywhere
            DOCS_IMG.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(DOCS_IMG / f"status-page-{name}.png"), full_page=name == "phone")
        finally:
            browser.close()


def test_a_page_for_100_monitors_stays_small(tmp_path):
    """Size, not speed (bench/status_page.py measures the build time): 100 monitors with 90 days
    where every day had some downtime (the most markup a day can take) stay under 200 KB."""
    lines = "".join(f"  - {{name: service-{i:03d}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(100))
    config_path = tmp_path / "monitors.yaml"
    config_path.write_text(f"status_page:\n  out: site\nmonitors:\n{lines}")
    config = load_config(config_path)
    specs = {m.name: m for m in config.monitors}
    with open_store(config) as store:
        for day in range(89, -1, -1):  # today included
            t = NOW - timedelta(days=day, minutes=30)
            for ok in (False, True):  # a failing check then a passing one: one incident a day each
                results = [CheckResult(monitor=n, url="x", ok=ok, status_code=200 if ok else 503, latency_ms=40 + day,
                                       error=None if ok else ErrorKind.UNEXPECTED_STATUS, checked_at=t) for n in specs]
                record_cycle(store, config, specs, results, t)
                t += timedelta(minutes=10)
        build_site(config, store, tmp_path / "site", NOW)
    doc = json.loads((tmp_path / "site" / "status.json").read_text())
    assert {s for m in doc["monitors"] for s in m["days"]["status"]} == {"major"}  # every day: 1 of 2 checks down
    assert (tmp_path / "site" / "index.html").stat().st_size < 200 * 1024


def test_the_served_monitor_rebuilds_the_page_each_cycle_and_serves_it(prefect_server, target, tmp_path, start_process):
    """``alerting serve --status-page``: the flow's cycle builds the site (status_page: in the config),
    the serving process serves it read-only, and the next cycle's page replaces it."""
    target.route("/api", statuses=[503])
    target.route("/web")
    tag = f"sp-{uuid.uuid4().hex[:6]}"  # no Service Monitor block of other tests is merged in
    config = tmp_path / "monitors.yaml"
    config.write_text(
        "defaults: {attempts: 1, retry_backoff: 0s}\n"
        f"monitors:\n  - {{name: api, url: '{target.url('/api')}'}}\n  - {{name: web, url: '{target.url('/web')}'}}\n"
        "status_page:\n  out: site\n  title: Served status\n")
    port = free_port()
    log = tmp_path / "serve.log"
    env = {**prefect_server.env, "ALERTING_MONITOR_TAG": tag, "PREFECT_RUNNER_POLL_FREQUENCY": "1"}
    start_process([ALERTING, "serve", "-c", str(config), "--interval", "5s", "--name", tag,
                   "--status-page", f"127.0.0.1:{port}"], env=env, log=log, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"

    def built():
        try:
            answer = httpx.get(base + "/status.json", timeout=5)
        except httpx.TransportError:
            return None
        return answer.json() if answer.status_code == 200 else None

    first = wait_for(built, 180, what="the status page built by a served cycle", details=lambda: log.read_text()[-3000:])
    assert first["title"] == "Served status"
    assert {m["id"]: m["status"] for m in first["monitors"]} == {"api": "down", "web": "up"}
    page = parse(httpx.get(base + "/", timeout=5).text)
    assert page.banner.strip() == "Partial outage"
    assert [(s["name"], s["status"]) for s in page.sections.values()] == [("api", "Down"), ("web", "Operational")]
    wait_for(lambda: (built() or first)["generated_at"] != first["generated_at"], 120,
             what="the next cycle's rebuild", details=lambda: log.read_text()[-3000:])
    assert httpx.get(base + "/badges/", timeout=5).status_code == 404


def test_the_one_pass_median_is_the_histogram_median():
    from alerting import latency

    for text_ in ("16:5,17:12", "3:1", "40:2,1:7,12:1", "0:4,50:4", "", "9:0"):
        assert latency.median(text_) == latency.percentile(latency.parse(text_), 50), text_


@pytest.mark.parametrize("statuses,overall", [
    (["up", "up", "maintenance", "unknown"], "All systems operational"),
    (["up", "degraded", "up"], "Degraded performance"),
    (["up", "down", "degraded", "up"], "Partial outage"),
    (["down", "up"], "Partial outage"),
    (["down", "down", "up", "maintenance"], "Major outage"),
    ([], "All systems operational"),
])
def test_the_banner_follows_the_statuses(statuses, overall):
    from alerting.status_page.data import Monitor, Page

    monitors = [Monitor(f"m{i}", f"m{i}", s, None, None, [], []) for i, s in enumerate(statuses)]
    assert Page("t", None, NOW, monitors, []).overall_text == overall


def test_a_page_with_no_public_monitor_and_an_empty_store_builds(tmp_path):
    config_path = tmp_path / "monitors.yaml"
    config_path.write_text("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\nstatus_page:\n  out: site\n  tags: [public]\n")
    proc = alerting(["status-page", "build", "-c", str(config_path)], cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    page = parse((tmp_path / "site" / "index.html").read_text())
    assert page.banner.strip() == "All systems operational" and page.sections == {}
    assert json.loads((tmp_path / "site" / "status.json").read_text())["monitors"] == []
