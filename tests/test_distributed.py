"""The distributed mode end to end, on this machine: PostgreSQL (the state store and the Prefect
server's own database), a Prefect server on it, the scheduler (`alerting serve`) and three task
workers (`alerting worker`) in two locations, each location reaching the targets through its own
local HTTP proxy (HTTP_PROXY; the Prefect API is reached as `localhost`, which NO_PROXY exempts).

(a) every monitor checked from both locations every cycle; (b) kill -9 of a worker holding a batch:
every monitor checked again from that location within two intervals; a worker started later takes
its location's work by itself once the others are gone; (c) one location's proxy refusing: PARTIAL, no
DOWN (quorum 2), and `alerting run` through the same workers says so too; both: exactly one
DOWN per monitor listing both locations; back: one RESOLVED; a location whose only worker died is
reported once and counts as neither up nor down; (d) nothing sent twice.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text

from toolkit import PrefectServer, Proxy, kill, spawn, stop, wait_for
from toolkit.forked_cli import CLI

ALERTING = str(Path(sys.executable).parent / "alerting")
INTERVAL = 6.0  # seconds; 4 s left too little room for a batch's round trip through the task workers on a slow machine
NAMES = [f"svc-{i}" for i in range(8)]


def readme_commands() -> dict[str, list[str]]:
    """The README's "Scaling out" commands, one per role, split as a shell would (environment first)."""
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    section = readme.split("\n## Scaling out\n", 1)[1].split("\n## ", 1)[0]
    lines = [line.strip() for line in section.splitlines() if line.startswith("       ") and line.strip()]
    roles = {"database": "PREFECT_API_DATABASE_CONNECTION_URL", "server": "prefect server start",
             "scheduler": " alerting serve ", "worker": " alerting worker "}
    return {role: shlex.split(next(line for line in lines if needle in line)) for role, needle in roles.items()}


def as_run_here(words: list[str], config: Path, location: str = "") -> tuple[dict[str, str], list[str]]:
    """(environment, argv) of a README command, run here: this venv's alerting, the test's config."""
    env = dict(w.split("=", 1) for w in words if "=" in w and w.split("=", 1)[0].isupper())
    argv = [w for w in words if not ("=" in w and w.split("=", 1)[0].isupper())]
    assert argv[0] == "alerting", words
    argv = [ALERTING, *argv[1:]]
    argv = [str(config) if w == "monitors.yaml" else location if w == "eu-west" else w for w in argv]
    return env, argv


def test_the_readme_gives_one_command_per_role():
    commands = readme_commands()
    assert commands["database"][:2] == ["export", commands["database"][1]]
    assert commands["database"][1].startswith("PREFECT_API_DATABASE_CONNECTION_URL=postgresql+asyncpg://")
    assert commands["server"] == ["PREFECT_SERVER_ANALYTICS_ENABLED=false", "prefect", "server", "start",
                                  "--host", "0.0.0.0", "--port", "4200"]
    env, argv = as_run_here(commands["scheduler"], Path("m.yaml"))
    assert list(env) == ["PREFECT_API_URL"] and argv[1:] == ["serve", "-c", "m.yaml"]
    env, argv = as_run_here(commands["worker"], Path("m.yaml"), "us-east")
    assert list(env) == ["PREFECT_API_URL"] and argv[1:] == ["worker", "-c", "m.yaml", "--location", "us-east"]


def _database(postgres, name: str) -> str:
    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    admin.dispose()
    return postgres.url.rsplit("/", 1)[0] + f"/{name}"


