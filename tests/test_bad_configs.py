"""The corpus of malformed configs (tests/bad_configs/) through `alerting validate` and `alerting run`.

Each file's first line is ``# expect: <reason>``. For every file and both commands, run as real
processes (forked from a helper that imported the CLI once: toolkit/forked_cli.py): exit status 2,
the reason on one line as ``<file>: <reason>`` (so it names the file, and the monitor or channel and
the field where one applies), every ``error:`` line names the file, no traceback, and no hang (a
timeout kills the process group).

``run`` must refuse a bad config before it starts anything of Prefect's: the processes get a
``PREFECT_API_URL`` where nothing listens, so a ``run`` that went as far as a flow run would fail
differently (and slowly), never start a temporary server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from toolkit import free_port
from toolkit.forked_cli import ForkedCLI
from toolkit.forked_cli import Result as Outcome

CORPUS_DIR = Path(__file__).parent / "bad_configs"
CORPUS = sorted(CORPUS_DIR.glob("*.yaml"))
COMMANDS = ("validate", "run")
HANG = 60  # seconds: far above the ~0.5 s a refusal takes; only a hang gets near it
WORKERS = 3


def expectation(path: Path) -> str:
    first = path.read_bytes().split(b"\n", 1)[0].decode("utf-8")
    assert first.startswith("# expect: "), f"{path.name}: the first line must be '# expect: <reason>'"
    return first.removeprefix("# expect: ")


@pytest.fixture(scope="module")
def outcomes(request, tmp_path_factory) -> dict[tuple[str, str], Outcome]:
    """Every selected (command, file) at once, three processes at a time."""
    home = tmp_path_factory.mktemp("prefect-home")
    cwd = tmp_path_factory.mktemp("cwd")
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTING_CORPUS_")}
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api",  # nothing listens there
        PREFECT_HOME=str(home),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        COLUMNS="1000",  # one problem, one line, whatever the terminal
    )
    selected = {
        (item.callspec.params["command"], item.callspec.params["path"])
        for item in request.session.items
        if getattr(item, "originalname", "") == "test_each_bad_config_exits_2_with_one_clear_line"
    }
    jobs = [(command, path) for path in CORPUS for command in COMMANDS if (command, path) in selected]

    def run_share(share: list[tuple[str, Path]]) -> list[Outcome]:
        with ForkedCLI(env) as cli:
            return [cli.run([command, "-c", str(path)], cwd, timeout=HANG) for command, path in share]

    shares = [jobs[i::WORKERS] for i in range(WORKERS)]
    with ThreadPoolExecutor(WORKERS) as pool:
        results = [r for share_results in pool.map(run_share, shares) for r in share_results]
    ordered = [job for share in shares for job in share]
    return {(command, path.name): result for (command, path), result in zip(ordered, results, strict=True)}


def test_the_corpus_is_big_enough():
    assert len(CORPUS) >= 50, len(CORPUS)
    for path in CORPUS:
        expectation(path)


@pytest.mark.parametrize("command", COMMANDS)
@pytest.mark.parametrize("path", CORPUS, ids=[p.stem for p in CORPUS])
def test_each_bad_config_exits_2_with_one_clear_line(outcomes, command, path):
    result = outcomes[(command, path.name)]
    assert not result.hung, f"alerting {command} {path.name} hung (killed after {HANG}s)"
    assert "Traceback" not in result.text, result.text
    assert result.returncode == 2, f"exit {result.returncode}:\n{result.text}"
    reason = f"{path}: {expectation(path)}"
    lines = result.text.splitlines()
    assert any(reason in line for line in lines), f"no line with {reason!r}:\n{result.text}"
    errors = [line for line in lines if line.startswith("error:")]
    assert errors and all(str(path) in line for line in errors), result.text
    if command == "run":
        assert result.stdout == "", result.stdout  # nothing was checked, no results table


# --- the same rules at the other doors: `check`, empty and oversized configs, `serve` ----------


@pytest.fixture(scope="module")
def env(tmp_path_factory) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ALERTING_CORPUS_")}
    env.update(
        PREFECT_API_URL=f"http://127.0.0.1:{free_port()}/api",
        PREFECT_HOME=str(tmp_path_factory.mktemp("prefect-home")),
        PREFECT_SERVER_ANALYTICS_ENABLED="false",
        COLUMNS="1000",
    )
    return env


@pytest.fixture(scope="module")
def cli(env) -> Iterator[ForkedCLI]:
    with ForkedCLI(env) as forked:
        yield forked


def alerting(cli: ForkedCLI, cwd: Path, *args: str) -> Outcome:
    return cli.run(args, cwd, timeout=HANG)


def assert_refused(result: Outcome, *needles: str) -> None:
    assert not result.hung and "Traceback" not in result.text, result.text
    assert result.returncode == 2, f"exit {result.returncode}:\n{result.text}"
    for needle in needles:
        assert needle in result.stderr, result.stderr


@pytest.mark.parametrize(
    "args, message",
    [
        (["http://exa mple.com/"], "error: URL: host contains a space"),
        (["http://a..example.com/"], "error: URL: host 'a..example.com' has an empty label"),
        (["http://\u2603.example/"], "error: URL: invalid international domain name"),
        (["http://127.0.0.1:9/", "--expect-status", "abc"],
         "error: --expect-status: expected HTTP status codes such as 200 or 200,204, got 'abc'"),
        (["http://127.0.0.1:9/", "--timeout", "0"], "error: --timeout: must be from 100ms to 5m, got '0'"),
        (["http://127.0.0.1:9/", "--timeout", "99999999999999999999h"], "error: --timeout: must be from 100ms to 5m"),
        (["http://127.0.0.1:9/", "--backoff", "10m"], "error: --backoff: must be from 0s to 5m"),
    ],
)
def test_check_refuses_bad_input_with_exit_2(cli, tmp_path, args, message):
    assert_refused(alerting(cli, tmp_path, "check", *args), message)


def test_no_monitors_validate_warns_run_and_serve_refuse(cli, tmp_path):
    for text in ("", "# all monitors commented out\nmonitors:\n#  - name: api\n"):
        path = tmp_path / "m.yaml"
        path.write_text(text)
        validate = alerting(cli, tmp_path, "validate", "-c", str(path))
        assert validate.returncode == 0 and "Traceback" not in validate.text, validate.text
        assert f"{path}: warning: no monitors defined" in validate.stderr
        nothing = f"error: {path}: field 'monitors': no monitors: nothing to check"
        assert_refused(alerting(cli, tmp_path, "run", "-c", str(path)), nothing)
        # serve refuses before it starts a Prefect server (nothing listens on the API URL or the port)
        assert_refused(alerting(cli, tmp_path, "serve", "-c", str(path), "--port", str(free_port())), nothing)
    blocks = tmp_path / "blocks.yaml"
    blocks.write_text("monitors: []\n")
    validate = alerting(cli, tmp_path, "validate", "-c", str(blocks))
    assert validate.returncode == 0 and "only Service Monitor blocks made in the Prefect UI" in validate.stderr


def test_serve_refuses_when_every_monitor_is_broken(cli, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("monitors:\n  - {name: api, url: 'http://127.0.0.1:9/', timeout: .inf}\n")
    assert_refused(
        alerting(cli, tmp_path, "serve", "-c", str(path), "--port", str(free_port())),
        f"error: {path}: monitor 'api': field 'timeout': must be from 100ms to 5m, got inf",
        f"error: {path}: field 'monitors': no valid monitor: nothing to check",
    )


def test_an_oversized_config_is_refused_unread(cli, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("monitors:\n" + "".join(f"  - {{name: m{i}, url: 'http://127.0.0.1:9/{i}'}}\n" for i in range(30000)))
    for command in COMMANDS:
        assert_refused(alerting(cli, tmp_path, command, "-c", str(path)),
                       f"error: {path}: the file is ", "a config may be at most 1,024 KB (1 MB)")


def test_names_that_look_like_markup_are_printed_as_they_are(cli, tmp_path):
    path = tmp_path / "m.yaml"
    path.write_text("monitors:\n  - {name: '[/x]', url: 'http://127.0.0.1:9/', colour: red}\n")
    assert_refused(alerting(cli, tmp_path, "validate", "-c", str(path)),
                   f"error: {path}: monitor '[/x]': field 'colour': unknown field")
    path.write_text("monitors:\n  - {name: '[/x]', url: 'http://127.0.0.1:9/'}\n")
    ok = alerting(cli, tmp_path, "validate", "-c", str(path))
    assert ok.returncode == 0 and "  [/x]: GET http://127.0.0.1:9/" in ok.stdout, ok.text
