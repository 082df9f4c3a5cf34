import pytest

from alerting.channels import channel_for
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
    assert channel_for(cfg.channels["ops"]).kind == "apprise"
    team = channel_for(cfg.channels["team"])
    assert team.kind == "block" and team.block_ref == ("slack-webhook", "team")
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


# --- bad input: the cases below are cheap in-process companions of tests/bad_configs/ ---------

API = "monitors:\n  - name: api\n    url: http://127.0.0.1:9/health\n"


def _all_problems(text: str, environ: dict | None = None) -> list[str]:
    """Every problem, fatal (ConfigError) or per entry, as the CLI prints them."""
    try:
        return [str(p) for p in parse_config(text, "m.yaml", environ or {}).problems]
    except ConfigError as exc:
        return [str(p) for p in exc.problems]


@pytest.mark.parametrize(
    "text, expected",
    [
        (API + "    timeout: 10m\n", "monitor 'api': field 'timeout': must be from 100ms to 5m, got '10m'"),
        (API + "    timeout: 0.05\n", "monitor 'api': field 'timeout': must be from 100ms to 5m, got 0.05"),
        (API + "    timeout: 1.0e+400\n", "monitor 'api': field 'timeout': must be from 100ms to 5m, got inf"),
        (API + "    interval: 2d\n", "monitor 'api': field 'interval': must be from 1s to 1d, got '2d'"),
        (API + "    interval: 500ms\n", "monitor 'api': field 'interval': must be from 1s to 1d, got '500ms'"),
        (API + "    interval: -.inf\n", "monitor 'api': field 'interval': must be from 1s to 1d, got -inf"),
        (API + "    retry_backoff: 10m\n", "monitor 'api': field 'retry_backoff': must be from 0s to 5m"),
        (API + "    retry_backoff_max: .inf\n", "monitor 'api': field 'retry_backoff_max': must be from 0s to 10m, got inf"),
        (API + "    renotify_every: sometimes\n", "monitor 'api': field 'renotify_every': expected a duration"),
        (API + "    renotify_every: 10s\n", "monitor 'api': field 'renotify_every': must be from 1m to 30d"),
        (API + "    flap_window: 30d\n", "monitor 'api': field 'flap_window': must be from 1m to 7d"),
        ("history_retention: .nan\n" + API, "field 'history_retention': must be from 1d to 3650d, got nan"),
        ("history_retention: 20y\n" + API, "field 'history_retention': expected a duration"),
        ("maintenance:\n  - {cron: '0 3 * * *', duration: 0}\n" + API, "field 'maintenance[0].duration': must be from 1m to 31d, got 0"),
        (API + '    headers:\n      X-Trace: "abc\\0"\n', "field 'headers': the value of header 'X-Trace' contains a line break"),
        (API + '    headers:\n      X-Trace: "abc\\ndef"\n', "field 'headers': the value of header 'X-Trace' contains a line break"),
        (API + '    headers:\n      "X-Trace:": abc\n', "field 'headers': invalid header name 'X-Trace:'"),
        (API + '    headers:\n      "": abc\n', "field 'headers': invalid header name ''"),
        (API + '    headers:\n      X-Emoji: "\\U0001F389"\n', "field 'headers': the value of header 'X-Emoji' has characters"),
        (API + "    headers: [Authorization, Bearer]\n", "monitor 'api': field 'headers': Input should be a valid dictionary"),
        ("monitors:\n  - {name: api, url: example.com/health}\n", "field 'url': expected an http:// or https:// URL with a host, got 'example.com/health'"),
        ("monitors:\n  - {name: api, url: 'http://[::zz]/'}\n", "monitor 'api': field 'url': not a valid URL"),
        ("monitors:\n  - {name: api, url: 'http://'}\n", "field 'url': expected an http:// or https:// URL with a host"),
        ("monitors:\n  - {name: api, url: 'http://a.example:0/'}\n", "field 'url': invalid port"),
        ("monitors:\n  - {name: api, url: 'http://a.example/x y'}\n", "field 'url': URL contains a space"),
        ("monitors:\n  - {name: api, url: \"http://a.example/\\u0007\"}\n", "field 'url': URL contains a line break, tab or other"),
        ("monitors:\n  - {name: api, url: 'http://-a.example/'}\n", "field 'url': host '-a.example': a label cannot start or end with '-'"),
        ("monitors:\n  - {name: api, url: 'http://a\u3002b.example/'}\n", "field 'url': invalid international domain name"),
        ("state_url: ''\n" + API, "field 'state_url': String should have at least 1 character"),
        ("state_url: 'postgresql+nosuchdriver://u@h/db'\n" + API, "field 'state_url': unknown database type 'postgresql+nosuchdriver'"),
        ("state_url: 'nosuchdb://x'\n" + API, "field 'state_url': unknown database type 'nosuchdb'"),
        ("state_url: 'postgresql://u@h:notaport/db'\n" + API, "field 'state_url': not a database URL"),
        (API + "    attempts: 0\n", "monitor 'api': field 'attempts': Input should be greater than or equal to 1"),
        (API + "    verify_tls: maybe\n", "monitor 'api': field 'verify_tls': Input should be a valid boolean"),
        (API + "    tags: [[a, b]]\n", "monitor 'api': field 'tags[0]': Input should be a valid string"),
        (API + "    expect_status: [999]\n", "monitor 'api': field 'expect_status': HTTP status codes are 100-599"),
        (API + "    expect_status: '200,abc'\n", "field 'expect_status': expected HTTP status codes such as 200 or 200,204, got '200,abc'"),
        ("monitors:\n  - {name: ' api', url: 'http://a.example/'}\n", "field 'name': a name cannot start or end with a space"),
        ("concurrency: 0\n" + API, "field 'concurrency': Input should be greater than or equal to 1"),
        ("storm_threshold: -1\n" + API, "field 'storm_threshold': Input should be greater than or equal to 0"),
        (API + "    failure_threshold: 0\n", "monitor 'api': field 'failure_threshold': Input should be greater than or equal to 1"),
        ("defaults:\n  colour: red\n" + API, "field 'defaults.colour': unknown field"),
        ("defaults: [timeout, 5s]\n" + API, "field 'defaults': Input should be a valid dictionary"),
        ("channels: [ops]\n" + API, "field 'channels': Input should be a valid dictionary"),
        ("maintenance:\n  - {start: '2026-01-10T02:00:00Z', end: '2026-01-10T04:00:00Z', cron: '0 3 * * *', duration: 1h}\n" + API,
         "field 'maintenance[0]': a window is either start/end or cron/duration"),
        ("maintenance:\n  - {start: next tuesday, end: '2026-01-10T04:00:00Z'}\n" + API, "field 'maintenance[0].start': Input should be a valid datetime"),
        ("just some text\n", "expected a mapping with defaults, channels, monitors"),
        ("monitors:\n\t- name: api\n", "invalid YAML at line 2"),
        ("a: &x 1\nb: *x\n", "invalid YAML: the value at line 1 is reused through an alias"),
        ("monitors:\n  - {name: api, url: 'http://a.example/', timeout: 2026-13-01}\n", "invalid YAML at line 2, column 52: cannot read the value '2026-13-01'"),
        ("monitors:\n  - {name: api, url: 'http://a.example/', tags: {[a]: b}}\n", "invalid YAML at line 2, column 50: a mapping key must be a plain value"),
    ],
)
def test_bad_values_are_named_with_their_bound_or_reason(text, expected):
    problems = _all_problems(text)
    assert any(p.startswith("m.yaml: ") and expected in p for p in problems), problems
    assert all("\n" not in p for p in problems)


