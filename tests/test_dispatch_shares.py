"""How the scheduler cuts a location's share of a round into task runs (flows/dispatch.py ``split``).

Prefect's server hands a queued task run to the subscriber that has waited longest; with one run per
round, a worker that just answered is the oldest waiter again by the next round, so a worker added
later could wait forever. One run per live worker gives every worker one each round."""

from flows.dispatch import split

NAMES = [f"svc-{i}" for i in range(10)]


def test_one_run_per_live_worker_every_name_once():
    for workers in (1, 2, 3, 4):
        parts = split(NAMES, workers, batch=1000)
        assert len(parts) == workers
        assert [n for part in parts for n in part] == NAMES
        assert max(map(len, parts)) - min(map(len, parts)) <= 1


def test_never_more_runs_than_names_nor_an_empty_one():
    assert split(NAMES[:2], 5, batch=1000) == [["svc-0"], ["svc-1"]]
    assert split([], 3, batch=1000) == []


def test_a_location_without_a_count_still_gets_one_run_and_batch_caps_its_size():
    assert split(NAMES, 0, batch=1000) == [NAMES]
    parts = split(NAMES, 1, batch=4)
    assert [len(p) for p in parts] == [4, 3, 3]
