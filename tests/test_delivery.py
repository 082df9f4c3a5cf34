"""Rendering and delivery: Slack and Discord through `responses`, e-mail to a real aiosmtpd server,
json:// to a real local receiver, and a failing channel that does not block the others."""

import json

import responses
from pydantic import SecretStr

from alerting.config import ChannelSpec
from alerting.delivery import send
from alerting.models import CheckResult, ErrorKind, MonitorSpec
from alerting.render import cycle_message, render_down

SLACK = "https://hooks.slack.com/services/T1JJ3T3L2/A1BRTD4JD/TIiajkdnlazkcOXrIdevi7FQ"
DISCORD = "https://discord.com/api/webhooks/123456789/CANARYdiscordTOKEN"


def down_result(**kw):
    base = dict(
        monitor="api", url="https://api.example.com/health?token=***", ok=False, status_code=503,
        latency_ms=12.3, attempts=3, elapsed_ms=2100.0, error=ErrorKind.UNEXPECTED_STATUS,
        message="expected HTTP 2xx, got HTTP 503 Service Unavailable",
    )
    base.update(kw)
    return CheckResult(**base)


SPEC = MonitorSpec(name="api", url="https://admin:hunter22@api.example.com/health?token=CANARY", channels=["c"])


def channel(name, url):
    return ChannelSpec(name, SecretStr(url))


def test_down_message_says_what_failed_attempts_latency_when_and_where():
    m = render_down(down_result(), SPEC, run_url="http://127.0.0.1:4200/runs/flow-run/abc")
    assert m.title == "DOWN: api"
    for text in (m.markdown, m.text):
        assert "expected HTTP 2xx, got HTTP 503 Service Unavailable" in text
        assert "Attempts: 3" in text.replace("**", "")
        assert "12 ms" in text
        assert "UTC" in text
        assert "https://api.example.com/health?token=***" in text
        assert "http://127.0.0.1:4200/runs/flow-run/abc" in text
        assert "hunter22" not in text and "CANARY" not in text


def test_drill_title():
    m = render_down(down_result(), SPEC, drill=True)
    assert m.title == "[DRILL] DOWN: api" and "FIRE DRILL" in m.text


def test_cycle_message_names_the_services_down():
    results = [
        down_result(),
        down_result(monitor="db", status_code=None, error=ErrorKind.TIMEOUT, message="no answer"),
        down_result(monitor="a", ok=True, error=None, status_code=200, attempts=1),
        down_result(monitor="b", ok=True, error=None, status_code=200, attempts=1),
        down_result(monitor="c", ok=True, error=None, status_code=200, attempts=1),
    ]
    ok, message = cycle_message(results)
    assert not ok
    assert message == "2 of 5 services down: api (HTTP 503 after 3 attempts), db (timeout after 3 attempts)"
    assert cycle_message(results[2:]) == (True, "all 3 services up")


def test_slack_payload():
    m = render_down(down_result(), SPEC)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, SLACK, body="ok")
        [r] = send(channel("slack", SLACK), [m])
        payload = json.loads(mock.calls[0].request.body)
    assert r.ok and r.error is None
    attachment = payload["attachments"][0]
    assert attachment["title"] == "DOWN: api"
    assert "HTTP 503" in attachment["text"] and "Attempts: 3" in attachment["text"]
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in r.target


def test_discord_payload():
    m = render_down(down_result(), SPEC)
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, DISCORD, status=204)
        [r] = send(channel("discord", "discord://123456789/CANARYdiscordTOKEN"), [m])
        payload = json.loads(mock.calls[0].request.body)
    assert r.ok
    assert payload["content"].startswith("DOWN: api")
    assert "expected HTTP 2xx, got HTTP 503" in payload["content"]
    assert "CANARY" not in r.target


def test_slack_rejection_is_reported_with_a_redacted_reason():
    with responses.RequestsMock() as mock:
        mock.add(responses.POST, SLACK, status=403, body="invalid_token")
        [r] = send(channel("slack", SLACK), [render_down(down_result(), SPEC)])
    assert not r.ok and r.error
    assert "TIiajkdnlazkcOXrIdevi7FQ" not in r.error + r.target