def test_values_at_the_bounds_are_accepted():
    cfg = parse_config(
        "history_retention: 3650d\nmaintenance:\n  - {cron: '0 3 * * *', duration: 31d}\nmonitors:\n"
        "  - {name: low, url: 'http://a.example/', timeout: 100ms, interval: 1s, retry_backoff: 0, "
        "retry_backoff_max: 0, renotify_every: 1m, flap_window: 1m}\n"
        "  - {name: high, url: 'https://b.example/', timeout: 5m, interval: 1d, retry_backoff: 5m, "
        "retry_backoff_max: 10m, renotify_every: 30d, flap_window: 7d}\n"
        "  - {name: never, url: 'http://c.example/', renotify_every: 0}\n"
        "  - {name: never2, url: 'http://d.example/', renotify_every: 0s}\n",
        "m.yaml", {},
    )
    assert cfg.problems == []
    low, high, never, never2 = cfg.monitors
    assert (low.timeout, low.interval, low.renotify_every, low.flap_window) == (0.1, 1, 60, 60)
    assert (high.timeout, high.interval, high.retry_backoff_max, high.flap_window) == (300, 86400, 600, 7 * 86400)
    assert never.renotify_every is None and never2.renotify_every is None  # 0: no reminders, as documented


def test_durations_refuse_nan_infinity_and_absurd_values():
    for bad in (float("nan"), float("inf"), 10**400, "99999999999999999999h", 3651 * 86400, -1):
        with pytest.raises(ValueError):
            parse_duration(bad)
    assert parse_duration("3650d") == 3650 * 86400


