"""The prefect-deployment type against a real Prefect server (the session's, tests/conftest.py; each
test's flow has a name of its own): a deployment whose last Completed run is recent, then too old,
then failing; and one that does not exist. Runs are made through the API with the states (and times)
a scheduled flow would leave."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

from alerting.check import check
from alerting.models import ErrorKind, MonitorSpec


def flow_name() -> str:
    """A flow of this test's own on the shared server."""
    return f"etl-{uuid.uuid4().hex[:8]}"


def spec(url: str, **kw) -> MonitorSpec:
    return MonitorSpec(name="nightly", url=url, attempts=1, retry_backoff=0, retry_backoff_max=0, timeout=30, **kw)


def _deployment(flow_name: str, name: str):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        flow_id = client.create_flow_from_name(flow_name)
        return client.create_deployment(flow_id=flow_id, name=name)


def _run(deployment_id, state_type: str) -> None:
    """A run of the deployment that reached ``state_type`` now (the server stamps the time itself)."""
    from prefect.client.orchestration import get_client
    from prefect.states import Completed, Crashed, Failed, Pending, Running

    make = {"COMPLETED": Completed, "FAILED": Failed, "CRASHED": Crashed}[state_type]
    with get_client(sync_client=True) as client:
        run = client.create_flow_run_from_deployment(deployment_id, state=Pending())
        client.set_flow_run_state(run.id, Running(), force=True)
        client.set_flow_run_state(run.id, make(), force=True)


def later(hours: float):
    """The wall clock of a check made ``hours`` from now (injected: no waiting)."""
    moment = datetime.now(timezone.utc) + timedelta(hours=hours)
    return lambda: moment


def test_recent_then_too_old_then_failing():
    etl = flow_name()
    deployment_id = _deployment(etl, "nightly")
    url = f"prefect-deployment://{etl}/nightly"

    r = check(spec(url, max_age="26h"))
    assert not r.ok and r.error is ErrorKind.STALE_DEPLOYMENT and "no Completed run at all" in r.message

    _run(deployment_id, "COMPLETED")
    r = check(spec(url, max_age="26h"))
    assert r.ok and r.type == "prefect-deployment" and f"{etl}/nightly: last Completed run ended" in r.message

    r = check(spec(url, max_age="26h"), now=later(27))  # the same run, seen 27 hours later: too old
    assert not r.ok and r.error is ErrorKind.STALE_DEPLOYMENT
    assert "ago; expected one within 1d 2h" in r.message

    _run(deployment_id, "FAILED")  # failed since the last Completed
    r = check(spec(url, max_age="26h"))
    assert not r.ok and r.error is ErrorKind.DEPLOYMENT_FAILED and "ended Failed" in r.message
    assert check(spec(url, max_age="26h", fail_on_failed_run=False)).ok
    _run(deployment_id, "COMPLETED")
    assert check(spec(url, max_age="26h")).ok  # a Completed run after the failure: up again


def test_a_deployment_that_does_not_exist():
    etl = flow_name()
    _deployment(etl, "nightly")
    r = check(spec(f"prefect-deployment://{etl}/missing", max_age="1h"))
    assert not r.ok and r.error is ErrorKind.DEPLOYMENT_MISSING and f"no deployment {etl}/missing" in r.message
