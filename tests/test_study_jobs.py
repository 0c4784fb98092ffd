"""The comparison's jobs in a SQLite study, with real ``seesaw compare`` processes: every tuning trial and final
run trained once across processes and workers, the report from the study, a killed worker's run retried once,
settings that differ from the study's refused."""

import collections
import multiprocessing
import os
import signal
import threading

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


def _claim_and_train_forever(plan, claimed):
    from seesaw_losses.experiments import jobs

    class Blocked:
        def final_run(self, loss, hyperparameters, seed, device):
            claimed.set()
            threading.Event().wait()

    comparison = jobs.Comparison(plan)
    comparison.run(comparison.claim(), Blocked(), "cpu")


def _fail_the_dead_job_and_retry_when_told(plan, failed, go, claimed_numbers):
    import optuna

    from seesaw_losses.experiments import jobs

    retry = optuna.storages.RetryHeartbeatStaleTrialCallback.__call__

    def between_failing_and_retrying(callback, study, trial):
        failed.set()
        go.wait()
        retry(callback, study, trial)

    optuna.storages.RetryHeartbeatStaleTrialCallback.__call__ = between_failing_and_retrying
    job = jobs.Comparison(plan).claim()
    claimed_numbers.put(None if job is None else job.number)


def test_a_process_that_looks_while_another_fails_a_dead_job_waits_for_its_retry(tmp_path):
    # A killed worker's job is failed by one process and enqueued again by it right after; a process that looks
    # in between must not take the job for lost (it used to stop with "1 job(s) failed").
    from optuna.trial import TrialState

    from seesaw_losses.experiments import jobs
    from seesaw_losses.experiments.tuning import StudyPlan

    plan = StudyPlan(f"sqlite:///{tmp_path / 'study.db'}", 0, losses=("ce",), seeds=(0,),
                     artifacts=str(tmp_path / "artifacts"))
    jobs.Comparison(plan).open()
    context = multiprocessing.get_context("fork")
    claimed, failed, go, numbers = context.Event(), context.Event(), context.Event(), context.Queue()
    victim = context.Process(target=_claim_and_train_forever, args=(plan, claimed))
    victim.start()
    claimed.wait()
    os.kill(victim.pid, signal.SIGKILL)
    victim.join()
    failer = context.Process(target=_fail_the_dead_job_and_retry_when_told, args=(plan, failed, go, numbers))
    failer.start()
    failed.wait()
    looking = jobs.Comparison(plan)
    waiting = looking._running()
    go.set()
    retried = numbers.get(timeout=120)
    failer.join()
    assert waiting
    study = looking._study(plan.finals_name("ce"))
    states = [(t.number, t.state, t.system_attrs.get("retry_history")) for t in study.get_trials(deepcopy=False)]
    assert states == [(0, TrialState.FAIL, None), (1, TrialState.RUNNING, [0])] and retried == 1


def test_a_killed_process_its_parent_has_not_waited_for_counts_as_dead():
    # Its job must be failed and retried at once, not after the heartbeat's grace period (or never, for the
    # final runs it was enqueueing).
    from seesaw_losses.experiments.tuning import _alive

    context = multiprocessing.get_context("fork")
    child = context.Process(target=threading.Event().wait)
    child.start()
    assert _alive(child.pid)
    os.kill(child.pid, signal.SIGKILL)
    os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT)  # dead, not yet reaped
    try:
        assert not _alive(child.pid)
    finally:
        child.join()
