"""The quorum rule (alerting/quorum.py) with plain values, and the config's locations/quorum checks."""

from datetime import datetime, timedelta, timezone

import pytest

from alerting.config import ConfigError, parse_config
from alerting.models import CheckResult, ErrorKind, MonitorSpec, MonitorState, Status
from alerting.policy import step
from alerting.quorum import combine, quorum_of
from alerting.status_view import shown_status

T0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
KNOWN = ["eu-west", "us-east", "ap-south"]


def up(ms: float = 120.0, at: datetime = T0) -> CheckResult:
    return CheckResult(monitor="api", url="http://api/", ok=True, status_code=200, latency_ms=ms, checked_at=at)


def timeout(at: datetime = T0) -> CheckResult:
    return CheckResult(monitor="api", url="http://api/", ok=False, error=ErrorKind.TIMEOUT, attempts=3,
                       message="", checked_at=at)


def http503(at: datetime = T0) -> CheckResult:
    return CheckResult(monitor="api", url="http://api/", ok=False, error=ErrorKind.UNEXPECTED_STATUS,
                       status_code=503, checked_at=at)


def spec(**kw) -> MonitorSpec:
    return MonitorSpec(name="api", url="http://api/", **kw)


def test_default_quorum_is_a_majority_of_the_monitors_locations():
    assert quorum_of(spec(), ["eu-west"]) == 1
    assert quorum_of(spec(), ["eu-west", "us-east"]) == 2
    assert quorum_of(spec(), KNOWN) == 2
    assert quorum_of(spec(locations=["eu-west"]), KNOWN) == 1
    assert quorum_of(spec(quorum=1), KNOWN) == 1


def test_down_needs_the_quorum_and_lists_every_location():
    s = spec(quorum=2)
    down = combine(s, KNOWN, {"eu-west": timeout(), "us-east": http503(), "ap-south": up()})
    assert down is not None and not down.ok
    assert down.message == "eu-west: timeout after 3 attempts; us-east: HTTP 503; ap-south: up, 120 ms"
    partial = combine(s, KNOWN, {"eu-west": timeout(), "us-east": up(80), "ap-south": up()})
    assert partial is not None and partial.ok and partial.warning is ErrorKind.PARTIAL
    assert partial.latency_ms == 80
    assert "failing from 1 of 3 locations (quorum 2): eu-west: timeout after 3 attempts" in partial.warning_message
    every = combine(s, KNOWN, {"eu-west": up(), "us-east": up(), "ap-south": up()})
    assert every is not None and every.ok and every.warning is None


def test_a_location_without_an_answer_counts_as_neither_up_nor_down():
    s = spec(quorum=2)
    assert combine(s, KNOWN, {}) is None  # nothing checked: the policy sees no cycle
    one_fails = combine(s, KNOWN, {"eu-west": timeout(), "us-east": None})
    assert one_fails is not None and one_fails.warning is ErrorKind.PARTIAL  # 1 failure < quorum 2
    assert "us-east: no live worker" in one_fails.warning_message
    assert "ap-south: no live worker" in one_fails.warning_message
    quiet = combine(s, KNOWN, {"eu-west": up()})
    assert quiet is not None and quiet.ok and quiet.warning is None
    assert "us-east: no live worker" in quiet.message
    newest = combine(s, KNOWN, {"eu-west": up(at=T0), "us-east": up(at=T0 + timedelta(seconds=2))})
    assert newest is not None and newest.checked_at == T0 + timedelta(seconds=2)


def test_partial_is_shown_beside_up_and_alerts_only_when_asked():
    s = spec(quorum=2)
    partial = combine(s, KNOWN, {"eu-west": timeout(), "us-east": up(), "ap-south": up()})
    assert partial is not None
    state, events = step(MonitorState("api", status=Status.UP), partial, s, T0)
    assert state.status is Status.UP and shown_status(state) == "PARTIAL" and events == []
    loud = spec(quorum=2, partial_alert=True)
    state, events = step(MonitorState("api", status=Status.UP), partial, loud, T0)
    assert [e.kind.value for e in events] == ["PARTIAL"] and events[0].level == "warning"
    back, events = step(state, up(), loud, T0 + timedelta(seconds=30))
    assert shown_status(back) == "UP" and [(e.kind.value, e.level) for e in events] == [("RESOLVED", "warning")]


