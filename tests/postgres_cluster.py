"""A throwaway PostgreSQL cluster for tests and benchmarks: made with ``initdb`` in a temporary folder, on a free
loopback port, run as the ``postgres`` user when the caller is root (PostgreSQL refuses root), and stopped and
removed at the end: the machine's own clusters are left as they were."""

import os
import shutil
import socket
import subprocess
import tempfile
from contextlib import contextmanager
from pathlib import Path
from typing import Dict, Iterator, Optional

USER, PASSWORD = "seesaw", "seesaw-pw"
BINARIES = ("initdb", "pg_ctl", "psql")


def postgres_binaries() -> Optional[Path]:
    """The folder holding initdb, pg_ctl and psql: that of ``pg_ctl`` on PATH, else Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first); None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    folders = [Path(on_path).resolve().parent] if on_path else []
    folders += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((f for f in folders if all((f / name).exists() for name in BINARIES)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def throwaway_cluster(*databases: str, max_connections: int = 100) -> Iterator[Dict[str, str]]:
    """A running cluster with an empty database per name: ``{name: postgresql:// URL}``."""
    binaries = postgres_binaries()
    as_postgres = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
    root = Path(tempfile.mkdtemp(prefix="seesaw-postgres-"))
    if as_postgres:
        shutil.chown(root, "postgres")
    data, port = root / "data", _free_port()

    def run(name, *argv):
        subprocess.run([*as_postgres, str(binaries / name), *argv], check=True, capture_output=True, text=True,
                       timeout=120)

    try:
        run("initdb", "-D", str(data), "-U", "postgres", "--auth-local=trust", "--auth-host=scram-sha-256",
            "--no-sync")
        # -w: pg_ctl returns once the server accepts connections
        run("pg_ctl", "-D", str(data), "-l", str(root / "server.log"), "-w", "-o",
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off -c max_connections={max_connections}",
            "start")
        run("psql", "-h", str(root), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
            "-c", f"CREATE USER {USER} PASSWORD '{PASSWORD}'",
            *[a for name in databases for a in ("-c", f"CREATE DATABASE {name} OWNER {USER}")])
        yield {name: f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{name}" for name in databases}
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root)
