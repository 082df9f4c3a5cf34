"""Which Prefect API an ``alerting`` command talks to: one rule, in one place.

1. ``PREFECT_API_URL`` when it is set (in the environment, or in the Prefect profile with
   ``prefect config set PREFECT_API_URL=...``);
2. else the local server that ``alerting serve`` started, if it answers ``/api/health``: the
   address serve recorded in ``$PREFECT_HOME/alerting-local-server``, then http://127.0.0.1:4200;
3. else, for ``alerting run`` and ``drill`` only, a temporary server that Prefect starts for that
   one run. Every other command says that no Prefect API answers.

``probe`` tells a Prefect API from anything else that answers HTTP on a port, so a port taken by
another web server is reported as such instead of failing later on a response that is not JSON.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

LOCAL_API = "http://127.0.0.1:4200/api"  # where `alerting serve` starts a server by default
RECORD_NAME = "alerting-local-server"  # in PREFECT_HOME: the API URL of the server serve started

RULE = (
    "Prefect API: PREFECT_API_URL when set, else the local server `alerting serve` started "
    "(127.0.0.1:4200 or the address it recorded) if it answers."
)
RULE_RUN = RULE.removesuffix(".") + ", else a temporary server for this run."

Probe = Literal["prefect", "other", "none"]


class NoPrefectAPI(Exception):
    """No Prefect API answers under the rule; the message says what was tried."""


@dataclass(frozen=True)
class PrefectAPI:
    url: str  # ends in /api, no trailing slash
    source: str  # "PREFECT_API_URL" or "local server"

    @property
    def ui_url(self) -> str:
        return self.url.removesuffix("/api")


def probe(api_url: str, timeout: float = 2.0) -> Probe:
    """``prefect``: a Prefect API answers; ``other``: something else answers HTTP; ``none``: nothing."""
    import httpx  # here: ~0.07 s to import, and most commands never ask

    try:
        response = httpx.get(f"{api_url.rstrip('/')}/health", timeout=timeout)
    except httpx.HTTPError:
        return "none"
    if response.status_code == 200:
        try:
            if response.json() is True:  # Prefect's /api/health answers the JSON value true
                return "prefect"
        except ValueError:
            pass
    return "other"


def healthy(api_url: str, timeout: float = 2.0) -> bool:
    return probe(api_url, timeout) == "prefect"


def _settings_may_set(name: str) -> bool:
    """Could a Prefect settings file (profile, .env, prefect.toml, pyproject.toml) set ``name``?
    A cheap look at the files, so a command that needs no Prefect does not import it (~1-2 s)."""
    home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    looks = [  # (file, text that means it may set the setting)
        (Path(os.environ.get("PREFECT_PROFILES_PATH") or home / "profiles.toml"), name),
        (Path(".env"), name),
        (Path("prefect.toml"), ""),  # keys like [api] url: any such file counts
        (Path("pyproject.toml"), "tool.prefect"),
    ]
    for file, needle in looks:
        try:
            if needle in file.read_text(errors="replace"):
                return True
        except OSError:
            continue
    return False


def configured_url() -> str | None:
    """PREFECT_API_URL from the environment or Prefect's settings (profile, ...), or None."""
    url = os.environ.get("PREFECT_API_URL")
    if not url and _settings_may_set("PREFECT_API_URL"):
        from prefect.settings import PREFECT_API_URL

        url = PREFECT_API_URL.value()
    return url.rstrip("/") if url else None


def _record_path() -> Path:
    if os.environ.get("PREFECT_HOME") or not _settings_may_set("PREFECT_HOME"):
        home = Path(os.environ.get("PREFECT_HOME") or Path.home() / ".prefect").expanduser()
    else:
        from prefect.settings import PREFECT_HOME

        home = Path(PREFECT_HOME.value())
    return home / RECORD_NAME


def record_local_server(api_url: str) -> None:
    """Remember the local server ``alerting serve`` uses, for the other commands (best effort)."""
    try:
        path = _record_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(api_url.rstrip("/") + "\n")
    except OSError:
        pass


def recorded_local_server() -> str | None:
    try:
        text = _record_path().read_text().strip()
    except OSError:
        return None
    return text or None


def local_server() -> str | None:
    """The local server ``alerting serve`` started, if one answers."""
    for url in dict.fromkeys([recorded_local_server(), LOCAL_API]):
        if url and healthy(url):
            return url
    return None


def find() -> PrefectAPI:
    """The Prefect API to use by the rule (steps 1 and 2), checked to answer; NoPrefectAPI otherwise."""
    url = configured_url()
    if url:
        kind = probe(url, timeout=3.0)
        if kind == "prefect":
            return PrefectAPI(url, "PREFECT_API_URL")
        what = "is not a Prefect API" if kind == "other" else "does not answer"
        raise NoPrefectAPI(f"the Prefect API at {url} {what} (PREFECT_API_URL); is the server running?")
    local = local_server()
    if local:
        return PrefectAPI(local, "local server")
    raise NoPrefectAPI(
        "no Prefect API: PREFECT_API_URL is not set and no server started by `alerting serve` answers "
        f"(tried {', '.join(dict.fromkeys(u for u in (recorded_local_server(), LOCAL_API) if u))}); "
        "start one with `alerting serve` or set PREFECT_API_URL"
    )


MONITOR_BLOCK_SLUG = "service-monitor"  # the Service Monitor block type (blocks/monitor.py uses this)


def may_hold_blocks(api_url: str, slug: str, timeout: float = 5.0) -> bool:
    """False only when the API says, over plain HTTP, that it holds no block document of type
    ``slug``: then a command can skip the Prefect client and its ~1.3 s import. Any other answer
    (an error, a login required, an unexpected body) is True, and the caller reads the blocks
    through Prefect's client, which reports what is wrong."""
    import httpx

    try:
        response = httpx.post(
            f"{api_url.rstrip('/')}/block_documents/filter",
            json={"block_types": {"slug": {"any_": [slug]}}, "include_secrets": False, "limit": 1},
            timeout=timeout,
        )
        return not (response.status_code == 200 and response.json() == [])
    except (httpx.HTTPError, ValueError):
        return True


def for_run() -> str | None:
    """The API URL ``run``/``drill`` should use (steps 1 and 2), or None: let Prefect start a
    temporary server (step 3). A configured URL is returned as is, answering or not."""
    return configured_url() or local_server()


@contextmanager
def using(api_url: str | None) -> Iterator[None]:
    """Prefect settings (and the environment, for child processes) pointing at ``api_url``."""
    if api_url is None:
        yield
        return
    from prefect.settings import PREFECT_API_URL, PREFECT_UI_URL, temporary_settings

    saved = {k: os.environ.get(k) for k in ("PREFECT_API_URL", "PREFECT_UI_URL")}
    ui_url = os.environ.get("PREFECT_UI_URL") or api_url.removesuffix("/api")
    os.environ["PREFECT_API_URL"] = api_url
    os.environ["PREFECT_UI_URL"] = ui_url
    try:
        with temporary_settings(updates={PREFECT_API_URL: api_url, PREFECT_UI_URL: ui_url}):
            yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
