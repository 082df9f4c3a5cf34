"""Issue 10 against a real Prefect server: a Service Monitor's URL and headers are masked by the API
without secrets and in the block-document event; a document saved by the old schema (url in clear)
still loads and is re-saved with the secret schema."""

from __future__ import annotations

import asyncio
import json
import time
import uuid

import httpx
from pydantic import BaseModel, Field

from alerting.config import parse_config
from blocks import ServiceMonitor
from blocks.loader import load_block_config

CANARY = "Canary5e7b2d"


def _uid() -> str:
    return uuid.uuid4().hex[:8]


def _events_for(api_url: str, resource_id: str, kind: str, timeout: float = 30) -> list[dict]:
    """Poll the server's events for one resource until one of ``kind`` shows (events are written
    asynchronously)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = httpx.post(
            f"{api_url}/events/filter",
            json={"filter": {"resource": {"id": [resource_id]}, "order": "ASC"}, "limit": 50},
            timeout=10,
        )
        answer.raise_for_status()
        events = answer.json()["events"]
        if any(e["event"] == kind for e in events) or time.monotonic() > deadline:
            return events
        time.sleep(0.2)


def test_monitor_url_and_headers_are_masked_by_the_api_and_the_created_event(prefect_server):
    from prefect.client.orchestration import get_client

    name = f"secret-{_uid()}"
    doc_id = ServiceMonitor(
        url=f"https://user:{CANARY}@example.com/ping/{CANARY}?token={CANARY}&jwt={CANARY}",
        headers={"Authorization": f"Bearer {CANARY}"},
    ).save(name)
    with get_client(sync_client=True) as client:
        shown = client.read_block_document(doc_id, include_secrets=False)
        kept = client.read_block_document(doc_id, include_secrets=True)
    assert CANARY not in json.dumps(shown.data), shown.data
    assert CANARY in kept.data["url"]  # stored, only masked when read without secrets
    events = _events_for(prefect_server.api_url, f"prefect.block-document.{doc_id}", "prefect.block-document.created")
    assert any(e["event"] == "prefect.block-document.created" for e in events)
    assert CANARY not in json.dumps(events)


class _OldServiceMonitorFields(BaseModel):
    """The Service Monitor schema before issue 10: url a plain string, timeout a number."""

    service_name: str = ""
    url: str
    method: str = "GET"
    expect_status: list[int] = Field(default_factory=list)
    contains: str = ""
    not_contains: str = ""
    timeout: float = 10.0
    attempts: int = 3
    channels: list[str] = Field(default_factory=list)
    headers: dict = Field(default_factory=dict)
    verify_tls: bool = True
    tags: list[str] = Field(default_factory=list)
    enabled: bool = True


async def _save_old_document(name: str, data: dict):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.actions import BlockDocumentCreate, BlockSchemaCreate

    await ServiceMonitor.aregister_type_and_schema()
    fields = _OldServiceMonitorFields.model_json_schema()
    fields.update(secret_fields=["headers.*"], block_type_slug="service-monitor", block_schema_references={})
    async with get_client() as client:
        block_type = await client.read_block_type_by_slug("service-monitor")
        try:
            schema = await client.create_block_schema(
                BlockSchemaCreate(fields=fields, block_type_id=block_type.id, capabilities=[])
            )
        except Exception:  # noqa: BLE001 - an earlier run of this test registered it already
            from prefect.blocks.core import Block

            schema = await client.read_block_schema_by_checksum(Block._calculate_schema_checksum(fields))
        return await client.create_block_document(
            BlockDocumentCreate(name=name, data=data, block_schema_id=schema.id, block_type_id=block_type.id)
        )


def test_a_document_saved_by_the_old_schema_loads_and_is_resaved_secret(prefect_server):
    from prefect.client.orchestration import get_client

    tag = f"old-{_uid()}"
    url = f"https://example.com/health?token={CANARY}"
    old = asyncio.run(_save_old_document(f"legacy-{tag}", {"url": url, "timeout": 7.5, "attempts": 2, "tags": [tag]}))
    try:
        _old_document_is_read_and_resaved(old, tag, url)
    finally:
        # the server is shared with the other block tests: the old schema, the newest one registered,
        # would be the one the UI's form shows them (tests/blocks/test_blocks_browser.py)
        with get_client(sync_client=True) as client:
            client.delete_block_document(old.id)
            client._client.delete(f"/block_schemas/{old.block_schema_id}")


def _old_document_is_read_and_resaved(old, tag: str, url: str) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        before = client.read_block_document(old.id, include_secrets=False)
    assert CANARY in before.data["url"]  # the leak this fixes: the old schema does not mark url secret

    config = parse_config("monitors: []\n", "m.yaml", {})
    extra = asyncio.run(load_block_config(config, tag))
    assert not extra.problems, extra.problems
    [spec] = extra.monitors
    assert (spec.name, spec.url, spec.timeout, spec.attempts) == (f"legacy-{tag}", url, 7.5, 2)

    with get_client(sync_client=True) as client:
        after = client.read_block_document(old.id, include_secrets=False)
        kept = client.read_block_document(old.id, include_secrets=True)
    assert after.block_schema_id != old.block_schema_id
    assert CANARY not in json.dumps(after.data)
    assert kept.data["url"] == url and float(kept.data["timeout"]) == 7.5
    again = asyncio.run(load_block_config(config, tag))  # nothing left to upgrade; same monitor
    assert [m.url for m in again.monitors] == [url]
