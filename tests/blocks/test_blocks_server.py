"""Blocks against a real Prefect server: registration, listing, the monitor flow, automations."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import uuid
from pathlib import Path

import responses
from pydantic import SecretStr

from alerting.config import ChannelSpec, parse_config
from alerting.delivery import send
from alerting.render import render_test
from blocks import AppriseChannel, ServiceMonitor
from blocks.loader import load_block_config
from toolkit import free_port, wait_for

VENV_BIN = Path(sys.executable).parent


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _run_flow(config_path, tag):
    from flows import run_reports
    from flows.service_monitor import service_monitor

    with run_reports.collecting() as reports:
        state = asyncio.run(service_monitor(config_path=str(config_path), monitor_block_tag=tag, return_state=True))
    return state, reports[0]


def test_server_imports_our_types_through_the_entry_point(prefect_server):
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        names = {slug: client.read_block_type_by_slug(slug).name for slug in
                 ("apprise-channel", "smtp-email-channel", "service-monitor")}
    assert names == {"apprise-channel": "Apprise Channel", "smtp-email-channel": "SMTP E-mail Channel",
                     "service-monitor": "Service Monitor"}


def test_cli_register_and_list_mask_secrets(prefect_server):
    name = f"cli-{_uid()}"
    AppriseChannel(url="json://127.0.0.1:9/hook?+X-Token=top-secret-token").save(name)
    ServiceMonitor(url="https://user:pw-secret@example.com/?token=tok-secret", channels=[name]).save(name)
    cli = [str(VENV_BIN / "alerting"), "blocks"]
    env = {**prefect_server.env, "COLUMNS": "250"}
    reg = subprocess.run([*cli, "register"], env=env, capture_output=True, text=True, timeout=120)
    assert reg.returncode == 0, reg.stderr
    assert "Apprise Channel" in reg.stdout and "Service Monitor" in reg.stdout
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 0, listed.stderr
    assert f"block:apprise-channel/{name}" in listed.stdout
    for secret in ("top-secret-token", "pw-secret", "tok-secret"):
        assert secret not in listed.stdout + listed.stderr
    down = {**prefect_server.env, "PREFECT_API_URL": f"http://127.0.0.1:{free_port()}/api"}
    unreachable = subprocess.run([*cli, "register"], env=down, capture_output=True, text=True, timeout=120)
    assert unreachable.returncode == 2
    assert "does not answer" in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_monitor_blocks_and_channel_blocks_drive_the_flow(prefect_server, receiver, target_503, tmp_path):
    tag, channel = f"t-{_uid()}", f"team-{_uid()}"
    AppriseChannel(url=receiver.url("json", "/alerts")).save(channel)
    ServiceMonitor(url=target_503.url(), channels=[channel], attempts=1, tags=[tag]).save(f"web-{tag}")
    config = tmp_path / "monitors.yaml"
    config.write_text(
        f"channels:\n  yaml-hook: {receiver.url('json', '/yaml')}\n"
        f"monitors:\n  - name: up-{tag}\n    url: {receiver.url()}\n    channels: [yaml-hook]\n"
    )
    state, outcome = _run_flow(config, tag)
    assert state.is_failed() and f"1 of 2 services down: web-{tag} (HTTP 503" in state.message
    assert [(d.channel, d.ok) for d in outcome.deliveries] == [(channel, True)]
    assert [(r["path"], r["title"]) for r in receiver.received] == [("/alerts", f"DOWN: web-{tag}")]


def test_conflicts_and_bad_blocks_are_reported_for_that_monitor_alone(prefect_server, target_503):
    tag = f"t-{_uid()}"
    ServiceMonitor(url=target_503.url(), service_name="api", tags=[tag]).save(f"dup-{tag}")
    ServiceMonitor(url="ftp://example.com/", tags=[tag]).save(f"broken-{tag}")
    ServiceMonitor(url=target_503.url(), channels=["nowhere", "yaml-ops"], tags=[tag]).save(f"good-{tag}")
    ServiceMonitor(url=target_503.url(), tags=["other"]).save(f"untagged-{tag}")
    config = parse_config(
        "channels:\n  yaml-ops: json://127.0.0.1:9/x\nmonitors:\n  - name: api\n    url: https://example.com/\n",
        "monitors.yaml",
    )
    extra = asyncio.run(load_block_config(config, tag))
    assert [(m.name, m.channels) for m in extra.monitors] == [(f"good-{tag}", ["yaml-ops"])]
    problems = sorted(str(p) for p in extra.problems)
    assert problems == sorted([
        f"Prefect block service-monitor/dup-{tag}: monitor 'api': field 'service_name': block service-monitor/dup-{tag} "
        "and a monitor in monitors.yaml are both named 'api'; rename one (the YAML monitor runs, the block does not)",
        f"Prefect block service-monitor/broken-{tag}: monitor 'broken-{tag}': field 'url': "
        "expected an http:// or https:// URL with a host, got 'ftp://example.com/'",
        f"Prefect block service-monitor/good-{tag}: monitor 'good-{tag}': field 'channels': undefined channel "
        "'nowhere': no channel of that name in monitors.yaml and no notification block named so",
    ])


def test_ambiguous_channel_names_and_explicit_refs(prefect_server):
    from prefect.blocks.notifications import SlackWebhook

    tag, name = f"t-{_uid()}", f"shared-{_uid()}"
    AppriseChannel(url="json://127.0.0.1:9/x").save(name)
    SlackWebhook(url="https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/SomeSecretSomeSecret1234").save(name)
    ServiceMonitor(url="https://example.com/", channels=[name], tags=[tag]).save(f"amb-{tag}")
    ServiceMonitor(url="https://example.com/", channels=[f"block:slack-webhook/{name}", "block:slack-webhook/missing"],
                   tags=[tag]).save(f"ref-{tag}")
    extra = asyncio.run(load_block_config(parse_config("{}", "m.yaml"), tag))
    assert [(m.name, m.channels) for m in extra.monitors] == [
        (f"amb-{tag}", []), (f"ref-{tag}", [f"block:slack-webhook/{name}"])]
    text = "\n".join(str(p) for p in extra.problems)
    assert f"is ambiguous: name one of block:apprise-channel/{name}, block:slack-webhook/{name}" in text
    assert "no notification block 'block:slack-webhook/missing'" in text


@responses.activate
def test_prefect_own_notification_blocks_work_as_channels(prefect_server):
    from prefect.blocks.notifications import SlackWebhook

    good, bad = f"ok-{_uid()}", f"bad-{_uid()}"
    SlackWebhook(url="https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/GoodSecretGoodSecret1234").save(good)
    SlackWebhook(url="https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/BadSecretBadSecret123456").save(bad)
    responses.post("https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/GoodSecretGoodSecret1234", body="ok")
    responses.post("https://hooks.slack.com/services/T01ABCDEF/B01ABCDEF/BadSecretBadSecret123456", status=404, body="no_service")
    message = render_test("DOWN: web", "web is down")
    ok = send(ChannelSpec("team", SecretStr(f"block:slack-webhook/{good}")), [message])[0]
    failed = send(ChannelSpec("gone", SecretStr(f"block:slack-webhook/{bad}")), [message])[0]
    missing = send(ChannelSpec("nope", SecretStr("block:slack-webhook/does-not-exist")), [message])[0]
    assert ok.ok and not failed.ok and not missing.ok
    assert "BadSecretBadSecret123456" not in failed.error and "cannot load Prefect block" in missing.error
    assert len(responses.calls) == 2


def test_channel_block_as_the_notification_block_of_an_automation(prefect_server, receiver):
    """The server loads our type (entry point) and awaits its async notify when a run fails."""
    from prefect import flow
    from prefect.automations import Automation
    from prefect.events.actions import SendNotification
    from prefect.events.schemas.automations import EventTrigger, Posture

    flow_name = f"auto-{_uid()}"
    doc_id = AppriseChannel(url=receiver.url("json", "/auto")).save(f"auto-{_uid()}")
    automation = Automation(
        name=flow_name,
        trigger=EventTrigger(
            expect={"prefect.flow-run.Failed"},
            match_related={"prefect.resource.name": flow_name, "prefect.resource.role": "flow"},
            posture=Posture.Reactive, threshold=1,
        ),
        actions=[SendNotification(block_document_id=doc_id, subject="Run failed", body="{{ flow_run.name }} failed")],
    ).create()
    try:
        @flow(name=flow_name)
        def failing():
            raise RuntimeError("boom")

        failing(return_state=True)
        wait_for(lambda: receiver.received, 60, what="the automation's notification")  # the server acts asynchronously
        assert [r["title"] for r in receiver.received] == ["Run failed"]
    finally:
        automation.delete()


def test_tag_from_the_environment_and_blocks_off(prefect_server, monkeypatch):
    from blocks.loader import with_block_monitors

    tag = f"t-{_uid()}"
    ServiceMonitor(url="https://example.com/", tags=[tag]).save(f"env-{tag}")
    ServiceMonitor(url="https://example.com/", tags=[tag], enabled=False).save(f"paused-{tag}")
    config = parse_config("monitors: []\n", "m.yaml")
    monkeypatch.setenv("ALERTING_MONITOR_TAG", tag)
    merged = asyncio.run(with_block_monitors(config))
    assert [m.name for m in merged.monitors] == [f"env-{tag}"] and merged.problems == []
    assert asyncio.run(with_block_monitors(config, enabled=False)) is config


def test_cli_list_shows_how_block_monitors_resolve(prefect_server, tmp_path):
    tag, channel = f"t-{_uid()}", f"ch-{_uid()}"
    AppriseChannel(url="json://127.0.0.1:9/x").save(channel)
    ServiceMonitor(url="https://example.com/", channels=[channel, "ops"], tags=[tag]).save(f"res-{tag}")
    ServiceMonitor(url="https://example.com/", channels=["nowhere"], tags=[tag]).save(f"bad-{tag}")
    config = tmp_path / "monitors.yaml"
    config.write_text("channels:\n  ops: json://127.0.0.1:9/ops\n")
    env = {**prefect_server.env, "COLUMNS": "250"}
    listed = subprocess.run([str(VENV_BIN / "alerting"), "blocks", "list", "-c", str(config), "--monitor-tag", tag],
                            env=env, capture_output=True, text=True, timeout=120)
    assert listed.returncode == 2
    assert f"res-{tag}: GET https://example.com/ -> {channel}, ops" in listed.stdout
    assert f"monitor 'bad-{tag}': field 'channels': undefined channel 'nowhere'" in listed.stderr


def test_a_name_clash_fails_the_run_but_the_yaml_monitor_still_runs(prefect_server, receiver, target_503, tmp_path):
    tag = f"t-{_uid()}"
    ServiceMonitor(url=target_503.url(), service_name=f"api-{tag}", attempts=1, tags=[tag]).save(f"clash-{tag}")
    config = tmp_path / "monitors.yaml"
    config.write_text(f"monitors:\n  - name: api-{tag}\n    url: {receiver.url()}\n")
    state, outcome = _run_flow(config, tag)
    assert [(r.monitor, r.ok) for r in outcome.cycle.results] == [(f"api-{tag}", True)]
    assert state.is_failed() and f"block service-monitor/clash-{tag} and a monitor in" in state.message
    assert receiver.received == []


def test_reads_every_page_of_block_documents(prefect_server):
    from prefect.client.orchestration import get_client

    from blocks.loader import read_all

    for i in range(3):
        AppriseChannel(url="json://127.0.0.1:9/x").save(f"page-{_uid()}-{i}")

    async def both():
        async with get_client() as client:
            one_call = await client.read_block_documents(include_secrets=False)
            paged = await read_all(client.read_block_documents, page=2, include_secrets=False)
            return one_call, paged

    one_call, paged = asyncio.run(both())
    assert len(one_call) >= 3 and [d.id for d in paged] == [d.id for d in one_call]


def test_may_hold_blocks_says_no_only_when_the_api_lists_none(prefect_server, receiver):
    """The plain-HTTP look that lets status, history and silence skip Prefect's client (and its
    import) when the server holds no Service Monitor block; any doubt means: read them."""
    from alerting import prefect_api

    assert ServiceMonitor.get_block_type_slug() == prefect_api.MONITOR_BLOCK_SLUG
    assert prefect_api.may_hold_blocks(prefect_server.api_url, f"no-such-type-{_uid()}") is False
    ServiceMonitor(url="http://127.0.0.1:9/", service_name=f"held-{_uid()}").save(f"held-{_uid()}")
    assert prefect_api.may_hold_blocks(prefect_server.api_url, prefect_api.MONITOR_BLOCK_SLUG) is True
    slug = prefect_api.MONITOR_BLOCK_SLUG
    assert prefect_api.may_hold_blocks(receiver.url().rstrip("/") + "/api", slug) is True  # not Prefect
    assert prefect_api.may_hold_blocks(f"http://127.0.0.1:{free_port()}/api", slug) is True  # nothing there
