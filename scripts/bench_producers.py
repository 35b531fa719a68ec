"""The measurements of scripts/bench-producers (see there)."""

from __future__ import annotations

import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import httpx
import psycopg

from sluice_client import Client, new_item

POSTGRES = "postgres://postgres@127.0.0.1:5432/test"
TOKEN = "bench-token"
ROUNDS = 3


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_host(schema: str, tmp: str, port: int) -> subprocess.Popen:
    folder = Path(tmp, "plugins")
    folder.mkdir(exist_ok=True)
    (folder / "adversary.wasm").write_bytes(Path(os.environ["SLUICE_TEST_PLUGIN"]).read_bytes())
    url = f"{POSTGRES}?options=-c%20search_path%3D{schema}"
    Path(tmp, "sluice.toml").write_text(
        f'database_url = "{url}"\nlisten = "127.0.0.1:{port}"\nretain_done = "1h"\n'
        f'[api.tokens.bench]\nscope = "admin"\ntoken_env = "BENCH_TOKEN"\n'
    )
    env = dict(os.environ, SLUICE_LOG="warn", BENCH_TOKEN=TOKEN)
    process = subprocess.Popen([os.environ["SLUICE_BIN"], "run"], cwd=tmp, env=env,
                               stdout=subprocess.DEVNULL, stderr=open(Path(tmp, "host.log"), "a"))
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200:
                return process
        except httpx.TransportError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(Path(tmp, "host.log").read_text())
        time.sleep(0.05)


def median_rate(run, items: int) -> float:
    rates = []
    for _ in range(ROUNDS):
        started = time.perf_counter()
        run()
        rates.append(items / (time.perf_counter() - started))
    return statistics.median(rates)


def throughput(conn: psycopg.Connection, base: str) -> dict:
    """Items/s per door, of a task type no plugin serves (nothing runs them)."""
    one = 2000
    batch, batches = 1000, 20
    payload = json.dumps({"text": "x" * 100})
    items = [{"task_type": "bench", "work_unit_key": f"k{n % 100}", "payload": {"text": "x" * 100}}
             for n in range(batch)]
    body = json.dumps({"items": items}).encode()
    headers = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
    http = httpx.Client(base_url=base, headers=headers)
    client = Client(base, TOKEN)
    out = {}

    def sql_one():
        for n in range(one):
            conn.execute("SELECT sluice_enqueue('bench', %s, %s::jsonb)", (f"k{n % 100}", payload))
            conn.commit()

    def sql_many():
        for _ in range(batches):
            conn.execute("SELECT count(*) FROM sluice_enqueue_many(%s::jsonb)", (json.dumps(items),))
            conn.commit()

    def http_one():
        for n in range(one):
            http.post("/v1/items", content=json.dumps(
                {"task_type": "bench", "work_unit_key": f"k{n % 100}", "payload": {"text": "x" * 100}}))

    def http_many():
        for _ in range(batches):
            assert http.post("/v1/items/batch", content=body).status_code == 201

    def client_many():
        for _ in range(batches):
            client.enqueue_many(items)

    def client_one():
        for n in range(one):
            client.enqueue(new_item("bench", f"k{n % 100}", {"text": "x" * 100}))

    out["sql_function_one_by_one"] = median_rate(sql_one, one)
    out["sql_function_batched_1000"] = median_rate(sql_many, batch * batches)
    out["http_one_by_one"] = median_rate(http_one, one)
    out["http_batched_1000"] = median_rate(http_many, batch * batches)
    out["python_client_one_by_one"] = median_rate(client_one, one)
    out["python_client_batched_1000"] = median_rate(client_many, batch * batches)
    return out


def start_ms_of(conn: psycopg.Connection, item_id: int) -> int | None:
    row = conn.execute(
        "SELECT (call->>'started_at_ms')::bigint FROM sluice_outputs"
        " WHERE %s = ANY(item_ids)", (item_id,)).fetchone()
    conn.commit()
    return row[0] if row else None


def latency(conn: psycopg.Connection, base: str, door: str, samples: int = 200) -> dict:
    """ms from the enqueue's commit (as the producer sees it return) to the
    call's start, one item at a time with the host idle in between."""
    client = Client(base, TOKEN)
    waits = []
    for n in range(samples):
        if door == "sql":
            item_id = conn.execute("SELECT sluice_enqueue('echo', %s, '{}')", (f"lat{n}",)).fetchone()[0]
            conn.commit()
        else:
            item_id = client.enqueue(new_item("echo", f"lat{n}", {}))["id"]
        enqueued_ms = time.time() * 1000
        deadline = time.monotonic() + 10
        while (start := start_ms_of(conn, item_id)) is None:
            assert time.monotonic() < deadline, "the item never ran"
            time.sleep(0.005)
        waits.append(start - enqueued_ms)
        time.sleep(0.05)
    waits.sort()
    return {"p50_ms": statistics.median(waits), "p99_ms": waits[int(len(waits) * 0.99) - 1]}


def main() -> None:
    schema = "sluice_bench_" + uuid.uuid4().hex[:8]
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            with psycopg.connect(POSTGRES, options=f"-c search_path={schema}") as conn:
                host = start_host(schema, tmp, port)
                try:
                    results["throughput_items_per_s"] = throughput(conn, base)
                finally:
                    host.terminate()
                    host.wait(30)
                conn.execute("TRUNCATE sluice_items, sluice_units, sluice_outputs")
                conn.commit()
                host = start_host(schema, tmp, port)
                try:
                    time.sleep(1)
                    results["enqueue_to_start_sql_function"] = latency(conn, base, "sql")
                    results["enqueue_to_start_http"] = latency(conn, base, "http")
                finally:
                    host.terminate()
                    host.wait(30)
    finally:
        with psycopg.connect(POSTGRES, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")
    json.dump(results, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
