"""What the default serve mode needs from Prefect, end to end; `make test` runs this file again on the
oldest Prefect that pyproject allows (`make test-prefect-oldest`), since flows/inprocess.py drives
Prefect's flow engine itself (``run_flow_async``, ``propose_state``)."""

import os
import sys
from pathlib import Path

import prefect

from toolkit import interrupt, wait_for

ALERTING = str(Path(sys.executable).parent / "alerting")


def _runs(deployment: str):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterName

    with get_client(sync_client=True) as client:
        return client.read_flow_runs(
            deployment_filter=DeploymentFilter(name=DeploymentFilterName(any_=[deployment])))


def test_default_serve_mode_runs_report_failed_and_alerts_go_out(tmp_path, target, receiver, write_config,
                                                                  start_process):
    target.route("/api", statuses=[503])
    target.route("/web")
    path = write_config(
        f"defaults: {{retry_backoff: 0, attempts: 1, channels: [hook]}}\n"
        f"channels: {{hook: '{receiver.apprise_url()}'}}\n"
        f"monitors:\n  - {{name: api, url: '{target.url('/api')}'}}\n"
        f"  - {{name: web, url: '{target.url('/web')}'}}\n"
    )
    name = f"versions-{prefect.__version__.replace('.', '-')}"
    log = tmp_path / "serve.log"
    proc = start_process([ALERTING, "serve", "-c", str(path), "--interval", "5s", "--name", name],
                         cwd=tmp_path, env=dict(os.environ), log=log)
    receiver.wait_for(1, timeout=120)
    assert receiver.titles() == ["DOWN: api"]

    def failed_run():
        return next((r for r in _runs(name) if r.state and r.state.is_failed()), None)

    run = wait_for(failed_run, 120, what=f"a Failed flow run on Prefect {prefect.__version__}",
                   details=lambda: log.read_text()[-3000:])
    assert "api (HTTP 503" in run.state.message and "1 of 2 services down" in run.state.message
    target.route("/api")
    wait_for(lambda: any(t.startswith("RESOLVED: api") for t in receiver.titles()), 120, what="RESOLVED: api")
    wait_for(lambda: any(r.state and r.state.is_completed() for r in _runs(name)), 120,
             what="a Completed run once every service is up", details=lambda: log.read_text()[-3000:])
    assert interrupt(proc, timeout=60) == 0
    assert "Traceback" not in log.read_text()