def test_email_is_delivered_to_a_real_smtp_server(smtp_server):
    url = smtp_server.apprise_url(to="oncall@example.com", sender="alerts@example.com")
    [r] = send(channel("email", url), [render_down(down_result(), SPEC)])
    assert r.ok, r.error
    [mail] = smtp_server.wait_for(1, timeout=30)
    assert mail["Subject"] == "DOWN: api"
    assert "oncall@example.com" in mail["To"]
    text = mail.get_payload(decode=True) if not mail.is_multipart() else mail.get_payload(0).get_payload(decode=True)
    assert b"HTTP 503" in text


def test_json_webhook_to_a_local_receiver(receiver):
    [r] = send(channel("hook", receiver.apprise_url()), [render_down(down_result(), SPEC)])
    assert r.ok
    [msg] = receiver.messages
    assert msg["title"] == "DOWN: api" and "HTTP 503" in msg["message"] and msg["type"] == "failure"


def test_a_failing_channel_does_not_block_the_others(receiver, failing_receiver, smtp_server, tmp_path):
    from alerting.config import Config
    from alerting.outbox import deliver_pending
    from alerting.record import alert_rows as _rows
    from alerting.store import Store

    m = render_down(down_result(), SPEC)
    channels = {
        "dead": channel("dead", "json://127.0.0.1:1/x?+X-Api-Key=CANARY-SECRET"),
        "broken": channel("broken", failing_receiver.apprise_url("/p", "+Authorization=CANARY-AUTH")),
        "ok": channel("ok", receiver.apprise_url()),
        "mail": channel("mail", smtp_server.apprise_url(to="b@example.com", sender="a@example.com")),
    }
    config = Config(path=str(tmp_path / "m.yaml"), channels=channels)
    with Store(config.resolved_state_url()) as store:
        with store.begin() as tx:
            tx.enqueue(_rows(m, list(channels), down_result().checked_at))
        results = {r.channel: r for r in deliver_pending(store, config)}
    assert results["ok"].ok and results["mail"].ok
    assert not results["dead"].ok and not results["broken"].ok
    assert len(receiver.messages) == 1 and len(smtp_server.wait_for(1, timeout=30)) == 1
    assert failing_receiver.refused >= 1 and failing_receiver.messages == []  # it was tried, and refused
    for r in results.values():
        assert "CANARY" not in f"{r.target} {r.error}"


def test_bad_block_reference_reports_failure():
    [r] = send(channel("team", "block:slack-webhook/does-not-exist"), [render_down(down_result(), SPEC)])
    assert not r.ok and "cannot load Prefect block" in r.error


def test_several_messages_to_one_channel_in_order(receiver):
    ms = [render_down(down_result(monitor=n), SPEC.model_copy(update={"name": n})) for n in ("a", "b", "c")]
    results = send(channel("hook", receiver.apprise_url()), ms)
    assert all(r.ok for r in results)
    assert receiver.titles() == ["DOWN: a", "DOWN: b", "DOWN: c"]


def test_closing_the_deliverer_mid_send_still_sends_what_was_queued_meanwhile(tmp_path):
    """A row queued while the deliverer is inside a pass, then close(): one more pass sends it (a DOWN
    decided at the end of a cycle was left in the outbox until the next run)."""
    import threading

    from alerting.config import Config
    from alerting.deliverer import Deliverer
    from alerting.record import alert_rows as _rows
    from alerting.store import Store
    from toolkit import Receiver, wait_for

    hook = Receiver()
    try:
        hook.hang = True  # the first POST is held: the deliverer sits inside its pass
        config = Config(path=str(tmp_path / "m.yaml"), channels={"hook": channel("hook", hook.apprise_url())})
        with Store(config.resolved_state_url()) as store:
            deliverer = Deliverer(store, lambda: config)
            with store.begin() as tx:
                tx.enqueue(_rows(render_down(down_result(monitor="first"), SPEC), ["hook"], down_result().checked_at))
            deliverer.wake()
            wait_for(lambda: hook.hung, 30, what="the first POST, held")
            with store.begin() as tx:
                tx.enqueue(_rows(render_down(down_result(monitor="second"), SPEC), ["hook"], down_result().checked_at))
            deliverer.wake()
            done: list = []
            closing = threading.Thread(target=lambda: done.extend(deliverer.close()))
            closing.start()
            wait_for(lambda: deliverer._stop.is_set(), 30, what="close() called")
            hook.hang = False
            hook.release()
            closing.join(60)
        assert len([d for d in done if d.ok]) == 2, done  # the held one, and the one queued meanwhile
    finally:
        hook.close()
