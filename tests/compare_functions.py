"""Training functions for ``compare`` tests, at the top level of an importable module so that worker processes
and the ``seesaw compare --train`` command can import them."""

import hashlib

import torch


def scripted_score(loss: str, seed: int, tuning: bool) -> float:
    """A number fixed by the call (a hash, no randomness shared between calls): what ``seeded_scores`` returns."""
    digest = hashlib.sha256(f"{loss}|{seed}|{tuning}".encode()).digest()
    return int.from_bytes(digest[:4], "big") / 2**32


def seeded_scores(criterion, run):
    """No training: a score fixed by the call, reported over three steps."""
    value = scripted_score(run.loss, run.seed, run.tuning)
    for step in range(3):
        run.report(step, value)
    return {"score": value, "loss_name": float(len(run.loss))}


def linear_model(criterion, run):
    """A logistic regression on 300 generated 2-d points (10 % positives), trained with ``criterion`` for 20
    epochs; validation (tuning) or held-out accuracy and F1 of the positive class."""
    generator = torch.Generator().manual_seed(1234)  # the same data for every call
    x = torch.randn(900, 2, generator=generator)
    y = ((x[:, 0] + 0.5 * x[:, 1]) > 1.3).float()
    splits = {"train": slice(0, 300), "validation": slice(300, 600), "test": slice(600, 900)}
    torch.manual_seed(run.seed)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    train = splits["train"]
    run.history["train_loss"] = []
    for epoch in range(20):
        optimizer.zero_grad()
        loss = criterion(model(x[train]), y[train].unsqueeze(1))
        loss.backward()
        optimizer.step()
        run.history["train_loss"].append(loss.item())
        evaluated = splits["validation"]
        with torch.no_grad():
            run.report(epoch, ((model(x[evaluated])[:, 0] > 0).float() == y[evaluated]).float().mean())
    evaluated = splits["validation" if run.tuning else "test"]
    with torch.no_grad():
        predicted = (model(x[evaluated])[:, 0] > 0).float()
    truth = y[evaluated]
    true_positive = float((predicted * truth).sum())
    f1 = 2 * true_positive / max(1.0, float(predicted.sum() + truth.sum()))
    return {"f1": f1, "accuracy": float((predicted == truth).float().mean())}


def interrupted(criterion, run):
    """Ctrl-C while training."""
    raise KeyboardInterrupt
