"""The distributed mode's batches in the state store (alerting/batches.py), and a worker's side of one
(flows/location_tasks.py ``_Checker``) against a real target: what it checks, what it writes back,
and that a batch the scheduler took back is not checked at all. The whole path through Prefect's task
workers is tests/test_distributed.py."""

from __future__ import annotations

import time
import uuid

from alerting import batches
from alerting.models import CheckResult
from alerting.store import Store
from flows.location_tasks import _Checker, batch_id_of, run_name


def _store(tmp_path) -> Store:
    return Store(f"sqlite:///{tmp_path / 'state.db'}")


def test_a_batch_goes_out_is_answered_and_taken_once(tmp_path):
    with _store(tmp_path) as store:
        batch = uuid.uuid4().hex
        batches.put(store, batch, "eu-west", ["api", "web"], time.time() + 30)
        assert batches.request(store, batch)[0] == ["api", "web"]
        assert batches.answer(store, batch, [{"monitor": "api", "ok": True}]) is True
        assert batches.take(store, batch) == [{"monitor": "api", "ok": True}]
        # gone: a late answer is refused, a late worker finds nothing to check
        assert batches.take(store, batch) is None
        assert batches.answer(store, batch, []) is False
        assert batches.request(store, batch) is None


def test_an_unanswered_batch_is_taken_as_none_and_orphans_go_on_the_next_put(tmp_path):
    with _store(tmp_path) as store:
        unanswered = uuid.uuid4().hex
        batches.put(store, unanswered, "us-east", ["api"], time.time() + 30)
        assert batches.take(store, unanswered) is None and batches.request(store, unanswered) is None
        orphan, fresh = uuid.uuid4().hex, uuid.uuid4().hex  # a scheduler died before taking `orphan`
        batches.put(store, orphan, "us-east", ["api"], time.time() - batches.ORPHAN_AFTER - 1)
        recent = uuid.uuid4().hex  # expired, but a scheduler may still be about to take it
        batches.put(store, recent, "us-east", ["api"], time.time() - 1)
        batches.put(store, fresh, "us-east", ["api"], time.time() + 30)
        assert batches.request(store, orphan) is None
        assert batches.request(store, recent) is not None and batches.request(store, fresh) is not None


def test_the_batch_id_is_found_in_the_task_run_name_in_and_outside_flow_runs():
    batch = uuid.uuid4().hex
    assert batch_id_of(run_name("eu-west", batch)) == batch
    assert batch_id_of(run_name("us:east", batch) + "-a1b") == batch  # a flow run's task runs get "-xyz"


def test_a_worker_checks_the_batch_and_writes_redacted_results_but_not_a_batch_taken_back(tmp_path, target):
    target.route("/api", statuses=[200])
    target.route("/web", statuses=[503])
    config_file = tmp_path / "monitors.yaml"
    config_file.write_text(
        f"state_url: 'sqlite:///{tmp_path / 'state.db'}'\nlocations: [eu-west]\n"
        "defaults: {attempts: 1, retry_backoff: 0, retry_backoff_max: 0}\nmonitors:\n"
        f"  - {{name: api, url: '{target.url('/api')}?token=s3cret-canary'}}\n"
        f"  - {{name: web, url: '{target.url('/web')}'}}\n")
    from alerting.config import load_config

    config = load_config(config_file)
    with _store(tmp_path) as store:
        checker = _Checker()
        checker.use(config_file, config, store)
        batch = uuid.uuid4().hex
        batches.put(store, batch, "eu-west", ["api", "web", "not-in-this-config"], time.time() + 30)
        assert checker.check(batch) == 2
        results = {r.monitor: r for r in map(CheckResult.model_validate, batches.take(store, batch))}
        assert results["api"].ok and not results["web"].ok and results["web"].status_code == 503
        assert "s3cret-canary" not in results["api"].url
        assert target.hits["/api"] == 1 and target.hits["/web"] == 1

        taken_back = uuid.uuid4().hex  # its round ended before a worker got it
        batches.put(store, taken_back, "eu-west", ["api"], time.time() + 30)
        assert batches.take(store, taken_back) is None
        assert checker.check(taken_back) == 0
        expired = uuid.uuid4().hex  # queued past its expiry while the location had no worker
        batches.put(store, expired, "eu-west", ["api"], time.time() - 1)
        assert checker.check(expired) == 0
        assert target.hits["/api"] == 1
        assert batches.take(store, expired) is None


def test_a_round_whose_state_store_is_unreachable_gives_its_monitors_back(tmp_path, prefect_server):
    """The scheduler's side: without the store no batch can go out; the round fails (logged) and its
    monitors go back to the timetable (``on_lost``) for their next slot, instead of waiting forever."""
    import socket

    from alerting.config import parse_config
    from flows.dispatch import LocationPool
    from toolkit import wait_for

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = parse_config(f"state_url: 'postgresql+psycopg://alerting:pw@127.0.0.1:{port}/alerting'\n"
                          "locations: [eu-west]\nmonitors:\n  - {name: api, url: 'http://127.0.0.1:9/'}\n", "m.yaml")
    lost: list[str] = []
    pool = LocationPool(lambda: config, on_lost=lost.append, default_interval=30, flush=0.1)
    try:
        pool.submit(config.monitors[0])
        wait_for(lambda: lost == ["api"], 60, what="the monitor handed back")
    finally:
        pool.close()