def test_good_headers_pass():
    cfg = parse_config(
        API + '    headers:\n      Authorization: "Bearer abc.def"\n      X-Tab: "a\\tb"\n      X-Latin: "café"\n',
        "m.yaml", {},
    )
    assert cfg.problems == [] and set(cfg.monitors[0].headers) == {"Authorization", "X-Tab", "X-Latin"}


def test_the_url_rules_refuse_what_requests_refuses():
    """The check sends URLs as requests did (urllib3's parser, alerting/http_client.py): a URL that
    validates must be one both can send, so a typo is a config error (exit 2) and never a permanent
    false DOWN ("request failed (InvalidURL)")."""
    import requests
    from urllib3.util import parse_url

    from alerting.models import MonitorSpec

    hosts = [
        "exa mple.com", "exa\tmple.com", "a..b.example", ".a.example", "*.a.example", "xn--ü.example",
        "a\u200db.example", "\u2603.example", "a\u0300.example", "a\u3002b.example", "\uff41\uff42.example",
        "[::zz]", "a.example:99999", "exa%mple.com",
        # and these are fine for both
        "a.example", "ex\u00e4mple.example", "a_b.example", "[::1]", "127.0.0.1:8080", "user:pw@a.example",
    ]
    accepted = []
    for host in hosts:
        url = f"http://{host}/health"
        try:
            MonitorSpec(name="x", url=url)
        except ValueError:
            continue
        accepted.append(host)
        requests.PreparedRequest().prepare_url(url, None)  # raises if we let through what it refuses
        assert parse_url(url).host  # urllib3, which sends it, raises the same way
    assert accepted == ["a.example", "ex\u00e4mple.example", "a_b.example", "[::1]", "127.0.0.1:8080", "user:pw@a.example"]


def test_a_duplicate_key_in_one_monitor_drops_that_monitor_only():
    cfg = parse_config(
        "monitors:\n  - name: api\n    url: http://a.example/\n    timeout: 5s\n    timeout: 50s\n"
        "  - name: web\n    url: http://b.example/\n",
        "m.yaml", {},
    )
    assert [m.name for m in cfg.monitors] == ["web"]
    assert [str(p) for p in cfg.problems] == [
        "m.yaml: monitor 'api': field 'timeout': duplicate key 'timeout' at line 5 (first at line 4); write each key once"
    ]


def test_a_second_monitors_key_is_refused_not_silently_kept():
    with pytest.raises(ConfigError) as info:
        parse_config("monitors:\n  - {name: api, url: 'http://a.example/'}\nmonitors: []\n", "m.yaml", {})
    assert [str(p) for p in info.value.problems] == [
        "m.yaml: field 'monitors': duplicate key 'monitors' at line 3 (first at line 1); write each key once"
    ]


