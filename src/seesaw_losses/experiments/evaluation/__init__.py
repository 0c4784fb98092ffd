"""Scores of held-out outputs: pooled and per-image segmentation metrics, topology, classification metrics, and
their catalog (each metric's key, header and report table). Every built-in trainer scores through here; nothing
here reads files or trains."""
