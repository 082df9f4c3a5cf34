"""Two workers (shards 1/2 and 2/2, run at the same time) sharing one PostgreSQL state store check
every monitor once per cycle and send every alert once."""

import subprocess
import sys
from pathlib import Path

import pytest

from alerting.models import MonitorSpec
from alerting.schedule import in_shard, parse_shard
from toolkit import spawn, stop

ALERTING = str(Path(sys.executable).parent / "alerting")


def test_shards_split_every_monitor_exactly_once():
    specs = [MonitorSpec(name=f"svc-{i}", url="http://x.example/") for i in range(200)]
    for n in (1, 2, 3, 7):
        owners = [[i for i in range(1, n + 1) if in_shard(s, (i, n))] for s in specs]
        assert all(len(o) == 1 for o in owners)
    sizes = [sum(in_shard(s, (i, 2)) for s in specs) for i in (1, 2)]
    assert min(sizes) > 60  # a fair split
    for bad in ("0/2", "3/2", "x", "1-2"):
        with pytest.raises(ValueError):
            parse_shard(bad)


def run_both_workers(config: Path) -> list[subprocess.CompletedProcess]:
    """Both shards at once; output in files (a full pipe would block a worker), groups killed at the end."""
    procs, logs = [], []
    try:
        for shard in ("1/2", "2/2"):
            logs.append(config.parent / f"worker-{shard.replace('/', '-')}.log")
            logs[-1].unlink(missing_ok=True)
            procs.append(spawn([ALERTING, "run", "-c", str(config), "--shard", shard, "--json"], log=logs[-1]))
        codes = [p.wait(timeout=180) for p in procs]
    finally:
        for p in procs:
            stop(p)
    outputs = [log.read_text() for log in logs]  # stdout and stderr together
    return [subprocess.CompletedProcess(p.args, code, out, out) for p, code, out in zip(procs, codes, outputs, strict=True)]


@pytest.mark.slow
def test_two_workers_share_a_postgres_store(postgres, target, receiver, write_config):
    names = [f"svc-{i:02d}" for i in range(30)]
    down = set(names[::5])  # 6 services answer 503
    for name in names:
        target.route(f"/{name}", statuses=[503] if name in down else [200])
    monitors = "".join(f"  - {{name: {n}, url: '{target.url('/' + n)}'}}\n" for n in names)
    config = write_config(
        f"state_url: '{postgres.url}'\nstorm_threshold: 0\n"
        f"defaults: {{attempts: 1, retry_backoff: 0, retry_backoff_max: 0, channels: [hook]}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\nmonitors:\n{monitors}"
    )

    first = run_both_workers(config)
    assert [p.returncode for p in first] == [1, 1], [p.stderr[-2000:] for p in first]
    assert all(target.hits[f"/{n}"] == 1 for n in names)  # every monitor checked once, by one worker
    assert sorted(receiver.titles()) == sorted(f"DOWN: {n}" for n in down)  # every alert once

    second = run_both_workers(config)  # still down: no second DOWN from either worker
    assert [p.returncode for p in second] == [1, 1]
    assert all(target.hits[f"/{n}"] == 2 for n in names)
    assert len(receiver.messages) == len(down)

    for name in down:
        target.route(f"/{name}", statuses=[200])
    third = run_both_workers(config)
    assert [p.returncode for p in third] == [0, 0]
    resolved = [t for t in receiver.titles() if t.startswith("RESOLVED")]
    assert sorted(t.split(" (")[0] for t in resolved) == sorted(f"RESOLVED: {n}" for n in down)
    assert len(receiver.messages) == 2 * len(down)


def test_workers_starting_together_on_an_empty_database_all_open_it(postgres):
    """The first start of several workers races to create the schema; none may fail."""
    import threading

    from sqlalchemy import create_engine, text

    from alerting.store import Store

    admin = create_engine(postgres.url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text("CREATE DATABASE race"))
    admin.dispose()
    url = postgres.url.rsplit("/", 1)[0] + "/race"
    errors: list[BaseException] = []
    barrier = threading.Barrier(4)

    def open_store():
        try:
            barrier.wait()
            Store(url).close()
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=open_store) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