def test_an_alias_bomb_is_refused_before_it_expands():
    levels = ['&a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    levels += [f"&{c} [" + ", ".join([f"*{p}"] * 9) + "]" for p, c in zip("abcdefgh", "bcdefghi", strict=False)]
    with pytest.raises(ConfigError, match="reused through an alias"):
        parse_config(API + f"    tags: [{', '.join(levels)}]\n", "m.yaml", {})


def test_the_pure_python_loader_has_the_same_rules(monkeypatch):
    """Without libyaml the same checks apply (PyYAML falls back to its Python parser)."""
    import yaml

    from alerting import config as config_module

    monkeypatch.setattr(config_module, "_StrictLoader", config_module._make_loader(yaml.SafeLoader))
    assert "line 3 (first at line 1)" in _all_problems("monitors:\n  - {name: a, url: 'http://a.example/'}\nmonitors: []\n")[0]
    assert "reused through an alias" in _all_problems("a: &x [1]\nb: *x\n")[0]
    assert "nested more than 32 levels" in _all_problems("monitors: " + "[" * 40 + "]" * 40 + "\n")[0]


def test_file_size_is_capped(tmp_path):
    from alerting.config import MAX_CONFIG_BYTES

    path = tmp_path / "m.yaml"
    path.write_text(API + "#" * MAX_CONFIG_BYTES + "\n")
    with pytest.raises(ConfigError, match=r"a config may be at most 1,024 KB \(1 MB\)"):
        load_config(path)


def test_no_monitors_warns_and_monitors_empty_list_means_blocks_only(tmp_path):
    for text in ("", "# nothing yet\n", "monitors:\n", "channels: {ops: 'json://127.0.0.1:9/x'}\n"):
        cfg = parse_config(text, "m.yaml", {})
        assert cfg.problems == [] and not cfg.block_monitors_only
        assert "no monitors defined" in cfg.empty_warning()
        assert str(cfg.nothing_to_check()).startswith("m.yaml: field 'monitors': no monitors: nothing to check")
    blocks = parse_config("monitors: []\n", "m.yaml", {})
    assert blocks.block_monitors_only and blocks.nothing_to_check() is None
    assert "only Service Monitor blocks" in blocks.empty_warning()
    broken = parse_config("monitors:\n  - {name: a, url: 'ftp://x'}\n", "m.yaml", {})
    assert "no valid monitor" in str(broken.nothing_to_check())
    good = parse_config(API, "m.yaml", {})
    assert good.nothing_to_check() is None and good.empty_warning() is None


def test_a_state_url_sqlalchemy_can_use_passes_without_connecting(tmp_path):
    cfg = parse_config(f"state_url: 'sqlite:///{tmp_path}/nowhere/state.db'\n" + API, "m.yaml", {})
    assert cfg.problems == []
    assert not (tmp_path / "nowhere").exists()  # validated, not opened


def test_problems_are_always_one_line():
    problems = _all_problems("monitors:\n  - {name: \"a\\nb\", url: 'http://a.example/', colour: red}\n")
    assert problems and all("\n" not in p for p in problems), problems


def test_load_config_parses_again_only_when_the_bytes_or_the_environment_change(tmp_path, monkeypatch):
    import os

    path = tmp_path / "m.yaml"
    path.write_text("monitors:\n  - {name: api, url: '${API_URL}'}\n")
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9/a")
    first = load_config(path)
    first.monitors.append(first.monitors[0])  # a caller's change stays in its own copy
    second = load_config(path)
    assert [m.url for m in second.monitors] == ["http://127.0.0.1:9/a"]
    assert second.monitors[0] is first.monitors[0]  # parsed once: the (immutable) specs are shared
    stat = path.stat()
    path.write_text("monitors:\n  - {name: apx, url: '${API_URL}'}\n")  # same size, same mtime
    os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert [m.name for m in load_config(path).monitors] == ["apx"]
    monkeypatch.setenv("API_URL", "http://127.0.0.1:9/b")
    assert [m.url for m in load_config(path).monitors] == ["http://127.0.0.1:9/b"]
