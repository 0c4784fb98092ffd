"""Scores of held-out outputs: pooled and per-image segmentation metrics, topology, classification metrics.
Every built-in trainer scores through here; nothing here reads files or trains."""
