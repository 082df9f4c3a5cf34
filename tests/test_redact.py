"""Redaction: what a shown URL, header or free text may still contain (issue 10, Secrets)."""

from __future__ import annotations

import pytest

from alerting.config import parse_config
from alerting.redact import (
    MASK,
    forget_secrets,
    is_secret_name,
    looks_random,
    redact_channel_url,
    redact_headers,
    redact_target_url,
    register_secret,
    scrub,
)

CANARY = "Canary7f3a9c2e"


@pytest.fixture(autouse=True)
def _clean_registry():
    forget_secrets()
    yield
    forget_secrets()


@pytest.mark.parametrize(
    "name",
    [
        "token", "key", "secret", "sig", "signature", "password", "pass", "pwd", "auth", "jwt", "session",
        "sid", "code", "apikey", "api_key", "access_token", "TOKEN", "Jwt", "SID", "refresh_token",
        "client_key", "mytoken", "client_secret", "X-Api-Key",
    ],
)
def test_secret_query_names_are_masked(name):
    shown = redact_target_url(f"https://api.example.com/health?{name}={CANARY}&page=2")
    assert CANARY not in shown
    assert shown.endswith(f"={MASK}&page=2")
    assert is_secret_name(name)


@pytest.mark.parametrize("name", ["page", "q", "lang", "format", "region", "limit"])
def test_ordinary_query_values_stay_readable(name):
    assert redact_target_url(f"https://api.example.com/x?{name}=value1") == f"https://api.example.com/x?{name}=value1"


@pytest.mark.parametrize(
    "url, hidden",
    [
        ("https://hc-ping.com/3f2c1a9e-8b7d-4c6e-9f01-23456789abcd", "3f2c1a9e-8b7d-4c6e-9f01-23456789abcd"),
        ("https://hc-ping.com/ping/abc123/backup", "abc123"),
        ("https://example.com/ping/Zk3pQ9rT/start", "Zk3pQ9rT"),
        ("https://example.com/hook/deadbeefcafebabe0123/x", "deadbeefcafebabe0123"),
        ("https://example.com/v1/aB3dE5gH7jK9mN1pQ3sT5vX7/status", "aB3dE5gH7jK9mN1pQ3sT5vX7"),
        ("https://hooks.slack.com/services/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", "Xy12Zq34Wv56Ut78Sr90Po12"),
        ("https://hooks.slack.com/services/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", "T0123ABCD"),
        ("https://discord.com/api/webhooks/123456789012345678/aBc-DeF_123ghiJKL456mnoPQR789", "aBc-DeF_123ghiJKL456mnoPQR789"),
        (f"https://user:{CANARY}@example.com/health", CANARY),
        (f"https://{CANARY}@example.com/health", CANARY),
        (f"https://example.com/health#{CANARY}", CANARY),
        (f"https://example.com/health?state={CANARY}1234567890abc", CANARY),
    ],
)
def test_random_looking_path_segments_userinfo_and_values_are_masked(url, hidden):
    shown = redact_target_url(url)
    assert hidden not in shown, shown
    assert shown.startswith("https://")


@pytest.mark.parametrize(
    "url",
    [
        "https://status.playstation.com/es-mx/",
        "https://example.com/api/v1/health",
        "https://example.com/blog/my-long-article-name-here",
        "https://example.com:8443/hooks/deploy",
    ],
)
def test_ordinary_urls_are_shown_as_they_are(url):
    assert redact_target_url(url) == url


def test_looks_random():
    assert looks_random("3f2c1a9e-8b7d-4c6e-9f01-23456789abcd")
    assert looks_random("0123456789abcdef")
    assert looks_random("aB3dE5gH7jK9mN1pQ3sT")
    assert not looks_random("my-long-article-name-here")
    assert not looks_random("status")


