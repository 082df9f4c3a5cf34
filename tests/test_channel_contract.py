"""The Channel contract (alerting/channels/), one set of tests run over every kind of channel, each
against a real local stand-in:

    apprise-json     an Apprise json:// URL        -> a webhook Receiver
    apprise-mailto   an Apprise mailto:// URL      -> an aiosmtpd SMTPServer (plain SMTP on loopback)
    prefect-block    block:apprise-channel/<name>  -> a real Prefect server holding an Apprise Channel
                                                      block whose URL points at a Receiver

The contract: a message arrives with its title, body and severity; a refused send is a result
(ok=False, a reason), never an exception; a canary secret in the channel's URL is never in
``target``, in a result's error or in any log record, and ``secrets()`` covers it; a receiver that
never answers costs one attempt and one timeout.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from email.message import Message

import pytest
from pydantic import SecretStr

from alerting.channels import Channel, channel_for
from alerting.config import ChannelSpec
from alerting.delivery import with_prefect_settings
from alerting.redact import scrub
from alerting.render import AlertMessage
from toolkit import Receiver, SMTPServer, wait_for

CANARY = "canary7Q2xZ9wK4mB8vT"
STAND_IN_LOGGERS = ("mail.log",)
TIMEOUT = 2  # seconds: the channel's socket timeouts (Apprise cto/rto) in every URL below

DOWN = AlertMessage("DOWN", "api", "DOWN: api", "**api** is down: HTTP 503", "api is down: HTTP 503", "failure")
RESOLVED = AlertMessage("RESOLVED", "api", "RESOLVED: api", "**api** is back up", "api is back up", "success")


@dataclass
class Rig:
    """One channel wired to its stand-in, and the stand-in's switches and record."""

    channel: Channel
    delivered: Callable[[], list[tuple[str, str, str | None]]]  # (title, body, severity) as received
    refuse: Callable[[], None]
    hang: Callable[[], None]
    attempts: Callable[[], int]  # messages offered to the stand-in, accepted or not
    url: str  # the secret URL behind the channel, canary and all
    carries_severity: bool = True


def _json_delivered(receiver: Receiver) -> Callable[[], list[tuple[str, str, str | None]]]:
    return lambda: [(m["title"], m["message"], m["type"]) for m in receiver.messages]


def _receiver_hang(receiver: Receiver) -> Callable[[], None]:
    def hang() -> None:
        receiver.hang = True
    return hang


def _mail_text(mail: Message) -> str:
    parts = mail.walk() if mail.is_multipart() else [mail]
    payloads = (p.get_payload(decode=True) for p in parts if not p.is_multipart())
    return "\n".join(p.decode("utf-8", "replace") for p in payloads if isinstance(p, bytes))


def _json_rig(receiver: Receiver) -> Rig:
    url = receiver.apprise_url(f"/hooks/{CANARY}", f"rto={TIMEOUT}&cto={TIMEOUT}")
    return Rig(channel_for(ChannelSpec("hook", SecretStr(url))), _json_delivered(receiver),
               lambda: receiver.refuse(500), _receiver_hang(receiver), lambda: len(receiver.attempts), url)


def _mailto_rig(smtp: SMTPServer) -> Rig:
    url = smtp.apprise_url(to=f"{CANARY}@example.com", sender="alerts@example.com", query=f"cto={TIMEOUT}")

    def delivered() -> list[tuple[str, str, str | None]]:
        return [(m["Subject"], _mail_text(m), None) for m in smtp.messages]

    def hang() -> None:
        smtp.hang = True

    # e-mail has no severity field: Apprise's mailto:// plugin sends the title and body only
    return Rig(channel_for(ChannelSpec("mail", SecretStr(url))), delivered, lambda: smtp.refuse(554), hang,
               lambda: smtp.attempts, url, carries_severity=False)


def _block_rig(receiver: Receiver) -> Rig:
    from blocks.channels import AppriseChannel

    name = f"contract-{uuid.uuid4().hex[:8]}"
    url = receiver.apprise_url(f"/hooks/{CANARY}", f"rto={TIMEOUT}&cto={TIMEOUT}")
    AppriseChannel(url=url).save(name)
    spec = ChannelSpec("team", SecretStr(f"block:apprise-channel/{name}"))
    return Rig(channel_for(spec), _json_delivered(receiver), lambda: receiver.refuse(500),
               _receiver_hang(receiver), lambda: len(receiver.attempts), url)


@pytest.fixture(params=["apprise-json", "apprise-mailto", "prefect-block"])
def rig(request: pytest.FixtureRequest) -> Iterator[Rig]:
    if request.param == "apprise-mailto":
        smtp = SMTPServer()
        try:
            yield _mailto_rig(smtp)
        finally:
            smtp.close()
        return
    receiver = Receiver()
    try:
        if request.param == "prefect-block":
            request.getfixturevalue("prefect_server")  # this process's Prefect settings point at it
            yield _block_rig(receiver)
        else:
            yield _json_rig(receiver)
    finally:
        receiver.close()


