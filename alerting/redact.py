"""Keep secrets out of logs, output and alert texts.

Three rules, applied wherever a URL is shown (``validate``, ``run --json``, alert bodies, outbox
rows, logs):

* **by name**: a query value whose name looks secret (``token``, ``key``, ``sig``, ``jwt``, ``sid``,
  ``*_token``, ``*_key``, ...; see ``is_secret_name``) is masked; so is user info (``user:pass@``);
* **by shape**: a path segment or query value that looks random (a UUID, a hex string of 16+
  characters, a 20+ character token mixing letters and digits) is masked, and so is every segment
  after a path word such as ``ping``, ``token`` or ``webhooks`` that is not a plain lowercase word;
* **by origin**: every value that came from a ``${VAR}`` substitution in the config is registered
  here (``register_secret``) and masked wherever it appears, in URLs and in free text (``scrub``).
"""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from urllib.parse import parse_qsl, quote, unquote, urlsplit, urlunsplit

MASK = "***"
MIN_SECRET_LENGTH = 4  # shorter values cannot be masked in free text without mangling it

# query (and header-like) names whose values are secrets
_SECRET_NAMES = frozenset(
    {
        "token", "key", "secret", "sig", "signature", "password", "pass", "pwd", "auth", "jwt",
        "session", "sid", "code", "apikey", "api_key", "access_token", "client_secret", "private",
        "credential", "credentials", "bearer", "hash", "otp",
    }
)
_SECRET_SUFFIXES = ("token", "_key", "-key", "secret", "password", "passwd", "_sig", "_sid", "session")
_SECRET_SUBSTRING = re.compile(
    r"(token|secret|passw|pwd|auth|signature|credential|session|apikey|api_key|api-key|access|bearer|webhook|jwt)",
    re.IGNORECASE,
)
# a path word after which the next segment is usually a secret (hc-ping.com/ping/<key>, /hooks/<token>)
_PATH_KEYWORDS = frozenset(
    {
        "ping", "token", "tokens", "key", "keys", "secret", "secrets", "hook", "hooks", "webhook", "webhooks",
        "apikey", "api_key", "api-key", "auth", "sig", "signature", "bot", "services", "trigger", "triggers",
    }
)
_UUID = re.compile(r"^[0-9a-f]{8}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{4}-?[0-9a-f]{12}$", re.IGNORECASE)
_HEX = re.compile(r"^(0x)?[0-9a-f]{16,}$", re.IGNORECASE)
_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-.~+=%:]+$")
_PLAIN_WORD = re.compile(r"^[a-z][a-z_-]{0,30}$")

_KNOWN: set[str] = set()
_KNOWN_LOCK = threading.Lock()
_KNOWN_RE: re.Pattern[str] | None = None  # one alternation of every registered secret and its quoted forms


def _needles(secrets: Iterable[str]) -> list[str]:
    found = set()
    for secret in secrets:
        if secret and len(secret) >= MIN_SECRET_LENGTH:
            found.update({secret, quote(secret, safe=""), quote(secret, safe="/:@")})
    return sorted(found, key=len, reverse=True)  # longest first: a secret inside another is masked whole


# --- known secrets (values from ${VAR} substitution) ----------------------------------------------

def register_secret(value: object) -> None:
    """Remember a secret string (e.g. a ``${VAR}`` value from the config) for every later redaction
    in this process. Values shorter than ``MIN_SECRET_LENGTH`` cannot be masked and are ignored."""
    global _KNOWN_RE
    if isinstance(value, str) and len(value.strip()) >= MIN_SECRET_LENGTH:
        with _KNOWN_LOCK:
            if value.strip() in _KNOWN:
                return
            _KNOWN.add(value.strip())
            _KNOWN_RE = re.compile("|".join(re.escape(n) for n in _needles(_KNOWN)))


def known_secrets() -> frozenset[str]:
    """Every secret registered so far in this process."""
    with _KNOWN_LOCK:
        return frozenset(_KNOWN)


def forget_secrets() -> None:
    """Forget the known secret values (for tests that need a clean process state)."""
    global _KNOWN_RE
    with _KNOWN_LOCK:
        _KNOWN.clear()
        _KNOWN_RE = None


# --- what looks secret ----------------------------------------------------------------------------

def is_secret_name(name: str) -> bool:
    """True for a query/field name whose value should never be shown (case-insensitive)."""
    lowered = name.strip().lower().lstrip("+-:")
    if not lowered:
        return False
    return (
        lowered in _SECRET_NAMES
        or lowered.endswith(_SECRET_SUFFIXES)
        or bool(_SECRET_SUBSTRING.search(lowered))
    )