def test_registered_secrets_are_masked_in_urls_and_free_text():
    register_secret(CANARY)
    assert CANARY not in redact_target_url(f"https://{CANARY}.example.com/x/{CANARY}?q={CANARY}")
    assert CANARY not in redact_channel_url(f"json://127.0.0.1:9/{CANARY}")
    assert scrub(f"failed: {CANARY} and {CANARY.lower()}x") == f"failed: {MASK} and {CANARY.lower()}x"
    register_secret("abc")  # too short to mask in free text: ignored, never mangles output
    assert scrub("abcdef") == "abcdef"


def test_env_substituted_parts_of_a_url_are_secret():
    """Any part of a monitor URL, header or channel URL that came from ${VAR} is masked."""
    text = """
channels:
  ops: "json://127.0.0.1:9/${HOOK_PATH}?+X-Sig=${HEADER_SECRET}"
monitors:
  - name: api
    url: "https://${API_HOST}/status/${PLAIN_LOOKING}?page=${PAGE}"
    headers: {X-Env: "${HEADER_SECRET}"}
    channels: [ops]
"""
    env = {"API_HOST": "internal-canary.example.com", "PLAIN_LOOKING": "canarypath", "PAGE": "canarypage",
           "HOOK_PATH": "canaryhook", "HEADER_SECRET": "canaryheader"}
    config = parse_config(text, "m.yaml", env)
    assert not config.problems
    spec = config.monitors[0]
    shown = redact_target_url(spec.url)
    assert "canary" not in shown, shown
    assert shown.startswith("https://")
    assert "canary" not in redact_channel_url(config.channels["ops"].target.get_secret_value())
    assert "canary" not in scrub(f"GET {spec.url} failed; header canaryheader")


def test_defaults_written_in_the_file_are_not_secret():
    config = parse_config(
        "monitors:\n  - name: api\n    url: 'https://${HOST:-status.example.com}/x'\n", "m.yaml", {}
    )
    assert redact_target_url(config.monitors[0].url) == "https://status.example.com/x"


def test_scrub_redacts_urls_in_free_text():
    text = f"GET https://u:{CANARY}@example.com/ping/abc123?jwt={CANARY} failed (timeout)"
    shown = scrub(text)
    assert CANARY not in shown and "abc123" not in shown
    assert shown.endswith(" failed (timeout)")


def test_headers_are_never_shown():
    assert redact_headers({"Authorization": f"Bearer {CANARY}"}) == {"Authorization": MASK}


def test_log_records_and_tracebacks_are_scrubbed():
    import io
    import logging
    import logging.config

    import requests

    from alerting.redact import install_log_redaction

    register_secret(CANARY)
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    logger = logging.getLogger("test_redact.records")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        install_log_redaction()
        install_log_redaction()  # idempotent
        logger.error("GET %s failed", f"https://u:{CANARY}@example.com/ping/abc123?jwt={CANARY}")
        try:
            requests.get(f"http://127.0.0.1:9/ping/abc123?token={CANARY}&sid=s3ss10n", timeout=2)
        except requests.RequestException:
            logger.exception("check crashed")
        logger.warning("env value %s in free text", CANARY)
        logging.config.dictConfig({"version": 1, "incremental": True})  # survives reconfiguration
        logger.warning("after reconfiguration: %s", CANARY)
    finally:
        logger.removeHandler(handler)
    shown = stream.getvalue()
    assert CANARY not in shown and "abc123" not in shown and "s3ss10n" not in shown, shown
    assert "check crashed" in shown and "Traceback" in shown and "/ping/***" in shown
    assert "after reconfiguration: ***" in shown


def test_links_to_the_prefect_ui_stay_readable(monkeypatch):
    monkeypatch.setenv("PREFECT_UI_URL", "http://127.0.0.1:4321")
    run = "http://127.0.0.1:4321/runs/flow-run/3f2c1a9e-8b7d-4c6e-9f01-23456789abcd"
    assert scrub(f"View at {run} (down: https://hc-ping.com/3f2c1a9e-8b7d-4c6e-9f01-23456789abcd)") == (
        f"View at {run} (down: https://hc-ping.com/***)"
    )
