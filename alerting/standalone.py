"""A whole cycle without Prefect: check, record, deliver. What runs when the Prefect API is unreachable
(``alerting run`` and the serving process's degraded mode), and what ``alerting drill`` uses."""

from __future__ import annotations

import io
import logging
from collections.abc import Mapping

from urllib3 import BaseHTTPResponse, HTTPResponse

from alerting.check import check
from alerting.config import Config
from alerting.cycle import CycleReport, open_store, queue_drill, run_cycle
from alerting.deliverer import Deliverer
from alerting.delivery import DeliveryResult
from alerting.http_client import HttpClient
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


class SimulatedOutage(HttpClient):
    """The tutorial's simulation as a feature: this client answers the monitor's own request with
    ``status`` (the target is not contacted); every other request goes to the network."""

    def __init__(self, spec: MonitorSpec, status: int) -> None:
        super().__init__(pool_size=4)
        self.spec, self.status = spec, status

    def request(self, method: str, url: str, headers: Mapping[str, str], timeout: float,
                verify: bool = True) -> BaseHTTPResponse:
        if method != self.spec.method or url != self.spec.url:
            return super().request(method, url, headers, timeout, verify)
        body = f"simulated HTTP {self.status} (alerting drill)".encode()
        return HTTPResponse(io.BytesIO(body), {"Content-Type": "text/plain", "Content-Length": str(len(body))},
                            status=self.status, preload_content=False, request_method=method)


def run_drill(config: Config, spec: MonitorSpec, status: int = 503) -> tuple[CheckResult, list[DeliveryResult]]:
    """Fire drill: the real check against a simulated ``status``, then a ``[DRILL] DOWN`` through the
    outbox and the deliverer like any alert. The monitor's state is not touched."""
    if spec.type == "http":
        client = SimulatedOutage(spec, status)
        try:
            result = check(spec, client)
        finally:
            client.close()
    else:  # no HTTP to answer in its place: the failure is made up whole, and the target is not contacted
        kind = DRILL_KINDS.get(spec.type, ErrorKind.CONNECTION)
        result = CheckResult(monitor=spec.name, url=redact_target_url(spec.url), ok=False, type=spec.type,
                             error=kind, message=f"simulated {kind.value.replace('_', ' ')} (alerting drill)")
    with open_store(config) as store:
        alert_id = queue_drill(store, spec, result)
        return result, deliver_pending(store, config, only={alert_id})
