"""Serve the monitor flow on a schedule, against a configured Prefect server or a local one.

When no ``PREFECT_API_URL`` is configured (or it points at this machine and nothing answers), a
local ``prefect server start`` is launched with its UI, and stopped again on Ctrl-C.
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

LOCAL_HOSTS = {"127.0.0.1", "localhost", "::1", "0.0.0.0"}

# The local server that `serve` starts runs only what this toolkit uses (README: "Prefect server
# settings"): no work pools (foreman), no subflow cancellation, no paused runs, no concurrency
# leases. The scheduler keeps its 60 s loop: it plans up to 100 runs ahead, and `serve` starts the
# first run itself. Late runs stay on (the "run late" automation), on a slower loop.
SERVER_SETTINGS = {
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_FOREMAN_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_CANCELLATION_CLEANUP_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_PAUSE_EXPIRATIONS_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_REPOSSESSOR_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_LATE_RUNS_LOOP_SECONDS": "15",
    "PREFECT_SERVER_SERVICES_CLEANUP_RECONCILER_LOOP_SECONDS": "60",
}


class ServerUnavailable(Exception):
    """The configured Prefect API does not answer and is not ours to start."""


@dataclass
class PrefectServer:
    api_url: str
    process: subprocess.Popen | None = None  # set when we started it
    log_path: Path | None = None

    @property
    def ui_url(self) -> str:
        return self.api_url.removesuffix("/api")

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=5)


def api_healthy(api_url: str, timeout: float = 2.0) -> bool:
    """A Prefect API answers there (alerting/prefect_api.py: not just any HTTP server)."""
    from alerting.prefect_api import healthy

    return healthy(api_url, timeout)


def die_with_parent() -> None:
    """In the child: receive SIGTERM when the process that started us dies, however it dies."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def start_local_server(host: str, port: int, log_dir: Path, ready_timeout: float = 90.0) -> PrefectServer:
    """``prefect server start`` in a child process; returns once its API answers."""
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / "prefect-server.log"
    env = {**SERVER_SETTINGS, **{k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}}
    api_url = f"http://{host}:{port}/api"
    with open(log_path, "ab") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=env,
            start_new_session=True,  # Ctrl-C reaches us; we stop the server in order
            preexec_fn=die_with_parent if sys.platform.startswith("linux") else None,
        )
    server = PrefectServer(api_url=api_url, process=process, log_path=log_path)
    deadline = time.monotonic() + ready_timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise ServerUnavailable(
                f"the local Prefect server exited with status {process.returncode}; see {log_path}"
            )
        if api_healthy(api_url, timeout=1.0):
            return server
        time.sleep(0.3)
    server.stop()
    raise ServerUnavailable(f"the local Prefect server did not answer within {ready_timeout:.0f}s; see {log_path}")


def ensure_server(host: str, port: int, log_dir: Path) -> PrefectServer:
    """Use the configured API when it answers; otherwise the local server at host:port, started
    when nothing answers there. The local one is recorded for the other commands
    (alerting/prefect_api.py has the rule)."""
    from alerting import prefect_api

    configured = prefect_api.configured_url()
    if configured:
        kind = prefect_api.probe(configured)
        if kind == "prefect":
            return PrefectServer(api_url=configured)
        parts = urlsplit(configured)
        if kind == "other":
            raise ServerUnavailable(f"{configured} (PREFECT_API_URL) answers, but it is not a Prefect API")
        if parts.hostname not in LOCAL_HOSTS:
            raise ServerUnavailable(f"the Prefect API at {configured} does not answer (PREFECT_API_URL)")
        host, port = parts.hostname, parts.port or port
    else:
        kind = prefect_api.probe(f"http://{host}:{port}/api")
        if kind == "prefect":
            prefect_api.record_local_server(f"http://{host}:{port}/api")
            return PrefectServer(api_url=f"http://{host}:{port}/api")
        if kind == "other":
            raise ServerUnavailable(
                f"port {port} on {host} is taken by something that is not a Prefect server; "
                "choose another --port (or stop that program)"
            )
    server = start_local_server(host, port, log_dir)
    if not configured:
        prefect_api.record_local_server(server.api_url)
    return server