class _AllRecords(logging.Handler):
    """Every record of every logger at DEBUG and up, whatever its propagation (Prefect's loggers
    do not propagate to the root)."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.name.startswith(STAND_IN_LOGGERS):
            return  # the receiving server's own log (aiosmtpd): the outside world, not ours
        self.lines.append(f"{record.name} {record.getMessage()} {record.exc_text or ''}")


@pytest.fixture
def every_log_line() -> Iterator[list[str]]:
    handler = _AllRecords()
    loggers = [logging.getLogger(), *(logging.getLogger(n) for n in ("apprise", "prefect", "requests", "urllib3"))]
    saved = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.addHandler(handler)
        lg.setLevel(logging.DEBUG)
    try:
        yield handler.lines
    finally:
        for lg, level in saved:
            lg.removeHandler(handler)
            lg.setLevel(level)


def _send_in_thread(channel: Channel, message: AlertMessage, limit: float = 60,
                    hung: Callable[[], int] | None = None):
    """Send from a worker thread (as the outbox does), so a send that never returns fails the test.

    Returns the result and, when ``hung`` (the stand-in's attempt count) is given, the seconds from
    the moment the stand-in got the message it never answers to the moment the send returned:
    the time the hang cost, without loading a block or starting Apprise (which a busy machine slows).
    """
    results: list = []
    errors: list = []

    def run() -> None:
        try:
            results.append(channel.send(message))
        except BaseException as exc:  # noqa: BLE001 - the contract says it never raises: report it
            errors.append(exc)

    worker = threading.Thread(target=with_prefect_settings(run), daemon=True)
    worker.start()
    waited = None
    if hung is not None:
        wait_for(lambda: hung() >= 1 or not worker.is_alive(), limit, interval=0.01, what="the message at the stand-in")
        since = time.monotonic()
        worker.join(limit)
        waited = time.monotonic() - since
    worker.join(limit)
    assert not worker.is_alive(), f"send did not return within {limit}s"
    assert errors == [], f"send raised {errors!r}"
    return results[0], waited


# --- the contract ---------------------------------------------------------------------------------

def test_a_message_arrives_with_its_title_body_and_severity(rig: Rig):
    first, second = rig.channel.send(DOWN), rig.channel.send(RESOLVED)
    for result, message in ((first, DOWN), (second, RESOLVED)):
        assert result.ok, result.error
        assert result.error is None and result.title == message.title
        assert result.channel == rig.channel.name and result.target == rig.channel.target
    wait_for(lambda: len(rig.delivered()) >= 2, 30, what="two messages at the stand-in")
    (title1, body1, severity1), (title2, body2, severity2) = rig.delivered()
    assert (title1, title2) == ("DOWN: api", "RESOLVED: api")  # in order
    assert "is down: HTTP 503" in body1 and "is back up" in body2
    if rig.carries_severity:
        assert (severity1, severity2) == ("failure", "success")


def test_a_refused_send_is_a_result_with_a_reason_never_an_exception(rig: Rig):
    rig.refuse()
    result, _ = _send_in_thread(rig.channel, DOWN)
    assert not result.ok
    assert result.error and result.error.strip()
    assert result.title == DOWN.title and result.channel == rig.channel.name
    assert rig.attempts() >= 1 and rig.delivered() == []  # it was tried, and refused


def test_a_canary_in_the_target_is_never_shown(rig: Rig, every_log_line: list[str]):
    assert CANARY not in rig.channel.target and CANARY not in repr(rig.channel)
    ok = rig.channel.send(DOWN)
    rig.refuse()
    refused, _ = _send_in_thread(rig.channel, DOWN)
    assert ok.ok and not refused.ok
    for result in (ok, refused):
        assert CANARY not in f"{result.target} {result.error}"
    leaked = [line for line in every_log_line if CANARY in line]
    assert leaked == [], "the canary is in log records:\n" + "\n".join(leaked)
    secrets = rig.channel.secrets()
    assert any(CANARY in s for s in secrets)
    for text in (rig.url, *(s for s in secrets if CANARY in s)):  # wherever the canary is in use
        assert CANARY not in scrub(f"failed: {text}.", secrets)


def test_a_hanging_receiver_costs_one_attempt_and_one_timeout(rig: Rig):
    rig.hang()
    result, waited = _send_in_thread(rig.channel, DOWN, hung=rig.attempts)
    assert not result.ok and result.error
    assert rig.attempts() == 1  # no retry inside the send: the outbox decides when to try again
    # one timeout, not two: a second wait (a retry, a goodbye on the dead connection) would cost
    # another TIMEOUT; measured from the stand-in's side, so loading the block is not counted
    assert waited is not None and waited < 2 * TIMEOUT, f"{waited:.1f}s for one {TIMEOUT}s timeout"
