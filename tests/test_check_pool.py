"""The check pool: worker threads on one queue, per-host and total slots, batches, closing."""

import threading

from alerting.check_pool import CheckPool, check_all
from alerting.models import MonitorSpec
from toolkit import wait_for


def spec(name, url, **kw):
    return MonitorSpec(name=name, url=url, **{"attempts": 1, "timeout": 5, **kw})


def test_a_batch_comes_back_in_the_order_given_duplicates_included(target):
    urls = [target.route(f"/p{i}") for i in range(5)]
    specs = [spec(f"m{i}", url) for i, url in enumerate(urls)]
    results = check_all([*specs, specs[0]], concurrency=3)
    assert [r.monitor for r in results] == ["m0", "m1", "m2", "m3", "m4", "m0"]
    assert all(r.ok for r in results)


def test_a_failing_result_handler_neither_kills_a_thread_nor_loses_later_checks(target):
    pool = CheckPool(concurrency=1, headroom=1)  # one thread: if it died, nothing after would run
    got: list[str] = []
    try:
        def handler(result):
            got.append(result.monitor)
            if result.monitor == "bad":
                raise RuntimeError("handler bug")

        pool.submit(spec("bad", target.route("/bad")), handler)
        pool.submit(spec("next", target.route("/next")), handler)
        wait_for(lambda: got == ["bad", "next"], 10, what="both handlers called")
        assert [r.monitor for r in pool.check_many([spec("after", target.route("/after"))])] == ["after"]
    finally:
        pool.close()


def test_closing_drops_queued_checks_and_a_waiting_batch_returns(target):
    hang = spec("hang", target.route("/hang", hang=True), timeout=30)
    queued = [spec(f"q{i}", target.route(f"/q{i}")) for i in range(3)]
    pool = CheckPool(concurrency=1, headroom=1)
    out: list = []
    waiting = threading.Thread(target=lambda: out.append(pool.check_many([hang, *queued])))
    waiting.start()
    target.wait_for_hits("/hang", 1, 10)
    closer = threading.Thread(target=pool.close)
    closer.start()
    wait_for(lambda: pool._closed, 5, what="the pool closing")
    target.release()  # the running check ends (connection closed); the queued three are dropped
    closer.join(15)
    waiting.join(15)
    assert not closer.is_alive() and not waiting.is_alive()
    assert [r.monitor for r in out[0]] == ["hang"] and not out[0][0].ok
    assert all(target.hits.get(f"/q{i}", 0) == 0 for i in range(3))


def test_a_batch_with_a_timeout_returns_what_is_in(target):
    pool = CheckPool(concurrency=2)
    try:
        fast = spec("fast", target.route("/fast"))
        slow = spec("slow", target.route("/slow", hang=True), timeout=30)
        results = pool.check_many([slow, fast], timeout=3)  # the hanging one is not waited for
        assert [r.monitor for r in results] == ["fast"]
    finally:
        target.release()
        pool.close()
