"""The service-monitor flow against the session's real Prefect server."""

from prefect.client.orchestration import get_client

from alerting.config import load_config
from alerting.standalone import run_drill
from flows.service_monitor import run_once


def config_text(target, receiver, extra_monitors=""):
    return f"""
defaults:
  retry_backoff: 0
  retry_backoff_max: 0
  attempts: 2
  channels: [hook]
channels:
  hook: "{receiver.apprise_url()}"
monitors:
  - name: api
    url: {target.url('/api')}
  - name: web
    url: {target.url('/web')}
{extra_monitors}"""


def test_all_up_completes_and_alerts_nobody(target, receiver, write_config):
    target.route("/api")
    target.route("/web")
    state, outcome = run_once(write_config(config_text(target, receiver)))
    assert state.is_completed(), state.message
    assert state.message == "all 2 services up"
    assert receiver.messages == [] and outcome.deliveries == []


def test_down_service_fails_the_flow_and_the_hook_alerts(target, receiver, write_config):
    target.route("/api", statuses=[503])
    target.route("/web")
    state, outcome = run_once(write_config(config_text(target, receiver)))
    assert state.is_failed()
    assert state.message.startswith("1 of 2 services down: api (HTTP 503 after 2 attempts; DOWN since ")
    # the flow delivered the outbox before it returned: exactly one DOWN, for api
    assert receiver.titles() == ["DOWN: api"]
    body = receiver.messages[0]["message"]
    assert "expected HTTP 2xx, got HTTP 503" in body and "Attempts: 2" in body
    assert "Alert ID: " in body
    run_id = str(state.state_details.flow_run_id)
    assert f"/runs/flow-run/{run_id}" in body  # link to the run in the Prefect UI
    assert [d.ok for d in outcome.deliveries] == [True]

    # the check task kept the tutorial's contract: it returned Failed(message=...) naming the service
    with get_client(sync_client=True) as client:
        from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId

        runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[run_id])))
        flow_run = client.read_flow_run(run_id)
    assert flow_run.state.is_failed() and flow_run.state.message == state.message
    [task_run] = runs
    assert task_run.state.is_failed() and "api (HTTP 503" in task_run.state.message


def test_bad_monitor_is_reported_and_the_others_still_run(target, receiver, write_config):
    target.route("/api", statuses=[200])
    target.route("/web", statuses=[500])
    bad = "  - name: broken\n    url: http://127.0.0.1/x\n    timeout: soon\n"
    state, outcome = run_once(write_config(config_text(target, receiver, bad)))
    assert state.is_failed()
    assert "1 of 2 services down: web" in state.message
    assert "monitor 'broken': field 'timeout'" in state.message
    assert receiver.titles() == ["DOWN: web"]
    assert target.hits["/api"] == 1


def test_unusable_config_fails_the_run_with_the_reason(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("monitors: [\n")
    state, _ = run_once(path)
    assert state.is_failed() and "invalid YAML" in state.message


def test_drill_simulates_the_status_and_sends_drill_alerts(target, receiver, write_config):
    target.route("/api")
    target.route("/web")
    config = load_config(write_config(config_text(target, receiver)))
    result, deliveries = run_drill(config, config.monitor("web"), 502)
    assert not result.ok and result.status_code == 502
    assert receiver.titles() == ["[DRILL] DOWN: web"] and [d.ok for d in deliveries] == [True]
    assert "HTTP 502" in receiver.messages[0]["message"]
    assert "web" not in target.hits and "/web" not in target.hits  # the real target was not called
    # through the outbox like any alert, but the monitor's own state is untouched
    from alerting.cycle import open_store

    with open_store(config) as store:
        assert store.states() == {}
        assert [r.kind for r in store.outbox_rows()] == ["DRILL"]
