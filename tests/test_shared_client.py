"""One Prefect client per process in the distributed mode (flows/shared_client.py).

Without an active client context, each of Prefect's ``get_client()`` calls builds a new client and a
new TLS context (~22 ms of CPU here); ``.delay()``, ``wait()`` and ``result()`` make several per
batch. These tests hold the contract the scheduler and the workers rely on, with Prefect's real
``get_client`` (no server is contacted: building and entering a client opens no connection).
"""

from __future__ import annotations

import contextvars
import threading
from concurrent.futures import ThreadPoolExecutor

from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL, temporary_settings
from prefect.utilities.asyncutils import run_coro_as_sync

from flows.shared_client import SharedAsyncClient, one_sync_client

NOWHERE = "http://127.0.0.1:9/api"  # never contacted


async def _client_prefect_would_use():
    return get_client()


def test_calls_from_many_rounds_at_once_share_one_client_and_close_frees_it():
    shared = SharedAsyncClient()
    seen: list[tuple[object, object, object]] = []
    with temporary_settings(updates={PREFECT_API_URL: NOWHERE}):
        def round_() -> None:
            with shared.active() as client:
                # what .delay(), wait() and result() do: coroutines on Prefect's run-sync loop
                seen.append((client, run_coro_as_sync(_client_prefect_would_use()),
                             run_coro_as_sync(_client_prefect_would_use())))

        threads = [threading.Thread(target=round_) for _ in range(4)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
        outside = run_coro_as_sync(_client_prefect_would_use())
        shared.close()

    assert len(seen) == 4
    one = seen[0][0]
    assert all(c is one for triple in seen for c in triple)
    assert outside is not one  # without active(), Prefect builds a client per call
    assert one._closed  # closed with the pool, not left open


def test_a_closed_shared_client_opens_a_new_one_when_used_again():
    shared = SharedAsyncClient()
    with temporary_settings(updates={PREFECT_API_URL: NOWHERE}):
        with shared.active() as first:
            pass
        shared.close()
        with shared.active() as second:
            assert run_coro_as_sync(_client_prefect_would_use()) is second
        shared.close()
    assert second is not first and first._closed and second._closed


def test_a_workers_task_run_threads_share_one_sync_client():
    # Prefect's task worker runs a sync task in its thread pool inside a copy of its context;
    # entering asks the session's server for its API version, as each batch's own client did
    with one_sync_client():
        context = contextvars.copy_context()
        with ThreadPoolExecutor(3) as pool:
            clients = [f.result() for f in [pool.submit(context.run, get_client, sync_client=True) for _ in range(6)]]
    assert len({id(c) for c in clients}) == 1


def test_a_worker_whose_server_is_away_at_start_still_serves_with_a_client_per_batch(caplog):
    with temporary_settings(updates={PREFECT_API_URL: NOWHERE}), one_sync_client():
        first, second = get_client(sync_client=True), get_client(sync_client=True)
    assert first is not second  # Prefect's own behaviour: no shared client, nothing raised
    assert "Could not open one Prefect client" in caplog.text


def test_the_shared_client_reaches_an_api_that_restarted_on_the_same_port():
    """The client lives as long as the scheduler: when the API goes away and comes back (a restart),
    its next call reconnects; nothing has to be rebuilt."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    from toolkit import free_port

    class Health(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: the client holds a pooled connection
        timeout = 0.5  # an idle connection is closed by the server after this

        def do_GET(self):
            body = b"true"
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    port = free_port()

    class API(ThreadingHTTPServer):
        daemon_threads = False  # server_close waits until every connection is closed, as a stopped process's are

    def serve() -> ThreadingHTTPServer:
        server = API(("127.0.0.1", port), Health)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        return server

    shared = SharedAsyncClient()
    api = serve()
    try:
        with temporary_settings(updates={PREFECT_API_URL: f"http://127.0.0.1:{port}/api"}):
            with shared.active() as client:
                assert run_coro_as_sync(client.api_healthcheck()) is None
            api.shutdown()
            api.server_close()  # the API is gone, and the connection the client pooled with it
            api = serve()
            with shared.active() as again:
                assert again is client
                assert run_coro_as_sync(again.api_healthcheck()) is None
    finally:
        shared.close()
        api.shutdown()
        api.server_close()
