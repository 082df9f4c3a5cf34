"""A whole cycle without Prefect: check, record, deliver. What runs when the Prefect API is unreachable
(``alerting run`` and the serving process's degraded mode), and what ``alerting drill`` uses."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterator
from contextlib import contextmanager

from alerting.check import check
from alerting.config import Config
from alerting.cycle import CycleReport, open_store, queue_drill, run_cycle
from alerting.deliverer import Deliverer
from alerting.delivery import DeliveryResult
from alerting.models import CheckResult, ErrorKind, MonitorSpec
from alerting.outbox import deliver_pending
from alerting.redact import redact_target_url

log = logging.getLogger(__name__)
# the failure a drill makes up for a monitor that is not http (its target is not contacted)
DRILL_KINDS = {"tcp": ErrorKind.TCP_REFUSED, "dns": ErrorKind.DNS_NXDOMAIN, "tls": ErrorKind.CERT_INVALID,
               "prefect-deployment": ErrorKind.STALE_DEPLOYMENT}


def cycle_and_deliver(
    config: Config, shard: str | None = None, cycle_seconds: float | None = None
) -> tuple[CycleReport, list[DeliveryResult]]:
    """One cycle and the delivery of everything pending. Never raises for a target, a channel or
    the store: the report says what happened."""
    try:
        store = open_store(config)
    except Exception as exc:  # noqa: BLE001
        log.error("State store unusable: %s", exc)
        return run_cycle(config, None, shard=shard, cycle_seconds=cycle_seconds), []
    with store:
        deliverer = Deliverer(store, lambda: config)
        try:
            report = run_cycle(config, store, shard=shard, cycle_seconds=cycle_seconds, on_queued=deliverer.wake)
        finally:
            deliveries = deliverer.close()
        return report, deliveries


@contextmanager
def simulated_outage(spec: MonitorSpec, status: int) -> Iterator[None]:
    """The tutorial's simulation as a feature: ``responses`` answers this target with ``status``;
    every other request passes through to the network."""
    import responses

    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        mock.add(spec.method, spec.url, status=status, body=f"simulated HTTP {status} (alerting drill)")
        mock.add_passthru(re.compile(r".*"))
        yield


def run_drill(config: Config, spec: MonitorSpec, status: int = 503) -> tuple[CheckResult, list[DeliveryResult]]:
    """Fire drill: the real check against a simulated ``status``, then a ``[DRILL] DOWN`` through the
    outbox and the deliverer like any alert. The monitor's state is not touched."""
    if spec.type == "http":
        with simulated_outage(spec, status):
            result = check(spec)
    else:  # no HTTP to answer in its place: the failure is made up whole, and the target is not contacted
        kind = DRILL_KINDS.get(spec.type, ErrorKind.CONNECTION)
        result = CheckResult(monitor=spec.name, url=redact_target_url(spec.url), ok=False, type=spec.type,
                             error=kind, message=f"simulated {kind.value.replace('_', ' ')} (alerting drill)")
    with open_store(config) as store:
        alert_id = queue_drill(store, spec, result)
        return result, deliver_pending(store, config, only={alert_id})
