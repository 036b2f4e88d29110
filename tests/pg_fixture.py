"""A throwaway PostgreSQL cluster for tests and benchmarks, and the pytest fixtures built on it.

``TempPostgres`` needs no pytest (benchmarks/store_bench.py uses it). As a pytest plugin
(``pytest_plugins = ["tests.pg_fixture"]``) it provides ``postgres_url`` (session scope: the
server; ``TEST_POSTGRES_URL`` if set, else a local cluster from the installed binaries) and
``postgres_database_url`` (a fresh database per test, dropped afterwards).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import glob
import os
import shutil
import socket
import subprocess
import tempfile
import uuid
from collections.abc import Coroutine, Iterator
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

try:
    import pytest
except ImportError:  # imported by the benchmark without pytest installed
    pytest = None  # type: ignore[assignment]

T = TypeVar("T")


def find_postgres_bin() -> str | None:
    """The directory holding initdb and pg_ctl, or None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    if on_path and shutil.which("initdb"):
        return os.path.dirname(on_path)
    candidates = sorted(
        glob.glob("/usr/lib/postgresql/*/bin"),
        key=lambda p: int(p.split("/")[-2]) if p.split("/")[-2].isdigit() else 0,
        reverse=True,
    )
    candidates += glob.glob("/usr/local/pgsql/bin") + glob.glob("/opt/homebrew/opt/postgresql*/bin")
    for directory in candidates:
        if os.path.exists(os.path.join(directory, "initdb")) and os.path.exists(
            os.path.join(directory, "pg_ctl")
        ):
            return directory
    return None


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class TempPostgres:
    """initdb + pg_ctl start in a temp dir on 127.0.0.1 and a free port; ``stop()`` removes it.

    PostgreSQL refuses to run as root, so as root the binaries run as the ``postgres`` user
    (``runuser``) and the directory is handed to that user. Durability settings are off: the
    cluster is thrown away.
    """

    def __init__(self, bin_dir: str | None = None) -> None:
        found = bin_dir or find_postgres_bin()
        if found is None:
            raise FileNotFoundError("PostgreSQL server binaries (initdb, pg_ctl) not found")
        self.bin_dir = found
        self.dir = ""
        self.port = 0
        self.url = ""

    def _run(self, *args: str) -> None:
        prefix: list[str] = []
        if os.geteuid() == 0:
            prefix = ["runuser", "-u", "postgres", "--"]
        subprocess.run(
            [*prefix, *args], check=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
        )

    def start(self) -> str:
        self.dir = tempfile.mkdtemp(prefix="opencode-pg-")
        if os.geteuid() == 0:
            shutil.chown(self.dir, "postgres", "postgres")
        data = os.path.join(self.dir, "data")
        self._run(
            os.path.join(self.bin_dir, "initdb"),
            "-D", data, "-U", "postgres", "-A", "trust", "-E", "UTF8", "--no-sync",
        )  # fmt: skip
        self.port = _free_port()
        self.resume()
        self.url = f"postgresql://postgres@127.0.0.1:{self.port}/postgres"
        return self.url

    def pause(self) -> None:
        """Stop the server (fast shutdown: clients are disconnected), keeping its data."""
        self._run(
            os.path.join(self.bin_dir, "pg_ctl"),
            "-D", os.path.join(self.dir, "data"), "-m", "fast", "-w", "stop",
        )  # fmt: skip

    def resume(self) -> None:
        """Start the paused server again on the same port and data."""
        options = (
            f"-p {self.port} -k {self.dir} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run(
            os.path.join(self.bin_dir, "pg_ctl"),
            "-D", os.path.join(self.dir, "data"), "-o", options,
            "-l", os.path.join(self.dir, "server.log"), "-w", "start",
        )  # fmt: skip

    def stop(self) -> None:
        if not self.dir:
            return
        with contextlib.suppress(subprocess.CalledProcessError):
            self._run(
                os.path.join(self.bin_dir, "pg_ctl"),
                "-D", os.path.join(self.dir, "data"), "-m", "immediate", "-w", "stop",
            )  # fmt: skip
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir = ""


def _in_thread(coro: Coroutine[Any, Any, T]) -> T:
    with concurrent.futures.ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def database_url(server_url: str, name: str) -> str:
    """The server URL pointing at database ``name``."""
    return urlunsplit(urlsplit(server_url)._replace(path=f"/{name}"))


async def create_database(server_url: str) -> str:
    """Create an empty database with a unique name; its URL."""
    import asyncpg

    name = f"t_{uuid.uuid4().hex[:16]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return database_url(server_url, name)


async def drop_database(server_url: str, url: str) -> None:
    import asyncpg

    name = urlsplit(url).path.lstrip("/")
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


if pytest is not None:

    @pytest.fixture(scope="session")
    def postgres_url() -> Iterator[str]:
        """A PostgreSQL server URL for the whole test session (skips when there is none)."""
        env = os.environ.get("TEST_POSTGRES_URL")
        if env:
            yield env
            return
        if find_postgres_bin() is None:
            pytest.skip(
                "no PostgreSQL: set TEST_POSTGRES_URL or install the server binaries "
                "(initdb, pg_ctl)"
            )
        server = TempPostgres()
        try:
            url = server.start()
        except (OSError, subprocess.CalledProcessError) as exc:
            server.stop()
            output = getattr(exc, "stdout", b"") or b""
            pytest.skip(f"could not start PostgreSQL: {exc} {output.decode(errors='replace')}")
        try:
            yield url
        finally:
            server.stop()

    @pytest.fixture
    def postgres_database_url(postgres_url: str) -> Iterator[str]:
        """A fresh, empty database for one test, dropped afterwards.

        Synchronous (the driver runs on a helper thread's own loop), so async fixtures can
        request it with ``request.getfixturevalue`` while the test's loop is running.
        """
        url = _in_thread(create_database(postgres_url))
        try:
            yield url
        finally:
            _in_thread(drop_database(postgres_url, url))
