"""``python -m seesaw_losses.bench``: the same as ``seesaw bench``."""

import sys

from .command import main

if __name__ == "__main__":
    sys.exit(main())
