"""``seesaw compare`` whose tuning trial number ``PAUSE_AT_TRIAL`` (1-based) stops before training: it writes
``paused`` on standard error and waits until the process is killed. A test reads that line (an event, not a
clock) and kills the run at a known point: every trial before it complete, that one running, none after it.

Usage: ``python paused_compare.py PAUSE_AT_TRIAL compare ARGS...``
"""

import sys
import threading

from seesaw_losses.cli import main
from seesaw_losses.experiments.trainers import SegmentationTrainer


def pause_at(trial: int) -> None:
    original = SegmentationTrainer.__call__
    calls = {"tuning": 0}

    def paused(self, criterion, run):
        if run.tuning:
            calls["tuning"] += 1
            if calls["tuning"] == trial:
                print("paused", file=sys.stderr, flush=True)
                threading.Event().wait()  # until the test kills this process
        return original(self, criterion, run)

    SegmentationTrainer.__call__ = paused


if __name__ == "__main__":
    pause_at(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
