"""Built-in ``train(criterion, run)`` callables of :func:`~seesaw_losses.experiments.compare`: picklable
dataclasses that hold the data and the budget, and train a fresh model per call."""
