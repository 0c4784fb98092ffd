"""Tables, plots and the report folder of a :class:`~seesaw_losses.experiments.result.Comparison`. Reads only the
results and what the runs kept in ``run.artifacts``: never the data modules."""
