"""How the scheduler cuts a location's share of a round into task runs (flows/dispatch.py ``batches``):
one run while it fits (each run costs CPU on the server, the scheduler and a worker), else runs of at
most ``batch`` names, as even as can be."""

from flows.dispatch import batches

NAMES = [f"svc-{i}" for i in range(10)]


def test_one_run_while_it_fits():
    assert batches(NAMES, batch=1000) == [NAMES]
    assert batches(NAMES, batch=10) == [NAMES]
    assert batches([], batch=1000) == []


def test_bigger_rounds_are_cut_evenly_and_every_name_goes_once():
    parts = batches(NAMES, batch=4)
    assert [len(p) for p in parts] == [4, 3, 3]
    assert [n for part in parts for n in part] == NAMES
    assert [len(p) for p in batches(NAMES, batch=9)] == [5, 5]
