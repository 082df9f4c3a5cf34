"""Keep secrets out of logs, output and alert texts."""

from __future__ import annotations

import re
from typing import Iterable
from urllib.parse import parse_qsl, quote, urlsplit, urlunsplit

MASK = "***"
_SECRET_KEY = re.compile(
    r"(token|key|secret|pass|pwd|auth|sig|signature|credential|session|code|apikey|access|bearer|webhook)",
    re.IGNORECASE,
)


def redact_target_url(url: str) -> str:
    """A monitored URL fit for alerts and logs: no user info, secret-looking query values masked."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        if ":" in host:
            host = f"[{host}]"
        port = parts.port
    except ValueError:
        return MASK
    netloc = host + (f":{port}" if port else "")
    query = "&".join(
        f"{quote(k, safe='')}={MASK if _SECRET_KEY.search(k) else quote(v, safe='')}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit((parts.scheme, netloc, parts.path, query, ""))


def redact_channel_url(url: str) -> str:
    """A channel (Apprise) URL fit for logs: Apprise's privacy view, plus custom headers masked.

    Apprise's ``url(privacy=True)`` hides tokens and passwords but prints ``+Header=`` values as they
    are, so every query value that may carry a secret is masked here too.
    """
    if url.startswith("block:"):
        return url
    try:
        from alerting.apprise_quiet import instantiate_quietly

        plugin = instantiate_quietly(url)
        shown = plugin.url(privacy=True) if plugin is not None else None
    except Exception:  # noqa: BLE001 - redaction must never raise
        shown = None
    if shown is None:
        scheme = url.split("://", 1)[0] if "://" in url else "?"
        return f"{scheme}://{MASK}"
    base, _, query = shown.partition("?")
    base = _mask_path(base)
    given = {k for k, _ in parse_qsl(urlsplit(url).query.replace("+", "%2B"), keep_blank_values=True)}
    kept = []
    for k, v in parse_qsl(query.replace("+", "%2B"), keep_blank_values=True):
        if k not in given:
            continue  # a default Apprise filled in, not something the user wrote
        secret = k[:1] in "+-:" or _SECRET_KEY.search(k) or k.lower() in ("to", "from", "user")
        kept.append(f"{k}={MASK if secret and v else v}")
    return base + ("?" + "&".join(kept) if kept else "")


def _mask_segment(segment: str) -> str:
    if not segment or "..." in segment or segment == MASK or (segment.isalpha() and len(segment) <= 12):
        return segment  # empty, already masked by Apprise, or a plain word such as "hooks"
    return f"{segment[0]}...{segment[-1]}" if len(segment) >= 8 else MASK


def _mask_path(url: str) -> str:
    """Mask path segments that may be tokens (webhook paths often carry them)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "/" not in rest:
        return url
    netloc, _, path = rest.partition("/")
    return f"{scheme}://{netloc}/" + "/".join(_mask_segment(seg) for seg in path.split("/"))


def scrub(text: str, secrets: Iterable[str]) -> str:
    """Replace each known secret (and its URL-quoted form) in free text with the mask."""
    for secret in sorted({s for s in secrets if s and len(s) >= 4}, key=len, reverse=True):
        text = text.replace(secret, MASK)
        quoted = quote(secret, safe="")
        if quoted != secret:
            text = text.replace(quoted, MASK)
    return text
