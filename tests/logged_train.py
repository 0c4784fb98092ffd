"""A ``train(criterion, run)`` for ``seesaw compare --train`` that trains nothing and appends one line per call to
the file named by ``SEESAW_TEST_LOG``: ``[kind, loss, trial number or seed, pid]`` (kind ``tuning`` or ``final``),
so that tests count the calls of every process of a comparison. With ``SEESAW_TEST_KILL=final,LOSS,SEED`` the
first such call (a marker file beside the log says which was first) kills its own process with SIGKILL after
logging, as a machine that dies during a run."""

import json
import math
import os
import signal
from pathlib import Path


def train(criterion, run):
    loss = run.loss.split(":")[0]
    kind, key = ("tuning", run.trial.number) if run.tuning else ("final", run.seed)
    line = json.dumps([kind, loss, key, os.getpid()]) + "\n"
    log = os.environ["SEESAW_TEST_LOG"]
    descriptor = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(descriptor, line.encode())  # one write to a file opened for appending: lines never interleave
    finally:
        os.close(descriptor)
    if os.environ.get("SEESAW_TEST_KILL") == f"{kind},{loss},{key}":
        try:
            Path(log + ".killed").touch(exist_ok=False)
        except FileExistsError:
            pass
        else:
            os.kill(os.getpid(), signal.SIGKILL)
    spread = sum(float(value) for value in run.hyperparameters.values())
    return {"score": 0.5 + 0.1 * math.sin(spread + 3 * run.seed + len(loss))}
