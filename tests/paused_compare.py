"""``seesaw compare`` whose tuning trial number ``PAUSE_AT_TRIAL`` (1-based) stops before training: it writes
``paused`` on standard error and waits until the process is killed. A test reads that line (an event, not a
clock) and kills the run at a known point: every trial before it complete, that one running, none after it.

Usage: ``python paused_compare.py PAUSE_AT_TRIAL compare ARGS...``
"""

import sys
import threading

from seesaw_losses.cli import main
from seesaw_losses.experiments import train


def pause_at(trial: int) -> None:
    original = train.train_segmentation
    calls = {"tuning": 0}

    def paused(*args, test: bool = True, **kwargs):
        if not test:
            calls["tuning"] += 1
            if calls["tuning"] == trial:
                print("paused", file=sys.stderr, flush=True)
                threading.Event().wait()  # until the test kills this process
        return original(*args, test=test, **kwargs)

    train.train_segmentation = paused


if __name__ == "__main__":
    pause_at(int(sys.argv[1]))
    sys.exit(main(sys.argv[2:]))
