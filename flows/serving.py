"""The guard beside a served monitor: it keeps checking and alerting whatever happens to Prefect.

``alerting serve`` (both modes) runs one ``ServeGuard`` in a thread. Every few seconds it:

- asks the Prefect API for its health. When the API has not answered for ``DEGRADE_AFTER``
  seconds, monitoring goes *degraded*: the guard runs the cycle itself on its own clock
  (alerting/standalone.py: checks, state store, outbox, delivery; YAML monitors, Apprise channels)
  and announces once on the channels "monitoring is running without the Prefect API since HH:MM
  (reason)". When the API answers again, flow runs take over with no restart and the guard
  announces "Prefect API reachable again". The announcement is recorded in the state store, so
  several serving processes sharing a store announce once;
- holds a *lease* on the deployment (a Prefect variable naming this process, renewed by a
  heartbeat): a second ``alerting serve`` of the same deployment is refused with the name of the
  first, so stopping one can never pause the schedule that another serves (Prefect's runner pauses
  its deployment's schedule when it shuts down); and if the schedule is paused behind its back
  anyway, the guard resumes it;
- when no check has been recorded for ``STALL_AFTER`` intervals although the API answers (a
  wedged runner, a schedule paused by hand), runs a cycle itself, so the monitor never goes quiet.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx

from alerting.config import ConfigError, load_config
from alerting.cycle import notice_rows, open_store
from alerting.models import utcnow
from alerting.outbox import deliver_pending
from alerting.redact import redact_target_url
from alerting.standalone import cycle_and_deliver
from flows.quiet_logs import quiet_prefect_tracebacks

log = logging.getLogger("alerting.serve")

HEARTBEAT = 15.0  # seconds between lease renewals (two API calls, three with the schedule check)
LEASE_STALE = 45.0  # a lease not renewed for this long belongs to a dead process
DEGRADE_AFTER = 15.0  # seconds without an answer from the API before degraded mode
DEGRADE_AFTER_ENV = "ALERTING_DEGRADE_AFTER"  # overrides DEGRADE_AFTER (seconds)
STALL_AFTER = 3  # intervals without a recorded check (API up) before the guard checks itself
DOWN_META = "prefect_api_down_since"


class AlreadyServed(Exception):
    """Another live process serves this deployment."""


class LeaseUnavailable(Exception):
    """The Prefect server kept failing (5xx, connection errors) while this process took its lease."""


CLAIM_PATIENCE = 90.0  # seconds of transient Prefect errors (a busy SQLite server answers 503) at start


def _transient(exc: BaseException) -> bool:
    """A Prefect API error worth another try: the server busy or away, not a refusal."""
    if isinstance(exc, httpx.HTTPStatusError):
        return exc.response.status_code >= 500 or exc.response.status_code == 429
    return isinstance(exc, httpx.TransportError)


def _short(exc: BaseException | None) -> str:
    """An API error in a few words (no URL: it may carry credentials)."""
    if isinstance(exc, httpx.HTTPStatusError):
        return f"HTTP {exc.response.status_code}"
    return type(exc).__name__


def lease_name(deployment: str) -> str:
    return "alerting-serve-" + re.sub(r"[^a-z0-9_-]+", "-", deployment.lower()).strip("-")


def this_process() -> str:
    return f"pid {os.getpid()} on {socket.gethostname()}"


def api_health(api_url: str, timeout: float = 3.0, http: httpx.Client | None = None) -> str | None:
    """None when the API answers /health, else why not (one short phrase, no URL secrets). Pass a
    client to reuse: a new one costs ~30 ms of CPU (its TLS context), a request on a kept one ~1 ms."""
    try:
        if http is not None:
            response = http.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
        else:
            response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError as exc:
        return type(exc).__name__
    return None if response.status_code == 200 else f"HTTP {response.status_code}"


@dataclass
class ServeGuard:
    config_path: Path
    interval: float
    deployment: str  # flow/deployment name
    api_url: str
    shard: str | None = None
    poll: float = 0.0
    monitor: Any = None  # alerting.continuous.ContinuousMonitor of `serve` (default mode), checking by itself

    def __post_init__(self) -> None:
        self.poll = self.poll or max(1.0, min(10.0, self.interval / 3))
        self.degrade_after = float(os.environ.get(DEGRADE_AFTER_ENV) or DEGRADE_AFTER)
        self.owner = this_process()
        self.down_since: datetime | None = None
        self.down_reason = ""
        self.degraded = False
        self.degraded_checks = 0
        self._next_cycle = 0.0
        self._next_heartbeat = 0.0
        self._settings: tuple[Any, Any] | None = None  # Prefect's profile and settings for this API
        self._prefect: Any = None  # the kept sync Prefect client
        self._http = httpx.Client()  # for /health
        self._next_stall_check = time.monotonic() + self._stall_after()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # --- the lease ---------------------------------------------------------------------------------
    @contextmanager
    def _client(self) -> Iterator:
        """A sync Prefect client for this guard's API (settings do not follow threads by themselves)."""
        from prefect.client.orchestration import get_client
        from prefect.context import SettingsContext, get_settings_context
        from prefect.settings import PREFECT_API_URL, PREFECT_CLIENT_MAX_RETRIES

        # Settings and client are made once and kept: a temporary_settings() costs ~30 ms of CPU and
        # a new client as much again, and the guard uses them every 15 s (its heartbeat)
        if self._settings is None:
            context = get_settings_context()
            # no retries: Prefect's client would back off for minutes against a dead server, and the
            # guard must notice and go on checking, not wait
            updates: dict[Any, Any] = {PREFECT_API_URL: self.api_url, PREFECT_CLIENT_MAX_RETRIES: 0}
            self._settings = (context.profile, context.settings.copy_with_update(updates=updates))
        profile, settings = self._settings
        with SettingsContext(profile=profile, settings=settings):  # read by the client at each request
            if self._prefect is None:
                client = get_client(sync_client=True, httpx_settings={"timeout": 10.0})
                client.__enter__()
                self._prefect = client
            yield self._prefect

    def close(self) -> None:
        """Close the kept clients (after stop(), or when the guard was never started)."""
        if self._prefect is not None:
            client, self._prefect = self._prefect, None
            try:
                client.__exit__(None, None, None)
            except Exception:  # noqa: BLE001
                pass
        self._http.close()

    def claim(self) -> None:
        """Take the deployment's lease, or raise AlreadyServed naming the live process holding it.
        Transient errors (the server answering 503 while its SQLite database is locked, a dropped
        connection) are retried for CLAIM_PATIENCE seconds, then raise LeaseUnavailable."""
        from tenacity import Retrying, retry_if_exception, stop_after_delay, wait_exponential

        def warn(state) -> None:
            exc = state.outcome.exception()
            log.warning("Taking the serving lease of %s failed (%s); trying again", self.deployment,
                        _short(exc))

        try:
            for attempt in Retrying(retry=retry_if_exception(_transient), stop=stop_after_delay(CLAIM_PATIENCE),
                                    wait=wait_exponential(multiplier=0.5, max=5), before_sleep=warn, reraise=True):
                with attempt:
                    self._claim_once()
        except Exception as exc:
            if not _transient(exc):
                raise
            raise LeaseUnavailable(
                f"could not take the serving lease of deployment '{self.deployment}': the Prefect API at "
                f"{redact_target_url(self.api_url)} kept failing for {CLAIM_PATIENCE:g}s ({_short(exc)})") from None

    def _claim_once(self) -> None:
        from prefect.exceptions import ObjectNotFound

        name = lease_name(self.deployment)
        with self._client() as client:
            try:
                held = client.read_variable_by_name(name)
            except ObjectNotFound:
                held = None
            if held is not None and isinstance(held.value, dict):
                lease = held.value
                age = time.time() - float(lease.get("heartbeat", 0))
                if lease.get("owner") != self.owner and age < LEASE_STALE and not _dead_here(lease):
                    raise AlreadyServed(
                        f"deployment '{self.deployment}' is already served by {lease.get('owner')} "
                        f"(last heartbeat {age:.0f}s ago, started {lease.get('started', '?')}); stop it first, "
                        "or serve under another --name"
                    )
            self._write_lease(client)

    def _write_lease(self, client) -> None:
        from prefect.client.schemas.actions import VariableCreate, VariableUpdate

        name = lease_name(self.deployment)
        value = {"owner": self.owner, "pid": os.getpid(), "host": socket.gethostname(),
                 "heartbeat": time.time(), "started": getattr(self, "_started", None) or _stamp(utcnow())}
        self._started = value["started"]
        try:
            client.update_variable(VariableUpdate(name=name, value=value))
        except httpx.HTTPStatusError as exc:  # 404: the first claim, or the server lost it
            if exc.response.status_code != 404:
                raise
            client.create_variable(VariableCreate(name=name, value=value, tags=["outage-alerting"]))

    def release(self) -> None:
        """Drop the lease (only when it is still ours). Best effort."""
        try:
            with self._client() as client:
                held = client.read_variable_by_name(lease_name(self.deployment))
                if held is not None and isinstance(held.value, dict) and held.value.get("owner") == self.owner:
                    client.delete_variable_by_name(lease_name(self.deployment))
        except Exception:  # noqa: BLE001
            pass

    def _heartbeat(self) -> None:
        """Renew the lease; resume the schedule if something paused it while we serve it."""
        from prefect.exceptions import ObjectNotFound

        with self._client() as client:
            self._write_lease(client)
            try:
                deployment = client.read_deployment_by_name(self.deployment)
            except ObjectNotFound:
                return  # not registered yet (serving is starting), or the server lost it
            if deployment.paused:
                client.resume_deployment(deployment.id)
                log.warning("The schedule of %s was paused while this process serves it; resumed it",
                            self.deployment)

    # --- the loop ----------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="serve-guard", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=10)

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.tick()
            except Exception as exc:  # noqa: BLE001 - the guard itself must never die
                log.error("Serve guard: %s: %s", type(exc).__name__, str(exc).split(" for url ")[0][:200])
            self._stop.wait(self.poll)

    def tick(self) -> None:
        quiet_prefect_tracebacks()  # Prefect's runner installs its handlers after we start
        reason = api_health(self.api_url, http=self._http)
        now = time.monotonic()
        if reason is None:
            if self.degraded:
                self._restore()
                self._next_stall_check = now + self._stall_after()
            self.down_since = None
            if now >= self._next_heartbeat:
                self._next_heartbeat = now + HEARTBEAT
                self._heartbeat()
            if now >= self._next_stall_check:
                self._next_stall_check = now + self.interval
                self._check_stalled()
            return
        if self.down_since is None:
            self.down_since, self.down_reason = utcnow(), reason
            self._down_at = now
            log.warning("Prefect API at %s does not answer (%s)", self.api_url, reason)
        if not self.degraded and now - self._down_at >= self.degrade_after:
            self._degrade()
        if self.degraded and now >= self._next_cycle and not self._monitor_checks():
            self._next_cycle = now + self.interval
            self._cycle("degraded")
        if self.degraded and self._monitor_checks():
            self.degraded_checks = self.monitor.stats.finished - self._finished_at_degrade

    def _monitor_checks(self) -> bool:
        """The continuous monitor checks by itself: the guard only announces and watches it."""
        return self.monitor is not None and self.monitor.alive()

    def _config(self):
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            log.error("Config unusable, nothing checked this cycle: %s", exc.problems[0])
            return None

    def _cycle(self, why: str) -> None:
        config = self._config()
        if config is None:
            return
        report, deliveries = cycle_and_deliver(config, shard=self.shard, cycle_seconds=self.interval)
        self.degraded_checks += len(report.results)
        sent = sum(1 for d in deliveries if d.ok)
        log.warning("Checked %d monitors without Prefect (%s): %s; %d alert(s) sent",
                    len(report.results), why, report.message, sent)

    def _degrade(self) -> None:
        self.degraded = True
        self.degraded_checks = 0
        self._finished_at_degrade = self.monitor.stats.finished if self.monitor is not None else 0
        self._next_cycle = 0.0
        since = self.down_since or utcnow()
        log.error("Monitoring runs without the Prefect API since %s UTC (%s): checking and alerting "
                  "from this process", f"{since:%H:%M:%S}", self.down_reason)
        title = f"no Prefect API since {since:%H:%M} UTC"
        lead = f"Monitoring is running without the Prefect API since {since:%H:%M} UTC ({self.down_reason})"
        rows = [("Deployment", self.deployment),
                ("Still working", "checks, state, alerts to Apprise channels, from the serving process"),
                ("Waiting for the API", "flow runs, the Prefect UI, automations, block channels")]
        self._announce("NOTICE", title, lead, rows, set_down=_stamp(since))

    def _restore(self) -> None:
        self.degraded = False
        since = self.down_since
        takes_over = "flow runs report again" if self._monitor_checks() else "flow runs take over"
        log.warning("Prefect API reachable again; %s (%d checks made without it)", takes_over, self.degraded_checks)
        title = "Prefect API reachable again"
        lead = (f"Prefect API reachable again: {takes_over}" if self._monitor_checks()
                else "Prefect API reachable again: flow runs have taken over from the serving process")
        rows = [("Deployment", self.deployment),
                ("Unreachable", f"from {since:%H:%M:%S} UTC to {utcnow():%H:%M:%S} UTC" if since else "n/a"),
                ("Checks made without it", str(self.degraded_checks))]
        self._announce("RESTORED", title, lead, rows, set_down="")

    def _announce(self, kind: str, title: str, lead: str, rows: list, set_down: str) -> None:
        """Queue the notice once per outage of the API (recorded in the store), then deliver."""
        config = self._config()
        if config is None:
            return
        with open_store(config) as store:
            with store.begin() as tx:
                current = tx.get_meta(DOWN_META) or ""
                if bool(current) != bool(set_down):  # not announced yet (by us or by another shard)
                    tx.set_meta(DOWN_META, set_down)
                    tx.enqueue(notice_rows(config, kind, title, lead, rows, utcnow()))
            deliver_pending(store, config)

    def _stall_after(self) -> float:
        return max(STALL_AFTER * self.interval, 60.0)

    def _check_stalled(self) -> None:
        if self.monitor is not None:
            if not self.monitor.alive():
                log.error("The continuous monitor stopped; checking from the guard every %gs", self.interval)
                self._cycle("continuous monitor stopped")
            return
        config = self._config()
        if config is None or not config.monitors:
            return
        with open_store(config) as store:
            last = store.last_checked()
        newest = max(last.values(), default=None)
        if newest is not None and (utcnow() - newest).total_seconds() > self._stall_after():
            log.error("No check recorded for %.0fs although the Prefect API answers (a stalled runner or a "
                      "paused schedule?); checking from this process", (utcnow() - newest).total_seconds())
            self._cycle("flow runs stalled")


def _stamp(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _dead_here(lease: dict) -> bool:
    """A lease left by a process of this machine that no longer exists (kill -9, reboot)."""
    if lease.get("host") != socket.gethostname():
        return False
    try:
        os.kill(int(lease.get("pid", 0)), 0)
    except ProcessLookupError:
        return True
    except (OSError, ValueError):
        return False
    return False