@pytest.mark.parametrize(("monitor", "field", "message"), [
    ("locations: [eu-west, mars]", "locations", "unknown location 'mars' (defined: eu-west, us-east)"),
    ("quorum: 3", "quorum", "quorum 3 is more than its 2 location(s)"),
    ("locations: [eu-west], quorum: 2", "quorum", "quorum 2 is more than its 1 location(s)"),
    ("quorum: 0", "quorum", "greater than or equal to 1"),
    ("locations: []", "locations", "list at least one location"),
])
def test_bad_locations_or_quorum_name_the_file_monitor_and_field(monitor, field, message):
    config = parse_config(
        "locations: [eu-west, us-east]\nmonitors:\n"
        f"  - {{name: api, url: 'http://api.example/', {monitor}}}\n"
        "  - {name: web, url: 'http://web.example/'}\n", "m.yaml")
    assert [m.name for m in config.monitors] == ["web"]  # one bad monitor never stops the others
    [problem] = config.problems
    assert str(problem).startswith(f"m.yaml: monitor 'api': field '{field}': ")
    assert message in str(problem)


def test_locations_need_the_top_level_list_and_valid_names():
    config = parse_config("monitors:\n  - {name: api, url: 'http://api.example/', quorum: 1}\n", "m.yaml")
    assert "needs the top-level 'locations:' list" in str(config.problems[0])
    with pytest.raises(ConfigError, match="field 'locations'"):
        parse_config("locations: ['eu west']\nmonitors: []\n", "m.yaml")


def test_bad_location_input_exits_2_naming_file_monitor_and_field(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    alerting = str(Path(sys.executable).parent / "alerting")
    config = tmp_path / "m.yaml"
    config.write_text("locations: [eu-west, us-east]\nmonitors:\n"
                      "  - {name: api, url: 'http://api.example/', locations: [eu-west, mars]}\n"
                      "  - {name: web, url: 'http://web.example/'}\n")
    run = subprocess.run([alerting, "validate", "-c", str(config)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert f"{config}: monitor 'api': field 'locations': unknown location 'mars'" in run.stderr
    run = subprocess.run([alerting, "worker", "-c", str(config), "--location", "ap-south"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "Traceback" not in run.stderr
    assert "field 'locations': unknown location 'ap-south' (defined: eu-west, us-east)" in run.stderr
    run = subprocess.run([alerting, "serve", "-c", str(config), "--runner", "prefect"], capture_output=True,
                         text=True, timeout=60)
    assert run.returncode == 2 and "need the default runner" in run.stderr


def test_a_worker_that_cannot_open_the_state_store_exits_2_naming_it_without_the_password(tmp_path, prefect_server):
    """Batches and their results go through the state store: a worker without it can do nothing."""
    import socket
    import subprocess
    import sys
    from pathlib import Path

    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    config = tmp_path / "m.yaml"
    config.write_text(f"state_url: 'postgresql+psycopg://alerting:s3cret-pw@127.0.0.1:{port}/alerting'\n"
                      "locations: [eu-west]\nmonitors:\n  - {name: api, url: 'http://api.example/'}\n")
    run = subprocess.run([str(Path(sys.executable).parent / "alerting"), "worker", "-c", str(config), "--location",
                          "eu-west"], capture_output=True, text=True, timeout=120, env=prefect_server.env)
    assert run.returncode == 2 and "Traceback" not in run.stderr, run.stderr
    assert f"{config}: field 'state_url': cannot open state store" in run.stderr
    assert "s3cret-pw" not in run.stdout + run.stderr and "alerting:***@" in run.stderr
