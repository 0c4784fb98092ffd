"""``seesaw compare --tune --storage postgresql://...`` on a real PostgreSQL server, as several machines share a
study: two commands (one with local workers) on one study at once, then the same command and ``seesaw report`` on
the finished study; processes opening a new storage at once.

The server is a throwaway cluster made with ``initdb`` in a temporary folder, on a free loopback port, run as the
``postgres`` user when the test runs as root (PostgreSQL refuses root), and stopped and removed at the end: the
machine's own clusters are left as they were.
"""


import pytest

pytest.importorskip("psycopg", reason="the PostgreSQL driver needs the extra: pip install 'seesaw-losses[postgres]'")
pytest.importorskip("optuna", reason="tuning needs the cli extra: pip install 'seesaw-losses[cli]'")

from postgres_cluster import postgres_binaries, throwaway_cluster  # noqa: E402
from study_jobs import two_commands_and_workers_train_every_job_once  # noqa: E402

DATABASE, EMPTY_DATABASE = "studies", "untouched"  #: the second: a database no other test opens


@pytest.fixture(scope="module")
def postgres_url():
    """A ``postgresql://`` URL to an empty database on a cluster of its own, stopped and removed afterwards."""
    if postgres_binaries() is None:
        pytest.skip("PostgreSQL's binaries (initdb, pg_ctl, psql) are not installed: apt-get install postgresql")
    with throwaway_cluster(DATABASE, EMPTY_DATABASE) as urls:
        yield urls[DATABASE]


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
