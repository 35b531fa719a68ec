"""The client against a real host and Postgres: HTTP (sync and async), the
caller's own transaction, problem documents, and dead letters."""

from __future__ import annotations

import asyncio
import datetime as dt
import time

import pytest

from sluice_client import AsyncClient, Client, SluiceError, enqueue, enqueue_many, new_item
from conftest import TOKENS, Host


def wait_for(client: Client, id: int, state: str) -> dict:
    deadline = time.monotonic() + 30
    while True:
        item = client.item(id)
        if item is not None and item["state"] == state:
            return item
        assert time.monotonic() < deadline, f"item {id} never became {state}: {item}"
        time.sleep(0.05)


def test_enqueue_over_http_and_follow_the_item(host: Host) -> None:
    with Client(host.url, TOKENS["enqueue"]) as producer, Client(host.url, TOKENS["read"]) as reader:
        enqueued = producer.enqueue(new_item("echo", "conv-http", {"text": "hi"}, tokens=3))
        assert enqueued["duplicate"] is False
        done = wait_for(reader, enqueued["id"], "done")
        assert done["payload"] == {"text": "hi"}
        assert done["tokens"] == 3
        assert done["output"] is not None
        assert reader.item(10**12) is None


def test_the_async_client_enqueues_in_batches_and_pages_through_a_unit(host: Host) -> None:
    async def run() -> list:
        async with AsyncClient(host.url, TOKENS["enqueue"]) as producer:
            items = [new_item("echo", "conv-async", n, delay=dt.timedelta(hours=1)) for n in range(5)]
            enqueued = await producer.enqueue_many(items)
        async with AsyncClient(host.url, TOKENS["read"]) as reader:
            seen = [item["id"] async for item in reader.unit_items("echo", "conv-async", page_size=2)]
        assert seen == [e["id"] for e in enqueued], "every page, in order"
        async with AsyncClient(host.url, TOKENS["admin"]) as ops:
            return [await ops.cancel_unit("echo", "conv-async")]

    assert asyncio.run(run()) == [5]


def test_enqueue_joins_the_callers_transaction(host: Host) -> None:
    with host.connect() as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS messages (id bigserial PRIMARY KEY, body text)")
        conn.commit()
        with pytest.raises(RuntimeError):
            with conn.transaction():
                conn.execute("INSERT INTO messages (body) VALUES ('rolled back')")
                lost = enqueue(conn, "echo", "conv-sql", {"n": 1})
                raise RuntimeError("the application fails after enqueueing")
        with conn.transaction():
            conn.execute("INSERT INTO messages (body) VALUES ('kept')")
            kept = enqueue(conn, "echo", "conv-sql", {"n": 2}, dedupe_key="msg-2")
            batch = enqueue_many(conn, [new_item("echo", "conv-sql", 3), new_item("echo", "conv-sql", 4, dedupe_key="msg-2")])
        assert batch[1] == {"id": kept, "duplicate": True}
        assert conn.execute("SELECT count(*) FROM messages").fetchone()[0] == 1
    with Client(host.url, TOKENS["read"]) as reader:
        assert reader.item(lost) is None, "a rollback leaves no item"
        assert wait_for(reader, kept, "done")["payload"] == {"n": 2}
        wait_for(reader, batch[0]["id"], "done")


def test_refusals_are_problem_documents_naming_the_field(host: Host) -> None:
    with Client(host.url, TOKENS["enqueue"]) as producer:
        with pytest.raises(SluiceError) as refused:
            producer.enqueue(new_item("echo", " ", {}))
        assert refused.value.status == 400
        assert refused.value.field == "work_unit_key"
        assert "nothing was enqueued" in refused.value.detail
        with pytest.raises(SluiceError) as forbidden:
            producer.status()
        assert forbidden.value.status == 403
    with Client(host.url, "wrong") as stranger:
        with pytest.raises(SluiceError) as unauthorized:
            stranger.status()
        assert unauthorized.value.status == 401
    with host.connect() as conn:
        with pytest.raises(Exception, match="work_unit_key is empty"):
            enqueue(conn, "echo", "", {})


def test_dead_letters_can_be_listed_retried_and_purged(host: Host) -> None:
    with Client(host.url, TOKENS["enqueue"]) as producer:
        id = producer.enqueue(new_item("fail", "conv-dead", "permanent"))["id"]
    with Client(host.url, TOKENS["admin"]) as ops:
        dead = wait_for(ops, id, "dead")
        assert dead["last_error"] == "asked to fail permanently"
        assert [item["id"] for item in ops.dead(task_type="fail")] == [id]
        assert ops.dead_item(id)["errors"][0]["error"] == "asked to fail permanently"
        with Client(host.url, TOKENS["read"]) as reader, pytest.raises(SluiceError) as forbidden:
            reader.retry_dead(id)
        assert forbidden.value.status == 403
        assert ops.retry_dead(id) == 1
        wait_for(ops, id, "dead")
        assert ops.purge_dead(task_type="fail") == 1
        assert ops.dead_item(id) is None
