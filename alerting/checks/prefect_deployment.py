"""The prefect-deployment type: ``prefect-deployment://FLOW/DEPLOYMENT`` must have a Completed run that
ended within ``max_age`` (and, with ``fail_on_failed_run``, no Failed or Crashed run since): a watch
for the user's own scheduled flows, without pushes. It asks the Prefect API of this process
(``PREFECT_API_URL`` and the profile, as every Prefect client does)."""

from __future__ import annotations

from datetime import datetime
from urllib.parse import unquote, urlsplit

from alerting.checks.base import Attempt, Context, elapsed_ms, failed
from alerting.durations import format_duration
from alerting.models import ErrorKind, MonitorSpec

BAD_END = ("FAILED", "CRASHED")


def deployment_name(spec: MonitorSpec) -> str:
    """``flow/deployment`` from the URL (Prefect's own ``prefect deployment run`` form)."""
    parts = urlsplit(spec.url)
    return f"{parts.hostname or ''}/{unquote(parts.path.strip('/'))}"


def _ago(moment: datetime, now: datetime) -> str:
    return f"{moment:%Y-%m-%d %H:%M} UTC, {format_duration(max((now - moment).total_seconds(), 0))} ago"


class PrefectDeploymentChecker:
    name = "prefect-deployment"
    schemes: tuple[str, ...] = ("prefect-deployment",)
    fields: frozenset[str] = frozenset({"max_age", "fail_on_failed_run"})

    def problems(self, spec: MonitorSpec) -> list[tuple[str, str]]:
        parts = urlsplit(spec.url)
        if not parts.path.strip("/") or "/" in parts.path.strip("/") or parts.query:
            return [("url", "expected prefect-deployment://FLOW/DEPLOYMENT, e.g. prefect-deployment://etl/nightly")]
        if spec.max_age is None:
            return [("max_age", "required: how recent the last Completed run must be, e.g. 26h")]
        return []

    def attempt(self, spec: MonitorSpec, context: Context) -> Attempt:
        from prefect.client.orchestration import get_client
        from prefect.client.schemas.filters import (
            FlowRunFilter,
            FlowRunFilterDeploymentId,
            FlowRunFilterEndTime,
            FlowRunFilterState,
            FlowRunFilterStateType,
        )
        from prefect.client.schemas.objects import StateType
        from prefect.client.schemas.sorting import FlowRunSort

        name = deployment_name(spec)
        started = context.clock()
        with get_client(sync_client=True, httpx_settings={"timeout": spec.timeout}) as client:
            deployment = client.read_deployment_by_name(name)
            of_deployment = FlowRunFilterDeploymentId(any_=[deployment.id])

            def runs(types: list[StateType], after: datetime | None = None) -> list:
                return client.read_flow_runs(
                    flow_run_filter=FlowRunFilter(
                        deployment_id=of_deployment, state=FlowRunFilterState(type=FlowRunFilterStateType(any_=types)),
                        end_time=FlowRunFilterEndTime(after_=after) if after else None,
                    ),
                    sort=FlowRunSort.END_TIME_DESC, limit=1,
                )

            completed = runs([StateType.COMPLETED])
            last = completed[0].end_time if completed else None
            failed_since = runs([StateType.FAILED, StateType.CRASHED], last) if spec.fail_on_failed_run else []
        latency, now = elapsed_ms(context.clock, started), context.now()
        max_age = format_duration(spec.max_age or 0)
        if failed_since and (last is None or (failed_since[0].end_time or now) > last):
            run = failed_since[0]
            state = run.state.name if run.state else "Failed"
            since = f"; last Completed {_ago(last, now)}" if last else "; no Completed run yet"
            return Attempt(False, None, latency, ErrorKind.DEPLOYMENT_FAILED,
                           f"{name}: run {run.name!r} ended {state} at {_ago(run.end_time or now, now)}{since}",
                           retryable=False)
        if last is None:
            return Attempt(False, None, latency, ErrorKind.STALE_DEPLOYMENT,
                           f"{name}: no Completed run at all (expected one within {max_age})", retryable=False)
        if (now - last).total_seconds() > (spec.max_age or 0):
            return Attempt(False, None, latency, ErrorKind.STALE_DEPLOYMENT,
                           f"{name}: last Completed run ended {_ago(last, now)}; expected one within {max_age}",
                           retryable=False)
        return Attempt(True, None, latency, message=f"{name}: last Completed run ended {_ago(last, now)}")

    def classify(self, exc: BaseException, spec: MonitorSpec) -> Attempt:
        from prefect.exceptions import ObjectNotFound

        name = deployment_name(spec)
        if isinstance(exc, ObjectNotFound):
            return failed(ErrorKind.DEPLOYMENT_MISSING, f"no deployment {name} in the Prefect API", retryable=False)
        import httpx

        if isinstance(exc, httpx.TimeoutException):
            return failed(ErrorKind.TIMEOUT, f"the Prefect API did not answer within {spec.timeout:g}s")
        if isinstance(exc, (httpx.HTTPError, OSError, RuntimeError)):
            return failed(ErrorKind.CONNECTION, f"cannot ask the Prefect API about {name} ({type(exc).__name__})")
        raise exc

    def expectation(self, spec: MonitorSpec) -> str:
        also = ", no Failed or Crashed run since" if spec.fail_on_failed_run else ""
        return f"a Completed run of {deployment_name(spec)} within {format_duration(spec.max_age or 0)}{also}"


CHECKER = PrefectDeploymentChecker()
