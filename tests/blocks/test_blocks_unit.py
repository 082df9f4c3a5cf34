"""Block types without a Prefect server: validation, URL building, delivery and failure reporting."""

from __future__ import annotations

import asyncio
import logging

import pytest
from prefect.blocks.abstract import NotificationError
from pydantic import ValidationError

from blocks import BLOCK_TYPES, AppriseChannel, EmailChannel, ServiceMonitor
from toolkit import free_port


def test_every_type_reads_well_in_the_catalogue():
    for block_type in BLOCK_TYPES:
        assert block_type._logo_url and block_type._documentation_url
        assert block_type.get_description()
        schema = block_type.model_json_schema()
        for name, prop in schema["properties"].items():
            assert prop.get("description"), f"{block_type.__name__}.{name} has no description"
    secret_fields = {
        AppriseChannel: {"url"},
        EmailChannel: {"password"},
        ServiceMonitor: {"headers.*"},
    }
    for block_type, fields in secret_fields.items():
        assert fields <= set(block_type.model_json_schema().get("secret_fields", [])), block_type


def test_apprise_channel_rejects_a_bad_url_without_echoing_it(caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(ValidationError) as info:
        AppriseChannel(url="nosuchservice://topsecret-token")
    assert "not a valid Apprise URL" in str(info.value)
    assert "topsecret-token" not in str(info.value) + caplog.text


@pytest.mark.parametrize(
    ("security", "prefix", "mode"),
    [("none", "mailto://", "insecure"), ("starttls", "mailtos://", "starttls"), ("ssl", "mailtos://", "ssl")],
)
def test_email_channel_builds_an_apprise_mailto_url(security, prefix, mode):
    block = EmailChannel(
        host="smtp.example.com", port=2525, security=security, username="bot", password="p@ss word",
        from_address="alerts@example.com", recipients=["a@example.com", " b@example.com "],
    )
    url = block.apprise_url()
    assert url.startswith(f"{prefix}bot:p%40ss%20word@smtp.example.com:2525?")
    assert f"mode={mode}" in url and "to=a%40example.com%2Cb%40example.com" in url
    assert "p@ss word" not in repr(block)


def test_email_channel_needs_real_recipients():
    with pytest.raises(ValidationError, match="not an e-mail address"):
        EmailChannel(host="h", from_address="a@b.c", recipients=["nobody"])


def test_monitor_block_takes_yaml_defaults_and_validates_like_yaml():
    block = ServiceMonitor(url="https://example.com/health", attempts=2, expect_status=[200, 204])
    spec = block.to_spec("web", {"attempts": 5, "channels": ["ops"], "retry_backoff": "3s", "retry_backoff_max": "9s"})
    assert (spec.name, spec.attempts, spec.channels, spec.retry_backoff, spec.expect_status) == (
        "web", 2, ["ops"], 3.0, [200, 204])
    assert ServiceMonitor(url="https://x.example", service_name="api").to_spec("doc").name == "api"
    assert ServiceMonitor(url="https://x.example", channels=["team"]).to_spec("d", {"channels": ["ops"]}).channels == ["team"]
    with pytest.raises(ValidationError, match="http:// or https://"):
        ServiceMonitor(url="ftp://example.com").to_spec("bad")


def test_channel_reports_failure_sync_and_async(caplog):
    port = free_port()  # nothing listens here
    block = AppriseChannel(url=f"json://127.0.0.1:{port}/hook?+X-Token=s3cr3t-value")
    with pytest.raises(NotificationError) as info, block.raise_on_failure():
        block.notify("body", subject="DOWN: web")
    assert "did not deliver" in info.value.log and "s3cr3t-value" not in info.value.log

    async def from_an_automation():
        with block.raise_on_failure():
            await block.notify(subject="DOWN: web", body="body")

    with pytest.raises(NotificationError):
        asyncio.run(from_an_automation())

    with caplog.at_level(logging.ERROR):
        block.notify("body", subject="DOWN: web")  # outside raise_on_failure: logged, not silent
    assert "did not deliver" in caplog.text and "s3cr3t-value" not in caplog.text


def test_channel_delivers_sync_and_async(receiver):
    block = AppriseChannel(url=receiver.url("json", "/hook"))
    with block.raise_on_failure():
        block.notify("sync body", subject="sync")

    async def from_an_automation():
        with block.raise_on_failure():
            await block.notify(subject="async", body="async body")

    asyncio.run(from_an_automation())
    assert [(r["title"], r["message"]) for r in receiver.received] == [("sync", "sync body"), ("async", "async body")]


def test_email_channel_sends_real_mail():
    from aiosmtpd.controller import Controller
    from aiosmtpd.handlers import Message

    got = []

    class Collect(Message):
        def handle_message(self, message):
            got.append(message)

    controller = Controller(Collect(), hostname="127.0.0.1", port=free_port())
    controller.start()
    try:
        block = EmailChannel(
            host="127.0.0.1", port=controller.port, security="none", from_address="alerts@example.com",
            recipients=["oncall@example.com"], subject_prefix="[ops] ",
        )
        with block.raise_on_failure():
            block.notify("web is DOWN", subject="DOWN: web")
    finally:
        controller.stop()
    assert len(got) == 1
    assert got[0]["Subject"] == "[ops] DOWN: web" and "oncall@example.com" in got[0]["To"]


def test_the_served_flow_survives_cloudpickle_by_value():
    """Prefect's runner hands a served flow to each run's process cloudpickled by value: everything
    the flow's module holds must pickle (a ContextVar there broke every served run once)."""
    import cloudpickle

    import flows.service_monitor as module

    cloudpickle.register_pickle_by_value(module)
    try:
        restored = cloudpickle.loads(cloudpickle.dumps(module.service_monitor))
    finally:
        cloudpickle.unregister_pickle_by_value(module)
    assert restored.name == "service-monitor" and len(restored.on_failure_hooks) == 1
