"""``python -m seesaw_losses.bench``: the same as ``seesaw bench``."""

import sys

from ..cli.bench import main

if __name__ == "__main__":
    sys.exit(main())
