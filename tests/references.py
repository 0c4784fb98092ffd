"""Independent float64 reference formulas, written plainly (no chunking, no kernels), used as test oracles."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def seesaw_reference(logits, target, counts, p, q, eps, ignore_index=-100, weight=None, reduction="mean"):
    """Seesaw loss from the paper's formula with an explicit C x C ratio matrix, float64, per row.

    ``logits`` ``(N, C)``; dense inputs are moved to ``(N*, C)`` by the caller.
    """
    z = logits.double()
    n = counts.double().clamp(min=1)
    valid = target != ignore_index
    t = torch.where(valid, target, torch.zeros_like(target))
    ratio = n[None, :] / n[:, None]                           # ratio[i, j] = n_j / n_i
    mitigation = torch.where(ratio < 1, ratio.pow(p), torch.ones_like(ratio))[t]
    s = torch.softmax(z.detach(), dim=1)
    s_true = s.gather(1, t[:, None]).clamp(min=eps)
    score_ratio = s / s_true
    compensation = torch.where(score_ratio > 1, score_ratio.pow(q), torch.ones_like(score_ratio))
    factor = mitigation * compensation
    onehot = F.one_hot(t, z.shape[1]).bool()
    denominator = torch.where(onehot, z.exp(), factor * z.exp()).sum(1)
    loss = -(z.gather(1, t[:, None]).squeeze(1).exp() / denominator).log()
    w = torch.ones_like(loss) if weight is None else weight.double()[t]
    return weighted_reduce(loss, w, valid, reduction)


def weighted_reduce(loss, w, valid, reduction):
    """Per-row losses times their class weights ``w`` and ``valid`` (0/1), reduced as ``cross_entropy`` does:
    ``"mean"`` divides by the summed weights of the valid rows."""
    loss = loss * w * valid
    if reduction == "none":
        return loss
    if reduction == "sum":
        return loss.sum()
    return loss.sum() / (w * valid).sum()


def dense_to_rows(logits, target):
    """``(N, C, *)`` logits and ``(N, *)`` targets as ``(N*, C)`` rows and ``(N*,)`` targets."""
    c = logits.shape[1]
    return logits.movedim(1, -1).reshape(-1, c), target.reshape(-1)


def mmdet_seesaw_ce(cls_score, labels, label_weights, cum_samples, p, q, eps, reduction, avg_factor):
    """MMDetection 3.x ``seesaw_ce_loss`` math, written plainly from its published formula."""
    num_classes = cls_score.shape[-1]
    onehot = F.one_hot(labels, num_classes)
    seesaw_weights = cls_score.new_ones(onehot.size())
    if p > 0:
        ratio = cum_samples[None, :].clamp(min=1) / cum_samples[:, None].clamp(min=1)
        index = (ratio < 1.0).float()
        seesaw_weights = seesaw_weights * (ratio.pow(p) * index + (1 - index))[labels.long(), :]
    if q > 0:
        scores = F.softmax(cls_score.detach(), dim=1)
        self_scores = scores[torch.arange(len(scores)), labels.long()]
        score_matrix = scores / self_scores[:, None].clamp(min=eps)
        index = (score_matrix > 1.0).float()
        seesaw_weights = seesaw_weights * (score_matrix.pow(q) * index + (1 - index))
    cls_score = cls_score + seesaw_weights.log() * (1 - onehot)
    loss = F.cross_entropy(cls_score, labels, reduction="none")
    return mmdet_weight_reduce(loss, label_weights, reduction, avg_factor)


def mmdet_weight_reduce(loss, weight, reduction, avg_factor):
    if weight is not None:
        loss = loss * weight
    if avg_factor is None:
        return {"none": loss, "mean": loss.mean(), "sum": loss.sum()}[reduction]
    if reduction == "mean":
        return loss.sum() / (avg_factor + torch.finfo(torch.float32).eps)
    return loss


class MMDetSeesawReference:
    """MMDetection 3.x ``SeesawLoss`` with objectness (float32 ``cum_samples`` of ``C + 1``), as a plain oracle."""

    def __init__(self, num_classes, p=0.8, q=2.0, eps=1e-2, loss_weight=1.0):
        self.num_classes, self.p, self.q, self.eps, self.loss_weight = num_classes, p, q, eps, loss_weight
        self.cum_samples = torch.zeros(num_classes + 1, dtype=torch.float)

    def __call__(self, cls_score, labels, label_weights=None, avg_factor=None, reduction="mean"):
        c = self.num_classes
        pos = labels < c
        obj_labels = (labels == c).long()
        for u in labels.unique():
            self.cum_samples[u] += (labels == u.item()).sum()
        if label_weights is None:
            label_weights = labels.new_ones(labels.size(), dtype=torch.float)
        classes, objectness = cls_score[..., :-2], cls_score[..., -2:]
        if pos.sum() > 0:
            loss_classes = self.loss_weight * mmdet_seesaw_ce(
                classes[pos], labels[pos], label_weights[pos], self.cum_samples[:c], self.p, self.q, self.eps,
                reduction, avg_factor)
        else:
            loss_classes = classes[pos].sum()
        loss_objectness = self.loss_weight * mmdet_weight_reduce(
            F.cross_entropy(objectness, obj_labels, reduction="none"), label_weights, reduction, avg_factor)
        return {"loss_cls_objectness": loss_objectness, "loss_cls_classes": loss_classes}

    def activation(self, cls_score):
        classes, objectness = cls_score[..., :-2], cls_score[..., -2:]
        score_objectness = F.softmax(objectness, dim=-1)
        return torch.cat([F.softmax(classes, dim=-1) * score_objectness[..., [0]], score_objectness[..., [1]]], -1)

    def accuracy(self, cls_score, labels):
        def acc(pred, target):
            if pred.shape[0] == 0:
                return pred.new_tensor(0.0)
            return (pred.argmax(1) == target).float().sum(0, keepdim=True) * (100.0 / pred.shape[0])

        pos = labels < self.num_classes
        return {"acc_objectness": acc(cls_score[:, -2:], (labels == self.num_classes).long()),
                "acc_classes": acc(cls_score[:, :-2][pos], labels[pos])}


def binary_seesaw_paper_reference(x, t, counts, p, q, eps):
    """Two-class Seesaw on logits ``[0, x]`` through :func:`seesaw_reference` (per element, float64)."""
    z = torch.stack([torch.zeros_like(x.double()), x.double()], dim=-1).reshape(-1, 2)
    return seesaw_reference(z, t.reshape(-1).long(), counts, p, q, eps, reduction="none").view(x.shape)


def binary_seesaw_original(logits, targets, p=0.8, q=2.0, temperature=3.0):
    """The original Binary Seesaw formulation (two logits, per-batch counts), from its formula.

    Valid only where its plain exponentials do not overflow (moderate logits).
    """
    delta = 1e-6
    logits = logits * temperature
    onehot = F.one_hot(targets.long(), 2).movedim(-1, 1).to(logits.dtype)
    e = torch.exp(logits)
    probs = e / (e.sum(1, keepdim=True))
    p_v, p_b = probs[:, 1], probs[:, 0]
    n_v = (targets == 1).sum().to(logits.dtype) + delta
    n_b = (targets == 0).sum().to(logits.dtype) + delta
    m_vb = torch.clamp((n_b / n_v) ** p, max=1.0)
    m_bv = torch.clamp(torch.clamp((n_v / n_b) ** p, max=1.0), min=0.1)
    c_vb = torch.clamp(torch.clamp((p_b / p_v) ** q, min=1.0), max=5.0)
    c_bv = torch.clamp(torch.clamp((p_v / p_b) ** q, min=1.0), max=5.0)
    loss = (-onehot[:, 1] * torch.log(p_v + delta) * m_vb * c_vb
            - onehot[:, 0] * torch.log(p_b + delta) * m_bv * c_bv)
    return loss.mean()


def sigmoid_focal_per_class_reference(logits, target, alpha, gamma, reduction="mean"):
    """Sigmoid focal loss with one ``alpha`` per class of dimension 1, element by element in float64:
    ``-alpha[c] (1 - p)^gamma log p`` for a positive of class ``c``, ``-(1 - alpha[c]) p^gamma log(1 - p)`` for a
    negative (soft targets mix the two linearly), ``p = 1 / (1 + exp(-x))``."""
    x, t = logits.double(), target.double()
    a = torch.as_tensor(alpha, dtype=torch.float64).view((1, -1) + (1,) * (x.dim() - 2))
    p = 1 / (1 + torch.exp(-x))
    log_p, log_q = -torch.log1p(torch.exp(-x)), -torch.log1p(torch.exp(x))    # log p, log(1 - p)
    bce = -(t * log_p + (1 - t) * log_q)
    p_t = p * t + (1 - p) * (1 - t)
    loss = (a * t + (1 - a) * (1 - t)) * (1 - p_t) ** gamma * bce
    if reduction == "none":
        return loss
    return loss.sum() if reduction == "sum" else loss.mean()
