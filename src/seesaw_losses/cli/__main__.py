"""``python -m seesaw_losses.cli`` runs the ``seesaw`` command."""

import sys

from . import main

sys.exit(main())