def _history(store_url: str, since: float) -> dict[str, list[int]]:
    engine = create_engine(store_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(text(
                "SELECT s.monitor, h.ts FROM check_history h JOIN monitor_state s ON s.id = h.monitor_id "
                "WHERE h.ts >= :since ORDER BY h.ts"), {"since": int(since)}).all()
    finally:
        engine.dispose()
    out: dict[str, list[int]] = {}
    for monitor, ts in rows:
        out.setdefault(monitor, []).append(ts)
    return out


def _received_since(log: Path, offset: int) -> int:
    return log.read_text(errors="replace")[offset:].count("Received task run")


@pytest.mark.slow
def test_three_workers_two_locations_failover_and_quorum(postgres, target, receiver, tmp_path):
    for name in NAMES:
        target.route(f"/{name}", statuses=[200], delay=0.3)  # a batch takes a moment: a kill finds it held
    store_url = _database(postgres, "dist_store")
    prefect_db = _database(postgres, "dist_prefect").replace("postgresql+psycopg", "postgresql+asyncpg")
    monitors = "".join(f"  - {{name: {n}, url: '{target.url('/' + n)}'}}\n" for n in NAMES)
    config = tmp_path / "monitors.yaml"
    config.write_text(
        f"state_url: '{store_url}'\nstorm_threshold: 0\nlocations: [eu-west, us-east]\n"
        f"defaults: {{interval: {INTERVAL:g}s, attempts: 1, timeout: 1s, retry_backoff: 0, retry_backoff_max: 0, "
        f"quorum: 2, channels: [hook]}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\nmonitors:\n{monitors}")
    proxies = {"eu-west": Proxy(), "us-east": Proxy()}
    server = PrefectServer(extra_env={"PREFECT_API_DATABASE_CONNECTION_URL": prefect_db})
    procs: list[subprocess.Popen] = []
    try:
        server.start()
        api = server.api_url.replace("127.0.0.1", "localhost")  # NO_PROXY: the API never goes through a proxy
        base = {**server.env, "PREFECT_API_URL": api, "NO_PROXY": "localhost", "no_proxy": "localhost",
                "PREFECT_LOGGING_LEVEL": "INFO"}
        # the README's commands, with this server's URL and this test's config
        commands = readme_commands()
        scheduler_log = tmp_path / "serve.log"
        _, argv = as_run_here(commands["scheduler"], config)
        procs.append(spawn(argv, env=base, log=scheduler_log, cwd=tmp_path))
        workers: list[tuple[str, subprocess.Popen, Path]] = []

        def start_worker(loc: str, log: Path) -> subprocess.Popen:
            _, argv = as_run_here(commands["worker"], config, loc)
            env = {**base, "HTTP_PROXY": proxies[loc].url, "http_proxy": proxies[loc].url}  # the location's path
            proc = spawn(argv, env=env, log=log, cwd=tmp_path)
            procs.append(proc)
            return proc

        for i, loc in enumerate(["eu-west", "eu-west", "us-east"]):
            log = tmp_path / f"worker-{i}-{loc}.log"
            workers.append((loc, start_worker(loc, log), log))

        def logs() -> str:
            return "\n".join(f"--- {p.name}\n{p.read_text(errors='replace')[-3000:]}"
                             for p in [scheduler_log, *(w[2] for w in workers)])

        # (a) every monitor checked from both locations, every cycle
        def both(n: int) -> bool:
            return all(p.paths.get(f"/{name}", 0) >= n for p in proxies.values() for name in NAMES)

        wait_for(lambda: both(1), 90, what="a first check of every monitor from both locations", details=logs)
        start = time.time()
        before = {loc: dict(p.paths) for loc, p in proxies.items()}
        # three more checks of each monitor from each location, each at most a second late (the gap
        # bound the recorded history is held to below)
        wait_for(lambda: all(p.paths[f"/{n}"] - before[loc][f"/{n}"] >= 3 for loc, p in proxies.items() for n in NAMES),
                 3 * (INTERVAL + 1), what="three more checks of every monitor from both locations", details=logs)
        # recorded (passes of monitors known UP are written up to 2 s after their check): poll for it
        wait_for(lambda: all(len(_history(store_url, start).get(name, [])) >= 3 for name in NAMES), 30,
                 what="three recorded checks of every monitor", details=logs)
        history = _history(store_url, start)
        for name in NAMES:
            gaps = [b - a for a, b in zip(history[name], history[name][1:], strict=False)]
            # (a) is "checked every cycle": no gap of two intervals (a missed cycle). A check can start up
            # to a round's flush late, and a full suite beside it once made one 2 s late (a gap of 8 s)
            assert len(history[name]) >= 3 and max(gaps) < 2 * INTERVAL, (name, history[name])

        # (b) kill -9 an eu-west worker the moment it takes a batch (it dies holding it)
        offsets = {log: len(log.read_text(errors="replace")) for _, _, log in workers[:2]}
        holder = wait_for(lambda: next((w for w in workers[:2] if _received_since(w[2], offsets[w[2]])), None),
                          3 * INTERVAL, what="an eu-west worker taking a batch", details=logs)
        kill(holder[1])
        killed_at = time.time()
        lost = dict(proxies["eu-west"].paths)
        wait_for(lambda: all(proxies["eu-west"].paths.get(f"/{n}", 0) > lost.get(f"/{n}", 0) for n in NAMES),
                 2 * INTERVAL, what="every monitor checked from eu-west again within two intervals", details=logs)
        failover = time.time() - killed_at

        # a worker added now takes a share by itself (checked at the end)
        late_log = tmp_path / "worker-3-eu-west.log"
        start_worker("eu-west", late_log)

        # (c) us-east cut off: PARTIAL, no DOWN
        proxies["us-east"].refuse()

        def states() -> dict[str, dict]:
            run = CLI.run(["status", "-c", str(config), "--json"], cwd=tmp_path, env=base, timeout=60)
            return {row["monitor"]: row for row in json.loads(run.stdout)["monitors"]}

        # the first check through the cut path may end on its pooled connection to the proxy being closed
        # ("us-east: connection closed ..."); the ones after it find the proxy's port refusing
        wait_for(lambda: all(row["status"] == "PARTIAL" and "us-east: refused" in (row["warning"] or "")
                             for row in states().values()), 3 * INTERVAL + 5,
                 what="every monitor PARTIAL, us-east refused", details=lambda: f"{states()}\n{logs()}")
        assert receiver.titles() == []
        assert "eu-west: up, " in (states()["svc-0"]["warning"] or "")
        # `alerting run` goes through the same workers and quorum (checked from here it would be plain UP)
        once = CLI.run(["run", "-c", str(config), "--json"], cwd=tmp_path, env=base, timeout=120)
        assert once.returncode == 0, once.stdout + once.stderr
        results = json.loads(once.stdout)["results"]
        assert sorted(r["monitor"] for r in results) == sorted(NAMES)
        assert all(r["ok"] and r["warning"] == "partial" and "eu-west: up, " in r["warning_message"]
                   and "us-east: refused" in r["warning_message"] for r in results), once.stdout
        assert receiver.titles() == []

        # both cut off: one DOWN per monitor, listing both locations
        proxies["eu-west"].refuse()
        wait_for(lambda: len(receiver.titles()) >= len(NAMES), 3 * INTERVAL + 5, what="a DOWN per monitor",
                 details=logs)
        downs = [m for m in receiver.messages if m.get("title", "").startswith("DOWN")]
        assert sorted(m["title"] for m in downs) == sorted(f"DOWN: {n}" for n in NAMES)
        assert all("eu-west: " in m["message"] and "us-east: " in m["message"] for m in downs)

        # back: one RESOLVED per monitor
        proxies["us-east"].restore()
        proxies["eu-west"].restore()
        wait_for(lambda: len(receiver.titles()) >= 2 * len(NAMES), 3 * INTERVAL + 5, what="a RESOLVED per monitor",
                 details=logs)
        wait_for(lambda: all(row["status"] == "UP" for row in states().values()), 3 * INTERVAL + 5,
                 what="every monitor UP again")

        # the worker added later takes the work by itself: with the other eu-west worker gone too, it is
        # the location's only one (while both live, Prefect gives each batch to one of them, by chance)
        survivor = next(w for w in workers[:2] if w is not holder)
        kill(survivor[1])

        # a location without a live worker is reported once, counts as neither up nor down
        kill(workers[2][1])
        quiet = "Location us-east has no live worker"
        wait_for(lambda: quiet in scheduler_log.read_text(errors="replace"), 3 * INTERVAL, what="the report",
                 details=logs)
        mark = time.time()
        wait_for(lambda: _history(store_url, mark + 1) and all(_history(store_url, mark + 1).get(n) for n in NAMES),
                 3 * INTERVAL, what="a cycle checked from eu-west alone")
        assert scheduler_log.read_text(errors="replace").count(quiet) == 1
        assert _received_since(late_log, 0) >= 1, late_log.read_text(errors="replace")[-2000:]  # eu-west's checks
        assert all(row["status"] == "UP" for row in states().values())

        # (d) nothing sent twice
        titles = Counter(t.split(" (")[0] for t in receiver.titles())
        assert titles == Counter({**{f"DOWN: {n}": 1 for n in NAMES}, **{f"RESOLVED: {n}": 1 for n in NAMES}})

        # batches went through the state store, and each row went once its round ended (the killed
        # worker's too); Prefect's result storage holds one file per location (the last batch's count,
        # overwritten), no parameters and no file per batch
        engine = create_engine(store_url)
        try:
            with engine.connect() as conn:
                old = conn.execute(text("SELECT count(*) FROM check_batch WHERE created < :t"),
                                   {"t": time.time() - 3 * INTERVAL}).scalar()
        finally:
            engine.dispose()
        assert old == 0
        storage = server.home / "storage"
        files = sorted(p.relative_to(storage).as_posix() for p in storage.rglob("*") if p.is_file())
        assert set(files) <= {"check-batch-eu-west", "check-batch-us-east"}, files
        print(f"failover {failover:.1f}s")
    finally:
        for proc in procs:
            stop(proc, timeout=20)
        server.stop()
        for proxy in proxies.values():
            proxy.close()
