"""Adapters to training frameworks, at the edge of the library: each imports the core, never the other way round.

- :mod:`seesaw_losses.integrations.mmdet`: MMDetection's box-head ``SeesawLoss`` protocol, and every loss of the
  library in an mmengine registry (scope ``seesaw_losses``). Needs ``mmengine``.

Hydra needs no adapter: every module builds from keyword arguments alone, e.g. ``_target_:
seesaw_losses.SeesawLoss`` with ``num_classes: 19``.
"""