def looks_random(value: str) -> bool:
    """True for a value that looks like a generated token: a UUID, hex of 16+ characters, or a 20+
    character token that mixes letters and digits (or upper and lower case)."""
    value = unquote(value)
    if len(value) < 16:
        return False
    if _UUID.match(value) or _HEX.match(value):
        return True
    if len(value) < 20 or not _TOKEN_CHARS.match(value):
        return False
    letters = any(c.isalpha() for c in value)
    digits = any(c.isdigit() for c in value)
    if letters and digits:
        return True
    # base64-ish without digits: mixed case and no word separators
    return len(value) >= 24 and any(c.isupper() for c in value[1:]) and any(c.islower() for c in value) \
        and not any(c in "-." for c in value)


def _mask_known(text: str, secrets: Iterable[str] = ()) -> str:
    for needle in _needles(secrets):
        text = text.replace(needle, MASK)
    known = _KNOWN_RE
    return known.sub(MASK, text) if known is not None else text


def _mask_target_path(path: str) -> str:
    segments = path.split("/")
    out = []
    after_keyword = False
    for segment in segments:
        plain = unquote(segment)
        if segment and (looks_random(plain) or (after_keyword and not _PLAIN_WORD.match(plain))):
            out.append(MASK)
        else:
            out.append(segment)
        after_keyword = after_keyword or plain.lower() in _PATH_KEYWORDS  # every later segment too
    return "/".join(out)


# --- URLs -----------------------------------------------------------------------------------------

def redact_target_url(url: str) -> str:
    """A monitored URL fit for alerts, output and logs: no user info, no fragment, secret-looking
    query values and random-looking path segments masked, registered ``${VAR}`` values masked."""
    return _redact_target_url(url, _KNOWN_RE)  # cached: the same URLs are shown every cycle


@functools.lru_cache(maxsize=16384)
def _redact_target_url(url: str, _known: object) -> str:  # ``_known``: new secret values, a new cache key
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
        f"{quote(k, safe='')}={MASK if (is_secret_name(k) or looks_random(v)) and v else quote(v, safe='')}"
        for k, v in parse_qsl(parts.query, keep_blank_values=True)
    )
    shown = urlunsplit((parts.scheme, netloc, _mask_target_path(parts.path), query, ""))
    return _mask_known(shown)


def redact_headers(headers: Mapping[str, object]) -> dict[str, str]:
    """Header names with every value masked (header values are always secrets)."""
    return {str(name): MASK for name in headers}


def redact_channel_url(url: str) -> str:
    """A channel (Apprise) URL fit for logs: Apprise's privacy view, plus custom headers masked.

    Apprise's ``url(privacy=True)`` hides tokens and passwords but prints ``+Header=`` values as they
    are, so every query value that may carry a secret is masked here too.
    """
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
        secret = k[:1] in "+-:" or is_secret_name(k) or looks_random(v) or k.lower() in ("to", "from", "user")
        kept.append(f"{k}={MASK if secret and v else v}")
    return _mask_known(base + ("?" + "&".join(kept) if kept else ""))


def _mask_segment(segment: str) -> str:
    if not segment or "..." in segment or segment == MASK or (segment.isalpha() and len(segment) <= 12):
        return segment  # empty, already masked by Apprise, or a plain word such as "hooks"
    return f"{segment[0]}...{segment[-1]}" if len(segment) >= 8 and not looks_random(segment) else MASK


def _mask_path(url: str) -> str:
    """Mask path segments that may be tokens (webhook paths often carry them)."""
    scheme, sep, rest = url.partition("://")
    if not sep or "/" not in rest:
        return url
    netloc, _, path = rest.partition("/")
    return f"{scheme}://{netloc}/" + "/".join(_mask_segment(seg) for seg in path.split("/"))


# --- free text ------------------------------------------------------------------------------------

_URL_IN_TEXT = re.compile(r"\bhttps?://[^\s'\"<>`]+", re.IGNORECASE)
# urllib3 / requests name the request path without the host: "... Max retries exceeded with url: /p?q"
_PATH_IN_TEXT = re.compile(r"(\burl: )(/[^\s'\"<>`()]*)", re.IGNORECASE)


