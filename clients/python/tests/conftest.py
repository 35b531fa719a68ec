"""A real host for the client's tests: `sluice run` (SLUICE_BIN) with the
test plugin (SLUICE_TEST_PLUGIN) on a fresh schema of the local Postgres
(SLUICE_TEST_POSTGRES), its API on a free port with one token per scope."""

from __future__ import annotations

import os
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path
from typing import Iterator

import httpx
import psycopg
import pytest

POSTGRES = os.environ.get("SLUICE_TEST_POSTGRES", "postgres://postgres@127.0.0.1:5432/test")
TOKENS = {"enqueue": "py-producer", "read": "py-reader", "admin": "py-ops"}


class Host:
    def __init__(self, url: str, schema: str, database_url: str) -> None:
        self.url = url
        self.schema = schema
        self.database_url = database_url

    def connect(self) -> psycopg.Connection:
        return psycopg.connect(POSTGRES, options=f"-c search_path={self.schema}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def host() -> Iterator[Host]:
    binary = os.environ["SLUICE_BIN"]
    plugin = Path(os.environ["SLUICE_TEST_PLUGIN"])
    schema = "sluice_py_" + uuid.uuid4().hex[:12]
    with psycopg.connect(POSTGRES, autocommit=True) as admin:
        admin.execute(f"CREATE SCHEMA {schema}")
    database_url = f"{POSTGRES}?options=-c%20search_path%3D{schema}"
    port = _free_port()
    with tempfile.TemporaryDirectory() as tmp:
        plugins = Path(tmp, "plugins")
        plugins.mkdir()
        (plugins / "adversary.wasm").write_bytes(plugin.read_bytes())
        tokens = "".join(
            f'[api.tokens.{scope}]\nscope = "{scope}"\ntoken_env = "PY_TOKEN_{scope.upper()}"\n'
            for scope in TOKENS
        )
        Path(tmp, "sluice.toml").write_text(
            f'database_url = "{database_url}"\nlisten = "127.0.0.1:{port}"\n'
            f'poll_interval = "200ms"\n[defaults]\nmax_attempts = 1\n{tokens}'
        )
        env = dict(os.environ, SLUICE_LOG="warn")
        env.update({f"PY_TOKEN_{scope.upper()}": token for scope, token in TOKENS.items()})
        log = open(Path(tmp, "host.log"), "w")
        process = subprocess.Popen([binary, "run"], cwd=tmp, env=env, stdout=log, stderr=log)
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                if httpx.get(f"{url}/readyz").status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError("sluice run did not start: " + Path(tmp, "host.log").read_text())
            time.sleep(0.05)
        try:
            yield Host(url, schema, database_url)
        finally:
            process.terminate()
            process.wait(30)
            log.close()
            with psycopg.connect(POSTGRES, autocommit=True) as admin:
                admin.execute(f"DROP SCHEMA {schema} CASCADE")
