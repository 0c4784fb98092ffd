"""The comparison's jobs in a SQLite study, with real ``seesaw compare`` processes: every tuning trial and final
run trained once across processes and workers, the report from the study, a killed worker's run retried once,
settings that differ from the study's refused."""

import collections

import pytest

pytest.importorskip("optuna", reason="the study needs the cli extra: pip install 'seesaw-losses[cli]'")

from study_jobs import calls, every_job_once, finish, start, two_commands_and_workers_train_every_job_once  # noqa: E402


def test_two_commands_and_workers_on_one_sqlite_study_train_every_job_once(tmp_path):
    # How the jobs fall between the processes is up to the scheduler; that each is trained once is not.
    two_commands_and_workers_train_every_job_once(f"sqlite:///{tmp_path / 'shared.db'}", tmp_path / "artifacts",
                                                  tmp_path)


def test_a_worker_killed_during_a_final_run_has_that_run_retried_once_and_nothing_else(tmp_path):
    log, url = tmp_path / "calls.log", f"sqlite:///{tmp_path / 'study.db'}"
    finish(start(tmp_path / "a", url, tmp_path / "artifacts", log, "--workers", "2",
                 SEESAW_TEST_KILL="final,tversky,1"))
    counted, _ = calls(log)
    assert counted == every_job_once() + collections.Counter({("final", "tversky", 1): 1})
    assert (tmp_path / "a" / "report.md").exists()


def test_a_study_made_with_other_settings_is_refused_in_one_line(tmp_path):
    log, url = tmp_path / "calls.log", f"sqlite:///{tmp_path / 'study.db'}"
    finish(start(tmp_path / "a", url, tmp_path / "artifacts", log, "--seed", "5"))
    before = calls(log)[0]
    for argv, message in ((["--tune", "4"], "made with --tune 3, not --tune 4"),
                          (["--seed", "6"], "made with --seed 5, not --seed 6"),
                          (["--seeds", "3", "--seed", "5"], "made with --seeds 2, not --seeds 3"),
                          (["--direction", "minimize", "--seed", "5"], "made with --direction maximize")):
        process = start(tmp_path / "b", url, tmp_path / "artifacts", log, *argv)
        out, err = process.communicate(timeout=120)
        assert process.returncode == 2 and message in err and len(err.strip().splitlines()) == 1, err
    assert calls(log)[0] == before  # nothing trained