def _redact_path(path: str) -> str:
    return redact_target_url("http://h" + path)[len("http://h"):]


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Free text fit for output: each given secret, each registered ``${VAR}`` value (and their
    URL-quoted forms) masked, every http(s) URL in it redacted as a monitored URL, and the request
    path that requests/urllib3 put in their exception texts (``with url: /path?query``) too."""
    text = _mask_known(text, secrets)
    if "://" in text:  # most texts hold no URL ("HTTP 200 OK"): skip reading Prefect's settings
        safe = _prefect_url_prefixes()

        def url(match: re.Match[str]) -> str:
            found = match.group(0)
            shown = found.rstrip(".,;:!?)]}")  # sentence punctuation after a URL is not part of it
            tail = found[len(shown):]
            return found if shown.startswith(safe) else redact_target_url(shown) + tail

        text = _URL_IN_TEXT.sub(url, text)
    if "url:" not in text.lower():
        return text
    return _PATH_IN_TEXT.sub(lambda m: m.group(1) + _redact_path(m.group(2)), text)


def _prefect_url_prefixes() -> tuple[str, ...]:
    """The Prefect UI and API addresses in use: links to flow runs (with their UUIDs) stay readable."""
    import os
    import sys

    found = [os.environ.get("PREFECT_UI_URL"), os.environ.get("PREFECT_API_URL")]
    if "prefect.settings" in sys.modules:  # never import Prefect from here: the core runs without it
        try:
            from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL

            found += [PREFECT_UI_URL.value(), PREFECT_API_URL.value()]
        except Exception:  # noqa: BLE001
            pass
    prefixes = []
    for url in found:
        if url and "://" in url:
            base = url.rstrip("/").removesuffix("/api")
            if base.split("://", 1)[1]:
                prefixes.append(base + "/")
    return tuple(prefixes)


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs a record (message and traceback): URLs redacted, registered
    ``${VAR}`` values masked. ``install_log_redaction`` applies it to every record of the process."""

    def filter(self, record: logging.LogRecord) -> bool:
        _scrub_record(record)
        return True


def _scrub_record(record: logging.LogRecord) -> None:
    _clean_record(record, scrub)


def _clean_record(record: logging.LogRecord, clean: Callable[[str], str]) -> None:
    """Apply ``clean`` to a record's message, traceback and stack, before any handler formats it."""
    try:
        message = record.getMessage()
    except Exception:  # noqa: BLE001 - a bad format string is the handler's business
        return
    cleaned = clean(message)
    if cleaned != message:
        record.msg, record.args = cleaned, ()
    if record.exc_info and not record.exc_text:
        record.exc_text = logging.Formatter().formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = clean(record.exc_text)
    if record.stack_info:
        record.stack_info = clean(record.stack_info)


_INSTALLED = False


def install_log_redaction() -> None:
    """Scrub every log record this process creates, whatever logger or handler (Prefect's API log
    handler, console, files), before any handler sees it: a log record factory, so it survives
    logging being (re)configured later, e.g. by Prefect. Idempotent."""
    global _INSTALLED
    with _KNOWN_LOCK:
        if _INSTALLED:
            return
        previous = logging.getLogRecordFactory()

        def factory(*args, **kwargs) -> logging.LogRecord:
            record = previous(*args, **kwargs)
            try:
                _scrub_record(record)
            except Exception:  # noqa: BLE001 - logging must never fail because of redaction
                pass
            return record

        logging.setLogRecordFactory(factory)
        _INSTALLED = True


# --- one thread's secrets, for the time of one send -----------------------------------------------

_THREAD = threading.local()  # .needles: what to mask in records this thread creates, while sending
_THREAD_FACTORY_INSTALLED = False


@contextlib.contextmanager
def masked_in_logs(secrets: Iterable[str]) -> Iterator[None]:
    """While active, every log record this thread creates (any logger, any level: Apprise's DEBUG
    line with the webhook URL, urllib3's request line with its path) has ``secrets`` masked, before
    any handler sees it. A channel wraps its send in this: its secrets are known to it alone, not
    registered for the whole process (``register_secret``). Nests; other threads are unaffected."""
    global _THREAD_FACTORY_INSTALLED
    with _KNOWN_LOCK:
        if not _THREAD_FACTORY_INSTALLED:
            previous = logging.getLogRecordFactory()

            def factory(*args, **kwargs) -> logging.LogRecord:
                record = previous(*args, **kwargs)
                needles = getattr(_THREAD, "needles", None)
                if needles:
                    try:
                        _mask_record(record, needles)
                    except Exception:  # noqa: BLE001 - logging must never fail because of redaction
                        pass
                return record

            logging.setLogRecordFactory(factory)
            _THREAD_FACTORY_INSTALLED = True
    before = getattr(_THREAD, "needles", None)
    _THREAD.needles = _needles([*(before or ()), *secrets])
    try:
        yield
    finally:
        _THREAD.needles = before


def _mask_record(record: logging.LogRecord, needles: list[str]) -> None:
    def mask(text: str) -> str:
        for needle in needles:
            text = text.replace(needle, MASK)
        return text

    _clean_record(record, mask)
