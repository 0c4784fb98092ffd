"""``seesaw compare --tune --storage postgresql://...`` on a real PostgreSQL server, as several machines share a
study: two commands (one with local workers) on one study at once, then the same command and ``seesaw report`` on
the finished study; processes opening a new storage at once.

The server is a throwaway cluster made with ``initdb`` in a temporary folder, on a free loopback port, run as the
``postgres`` user when the test runs as root (PostgreSQL refuses root), and stopped and removed at the end: the
machine's own clusters are left as they were.
"""

import os
import shutil
import socket
import subprocess
import tempfile
from pathlib import Path

import pytest

pytest.importorskip("psycopg", reason="the PostgreSQL driver needs the extra: pip install 'seesaw-losses[postgres]'")
pytest.importorskip("optuna", reason="tuning needs the cli extra: pip install 'seesaw-losses[cli]'")

from study_jobs import two_commands_and_workers_train_every_job_once  # noqa: E402

USER, PASSWORD, DATABASE = "seesaw", "seesaw-pw", "studies"
EMPTY_DATABASE = "untouched"  #: a second database no other test opens: its tables do not exist yet
BINARIES = ("initdb", "pg_ctl", "psql")


def _binaries():
    """The folder holding initdb, pg_ctl and psql: that of ``pg_ctl`` on PATH, else Debian's
    ``/usr/lib/postgresql/<version>/bin`` (newest first); None when PostgreSQL is not installed."""
    on_path = shutil.which("pg_ctl")
    folders_ = [Path(on_path).resolve().parent] if on_path else []
    folders_ += sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)
    return next((f for f in folders_ if all((f / name).exists() for name in BINARIES)), None)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def postgres_url():
    """A ``postgresql://`` URL to an empty database on a cluster of its own, stopped and removed afterwards."""
    binaries = _binaries()
    if binaries is None:
        pytest.skip("PostgreSQL's binaries (initdb, pg_ctl, psql) are not installed: apt-get install postgresql")
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
            f"-c listen_addresses=127.0.0.1 -p {port} -k {root} -c fsync=off", "start")
        run("psql", "-h", str(root), "-p", str(port), "-U", "postgres", "-v", "ON_ERROR_STOP=1",
            "-c", f"CREATE USER {USER} PASSWORD '{PASSWORD}'", "-c", f"CREATE DATABASE {DATABASE} OWNER {USER}",
            "-c", f"CREATE DATABASE {EMPTY_DATABASE} OWNER {USER}")
        yield f"postgresql://{USER}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    finally:
        if (data / "postmaster.pid").exists():
            run("pg_ctl", "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root)


@pytest.mark.slow  # a minute; test_study_jobs runs the same on SQLite in the default suite
def test_two_commands_and_workers_on_one_postgres_study_train_every_job_once(postgres_url, tmp_path):
    # How the jobs fall between the processes is up to the scheduler; that each is trained once is not.
    two_commands_and_workers_train_every_job_once(postgres_url, tmp_path / "artifacts", tmp_path)


def _open_storage_after(barrier, url, results):
    from seesaw_losses.experiments.tuning import open_storage

    barrier.wait()  # every process starts creating the tables of the empty database at the same moment
    try:
        open_storage(url)
        results.put("ok")
    except Exception as error:  # reported to the parent, which names it
        results.put(f"{type(error).__name__}: {error}")


def open_at_once(url, processes=4):
    """What each of ``processes`` processes got from opening the new storage ``url`` at once."""
    import multiprocessing

    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    workers = [context.Process(target=_open_storage_after, args=(barrier, url, results)) for _ in range(processes)]
    for worker in workers:
        worker.start()
    outcomes = [results.get(timeout=120) for _ in workers]
    for worker in workers:
        worker.join()
    return outcomes


def test_processes_opening_a_new_postgres_storage_at_once_all_succeed(postgres_url):
    assert open_at_once(postgres_url.replace(f"/{DATABASE}", f"/{EMPTY_DATABASE}")) == ["ok"] * 4


def test_processes_opening_a_new_sqlite_storage_at_once_all_succeed(tmp_path):
    assert open_at_once(f"sqlite:///{tmp_path / 'study.db'}") == ["ok"] * 4
