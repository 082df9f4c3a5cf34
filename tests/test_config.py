import pytest

from alerting.config import ConfigError, load_config, parse_config
from alerting.durations import format_duration, parse_duration

GOOD = """
defaults:
  interval: 1m
  timeout: 5s
  attempts: 2
  channels: [ops]
channels:
  ops: "${OPS_URL}"
  team: "block:slack-webhook/team"
monitors:
  - name: api
    url: https://api.example.com/health?token=${API_TOKEN}
    expect_status: "200,204"
    contains: ok
  - name: web
    url: http://web.example.com
    channels: [ops, team]
    timeout: 2
"""


def test_good_config_merges_defaults_and_expands_env():
    cfg = parse_config(GOOD, "m.yaml", {"OPS_URL": "json://127.0.0.1:9/x", "API_TOKEN": "s3cret"})
    assert cfg.problems == []
    api, web = cfg.monitors
    assert api.interval == 60 and api.timeout == 5 and api.attempts == 2
    assert api.expect_status == [200, 204] and api.contains == "ok"
    assert api.channels == ["ops"] and web.channels == ["ops", "team"]
    assert web.timeout == 2
    assert api.url.endswith("token=s3cret")
    assert cfg.channels["ops"].kind == "apprise"
    assert cfg.channels["team"].block_ref == ("slack-webhook", "team")
    assert "json://" not in repr(cfg.channels["ops"])  # SecretStr


def test_env_default_syntax():
    cfg = parse_config(GOOD, "m.yaml", {"OPS_URL": "json://127.0.0.1:9/x", "API_TOKEN": "t"})
    assert not cfg.problems
    cfg = parse_config(
        "channels: {ops: '${NOPE:-json://127.0.0.1:9/y}'}\nmonitors: []", "m.yaml", {}
    )
    assert cfg.channels["ops"].target.get_secret_value() == "json://127.0.0.1:9/y"


@pytest.mark.parametrize(
    "text, expected",
    [
        ("monitors:\n  - name: a\n    url: http://a\n    colour: red\n", "monitor 'a': field 'colour': unknown field"),
        ("monitors:\n  - {name: a, url: http://a}\n  - {name: a, url: http://b}\n", "monitor 'a': field 'name': duplicate"),
        ("monitors:\n  - {name: a, url: http://a, channels: [nope]}\n", "monitor 'a': field 'channels': undefined channel 'nope'"),
        ("monitors:\n  - {name: a, url: 'ftp://a'}\n", "monitor 'a': field 'url': expected an http:// or https:// URL"),
        ("monitors:\n  - {name: a, url: 'not a url'}\n", "monitor 'a': field 'url'"),
        ("monitors:\n  - {name: a, url: http://a, timeout: soon}\n", "monitor 'a': field 'timeout': expected a duration"),
        ("monitors:\n  - {name: a, url: http://a, attempts: 0}\n", "monitor 'a': field 'attempts'"),
        ("monitors:\n  - {name: a, url: http://a, expect_status: [999]}\n", "monitor 'a': field 'expect_status'"),
        ("monitors:\n  - {url: http://a}\n", "monitor '#1': field 'name': required field is missing"),
        ("monitors:\n  - {name: a, url: 'http://a/${MISSING}'}\n", "monitor 'a': field 'url': environment variable MISSING is not set"),
        ("channels: {ops: 'nosuchscheme://x'}\nmonitors: []\n", "channel 'ops': not a valid Apprise URL"),
        ("channels: {ops: 'block:Bad Slug'}\nmonitors: []\n", "channel 'ops': expected block:"),
        ("channels: {ops: '${UNSET_VAR}'}\nmonitors: []\n", "channel 'ops': environment variable UNSET_VAR is not set"),
    ],
)
def test_each_bad_monitor_or_channel_is_named_and_others_survive(text, expected):
    cfg = parse_config(text, "m.yaml", {})
    messages = [str(p) for p in cfg.problems]
    assert any(m.startswith("m.yaml: ") and expected in m for m in messages), messages


def test_one_bad_monitor_does_not_drop_the_others():
    cfg = parse_config(
        "monitors:\n  - {name: bad, url: http://a, timeout: x}\n  - {name: good, url: http://b}\n", "f.yaml", {}
    )
    assert [m.name for m in cfg.monitors] == ["good"]
    assert len(cfg.problems) == 1


@pytest.mark.parametrize(
    "text, expected",
    [
        ("monitors: [\n", "invalid YAML at line"),
        ("- just\n- a list\n", "expected a mapping"),
        ("monitor: []\n", "field 'monitor': unknown field"),
        ("defaults: {timeout: forever}\nmonitors: []\n", "field 'defaults.timeout': expected a duration"),
        ("defaults: {url: http://x}\n", "field 'defaults.url': cannot be a default"),
        ("defaults: {colour: red}\n", "field 'defaults.colour': unknown field"),
    ],
)
def test_structural_problems_are_fatal_and_named(text, expected):
    with pytest.raises(ConfigError) as info:
        parse_config(text, "f.yaml", {})
    assert any(expected in str(p) for p in info.value.problems), info.value.problems
    assert all(str(p).startswith("f.yaml: ") for p in info.value.problems)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "absent.yaml")


def test_empty_file_is_an_empty_config(tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("")
    cfg = load_config(path)
    assert cfg.monitors == [] and cfg.problems == []


def test_durations():
    assert parse_duration("30s") == 30
    assert parse_duration("5m") == 300
    assert parse_duration("1h30m") == 5400
    assert parse_duration(45) == 45
    assert parse_duration("250ms") == 0.25
    for bad in ("abc", "5x", "", "-3", True):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert format_duration(3725) == "1h 2m 5s"
    assert format_duration(0) == "0s"


def test_a_bad_channel_url_is_never_logged(caplog):
    import logging

    from alerting.redact import redact_channel_url

    caplog.set_level(logging.DEBUG)
    for url in ("slack://CANARY-SECRET-1", "nosuch://CANARY-SECRET-2/x"):
        cfg = parse_config(f"channels: {{ops: '{url}'}}\nmonitors: []\n", "m.yaml", {})
        assert "ops" not in cfg.channels
        assert "CANARY" not in redact_channel_url(url)
    assert "CANARY" not in caplog.text