def _first_run_now(deployment_name: str, api_url: str, wait: float = 60.0) -> None:
    """Check once right away instead of waiting for the scheduler's first slot."""
    from prefect.client.orchestration import get_client
    from prefect.settings import PREFECT_API_URL, temporary_settings

    deadline = time.monotonic() + wait
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url}), get_client(sync_client=True) as client:
            while time.monotonic() < deadline:
                try:
                    deployment = client.read_deployment_by_name(deployment_name)
                except Exception:  # noqa: BLE001 - not registered yet
                    time.sleep(0.5)
                    continue
                client.create_flow_run_from_deployment(deployment.id, tags=["first-run"])
                return
    except Exception as exc:  # noqa: BLE001 - the schedule's next slot checks instead
        logging.getLogger("alerting.serve").warning("Could not start the first run at once (%s)", type(exc).__name__)


def _deployment_url(deployment_id) -> str | None:
    from prefect.settings import PREFECT_UI_URL
    from prefect.utilities.urls import url_for

    try:
        return url_for("deployment", obj_id=str(deployment_id), default_base_url=PREFECT_UI_URL.value())
    except Exception:  # noqa: BLE001 - alerts go out without the link
        return None


def _start_monitor(live, deployment_id, watched: str) -> None:
    """Start checking once the deployment exists: alerts link its page, and leave the channels that
    applied automations alert for its runs to the server from the first check on."""
    from flows.service_monitor import server_alerted_channels

    try:
        live.use_config(live.config, skip_channels=server_alerted_channels(live.config, watched))
    except Exception as exc:  # noqa: BLE001 - the first run sets them
        logging.getLogger("alerting.serve").warning("Could not read the automations (%s)", type(exc).__name__)
    live.link(_deployment_url(deployment_id)).start()


def serve_monitor(
    config_path: Path, interval: float, name: str, server: PrefectServer, shard: str | None = None,
    runner: str = "continuous",
) -> None:
    """Blocks, serving the ``service-monitor`` flow every ``interval`` seconds, until Ctrl-C.

    ``continuous`` (the default): this process checks every monitor on its own interval
    (alerting/continuous.py) and runs the deployment's flow runs itself (flows/inprocess.py); each
    run reports on the checks since the previous one. ``prefect``: Prefect's runner starts a process
    per flow run, and each run checks the monitors that are due.

    Raises ``AlreadyServed`` (before serving anything) when another live process serves ``name``."""
    os.environ["PREFECT_API_URL"] = server.api_url
    os.environ.setdefault("PREFECT_UI_URL", server.ui_url)
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    from flows.quiet_logs import quiet_child_processes, quiet_prefect_service_loops, quiet_prefect_tracebacks
    from flows.serving import ServeGuard

    with temporary_settings(updates={PREFECT_API_URL: server.api_url, PREFECT_UI_URL: server.ui_url}):
        from flows.service_monitor import FLOW_NAME, service_monitor

        quiet_child_processes()
        quiet_prefect_service_loops()
        quiet_prefect_tracebacks()  # again each guard tick: Prefect's runner sets up its own handlers
        guard = ServeGuard(config_path.resolve(), interval, f"{FLOW_NAME}/{name}", server.api_url, shard)
        guard.claim()
        live = None
        if runner == "continuous":
            from alerting.continuous import ContinuousMonitor
            from flows.dispatch import pool_for

            live = guard.monitor = ContinuousMonitor(config_path, interval, shard, pool_factory=pool_for)
        guard.start()
        try:
            threading.Thread(
                target=_first_run_now, args=(f"{FLOW_NAME}/{name}", server.api_url), daemon=True
            ).start()
            parameters = {"config_path": str(config_path.resolve()), "cycle_seconds": interval, "shard": shard}
            description = f"Checks the monitors in {config_path.resolve()} every {interval:g}s"
            if live is not None:
                import asyncio

                from flows.inprocess import serve_in_process

                asyncio.run(serve_in_process(
                    service_monitor, name=name, interval=interval, parameters=parameters,
                    description=description, tags=["outage-alerting"], on_registered=lambda dep: _start_monitor(live, dep, f"{FLOW_NAME}/{name}"),
                ))
                return
            service_monitor.serve(
                name=name,
                interval=interval,
                parameters=parameters,
                description=description,
                tags=["outage-alerting"],
                print_starting_message=True,
            )
        finally:
            guard.stop()
            if live is not None:
                live.stop()
            guard.release()
            guard.close()
