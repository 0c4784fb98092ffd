"""Independent float64 formulas of the long-tail losses, written from the papers (and, for the asymmetric loss and
the normalised linear layer, from the formulas their reference implementations publish), as test oracles."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from references import weighted_reduce


def softmax_ce_rows(z, target, class_weight=None, ignore_index=-100, reduction="mean"):
    """-log softmax(z)[t] per row with cross_entropy's weighting; ``z`` already adjusted, float64."""
    valid = (target != ignore_index).double()
    t = torch.where(target != ignore_index, target, torch.zeros_like(target))
    log_p = z - torch.log(torch.exp(z - z.max(1, keepdim=True).values).sum(1, keepdim=True)) \
        - z.max(1, keepdim=True).values
    loss = -log_p.gather(1, t[:, None]).squeeze(1)
    w = torch.ones_like(loss) if class_weight is None else class_weight.double()[t]
    return weighted_reduce(loss, w, valid, reduction)


def logit_adjusted_reference(logits, target, counts, tau, **kw):
    """Menon et al. (2021), Eq. 10: softmax cross-entropy of ``z_y + tau log pi_y`` (``pi`` the label frequencies)."""
    n = counts.double()
    prior = n / n.sum()
    return softmax_ce_rows(logits.double() + tau * torch.log(prior), target, **kw)


def balanced_softmax_reference(logits, target, counts, **kw):
    """Ren et al. (2020), Eq. 4: ``phi_y = n_y exp(z_y) / sum_j n_j exp(z_j)``."""
    z = logits.double()
    n = counts.double()
    valid = (target != kw.get("ignore_index", -100))
    t = torch.where(valid, target, torch.zeros_like(target))
    phi = n[t] * z.gather(1, t[:, None]).squeeze(1).exp() / (n[None, :] * z.exp()).sum(1)
    loss = -phi.log()
    w = torch.ones_like(loss) if kw.get("class_weight") is None else kw["class_weight"].double()[t]
    return weighted_reduce(loss, w, valid.double(), kw.get("reduction", "mean"))


def ldam_reference(logits, target, counts, max_margin, scale, **kw):
    """Cao et al. (2019), Eq. 13: ``m_j = C / n_j^(1/4)`` with ``C`` making the largest ``max_margin``; the true
    class's logit minus its margin, all logits times ``s``, then cross-entropy."""
    n = counts.double()
    m = n.pow(-0.25)
    m = m * (max_margin / m.max())
    z = logits.double().clone()
    valid = target != kw.get("ignore_index", -100)
    t = torch.where(valid, target, torch.zeros_like(target))
    rows = torch.arange(len(t))
    z[rows, t] = z[rows, t] - m[t]
    return softmax_ce_rows(scale * z, target, **kw)


def asymmetric_reference(logits, target, gamma_pos, gamma_neg, clip, eps):
    """Ridnik et al. (2021) as their reference code computes it (also timm's ``AsymmetricLossMultiLabel``), per
    element and unreduced (their module returns the negative sum):

    ``p = sigmoid(x)``; ``p_neg = min(1 - p + clip, 1)`` (``clip > 0``, else ``1 - p``);
    ``L = y log(max(p, eps)) + (1 - y) log(max(p_neg, eps))``;
    if a gamma is positive: ``pt = p y + p_neg (1 - y)``, ``L *= (1 - pt)^(gamma_pos y + gamma_neg (1 - y))``;
    the loss is ``-L``.
    """
    x, y = logits.double(), target.double()
    p = torch.sigmoid(x)
    p_neg = 1 - p
    if clip is not None and clip > 0:
        p_neg = (p_neg + clip).clamp(max=1)
    loss = y * torch.log(p.clamp(min=eps)) + (1 - y) * torch.log(p_neg.clamp(min=eps))
    if gamma_neg > 0 or gamma_pos > 0:
        pt = p * y + p_neg * (1 - y)
        loss = loss * torch.pow(1 - pt, gamma_pos * y + gamma_neg * (1 - y))
    return -loss


def normed_linear_reference(x, weight, bias, temperature, power, eps):
    """MMDetection's ``NormedLinear.forward``: ``x / (||x||^power + eps)``, each weight row likewise, the linear
    map of the two, times ``temperature`` (the bias added after the scaling)."""
    x, weight = x.double(), weight.double()
    weight_ = weight / (weight.norm(dim=1, keepdim=True).pow(power) + eps)
    x_ = x / (x.norm(dim=1, keepdim=True).pow(power) + eps)
    out = x_ @ weight_.t() * temperature
    return out if bias is None else out + bias.double()


def repeat_factors_reference(labels, threshold):
    """Gupta et al. (2019), LVIS Sec. 4: ``r_c = max(1, sqrt(t / f_c))``, ``f_c`` the fraction of images with
    ``c``; an image's factor is the largest over its categories."""
    images = [set(label) if isinstance(label, (list, tuple, set)) else {label} for label in labels]
    frequency = {}
    for classes in images:
        for c in classes:
            frequency[c] = frequency.get(c, 0) + 1
    r = {c: max(1.0, math.sqrt(threshold / (k / len(images)))) for c, k in frequency.items()}
    return [max((r[c] for c in classes), default=1.0) for classes in images]


class EQLv2Reference:
    """Tan et al. (2021) as the authors' code runs it, float64, one process: before the first batch every weight is
    1; afterwards ``r_j = sigmoid(gamma (g_j - mu))`` with ``g_j = pos_j / (neg_j + 1e-10)`` for the negative
    terms, ``q_j = 1 + alpha (1 - r_j)`` for the positive ones, the background logit (if any) weighted 1; the loss
    is the weighted sigmoid cross-entropy of the one-hot target summed and divided by the number of samples; then
    ``|sigmoid(x) - y| * weight`` is added to ``pos``/``neg`` per class (background column excluded)."""

    def __init__(self, num_classes, gamma=12.0, mu=0.8, alpha=4.0, background_channel=False):
        self.c, self.gamma, self.mu, self.alpha, self.bg = num_classes, gamma, mu, alpha, background_channel
        self.pos, self.neg, self.started = None, None, False

    def __call__(self, logits, labels):
        x = logits.double()
        n, k = x.shape
        y = torch.zeros(n, self.c + 1, dtype=torch.float64)
        y[torch.arange(n), labels] = 1
        y = y[:, :k]
        if not self.started:
            pos_w = torch.ones(k, dtype=torch.float64)
            neg_w = torch.ones(k, dtype=torch.float64)
            self.pos = torch.zeros(self.c, dtype=torch.float64)
            self.neg = torch.zeros(self.c, dtype=torch.float64)
        else:
            ratio = self.pos / (self.neg + 1e-10)
            neg_w = 1 / (1 + torch.exp(-self.gamma * (ratio - self.mu)))
            pos_w = 1 + self.alpha * (1 - neg_w)
            if self.bg:
                neg_w, pos_w = torch.cat([neg_w, torch.ones(1, dtype=torch.float64)]), torch.cat(
                    [pos_w, torch.ones(1, dtype=torch.float64)])
        weight = pos_w * y + neg_w * (1 - y)
        p = torch.sigmoid(x)
        bce = -(y * torch.log(p) + (1 - y) * torch.log(1 - p))
        loss = (bce * weight).sum() / n
        grad = torch.abs(y * (p.detach() - 1) + (1 - y) * p.detach())
        self.pos = self.pos + (grad * y * weight).sum(0)[:self.c]
        self.neg = self.neg + (grad * (1 - y) * weight).sum(0)[:self.c]
        self.started = True
        return loss


class EqualizedFocalReference:
    """Li et al. (2022), Eqs. 4-6, as the authors' code runs it, float64, one process: ``g_j = clip(pos_j /
    (neg_j + 1e-10), 0, 1)`` (1 before the first batch), ``gamma_j = gamma_b + s (1 - g_j)``; the loss sums
    ``-alpha_t (gamma_j / gamma_b) (1 - p_t)^gamma_j log p_t`` over every logit of the non-ignored samples (times
    their weight) and divides by the normaliser (given, else the number of those samples); then the absolute
    gradient of that loss with respect to each logit, as the authors' backward hook receives it, is added to
    ``pos`` (the label's class) and ``neg`` (every other class)."""

    def __init__(self, num_classes, gamma=2.0, scale=8.0, alpha=0.25, ignore_index=-100):
        self.c, self.gamma, self.scale, self.alpha, self.ignore = num_classes, gamma, scale, alpha, ignore_index
        self.pos = torch.zeros(num_classes, dtype=torch.float64)
        self.neg = torch.zeros(num_classes, dtype=torch.float64)
        self.pos_neg = torch.ones(num_classes, dtype=torch.float64)

    def __call__(self, logits, labels, weight=None, normalizer=None):
        x = logits.double() if logits.requires_grad else logits.detach().double().requires_grad_()
        n = x.shape[0]
        keep = labels != self.ignore if self.ignore is not None else torch.ones_like(labels, dtype=torch.bool)
        y = torch.zeros(n, self.c + 1, dtype=torch.float64)
        y[torch.arange(n)[keep], labels[keep]] = 1
        y = y[:, :self.c]
        gamma_j = self.gamma + self.scale * (1 - self.pos_neg)
        p = torch.sigmoid(x)
        p_t = y * p + (1 - y) * (1 - p)
        alpha_t = 1.0 if self.alpha is None else self.alpha * y + (1 - self.alpha) * (1 - y)
        w = keep.double() * (1.0 if weight is None else weight.double())
        terms = -alpha_t * (gamma_j / self.gamma) * (1 - p_t) ** gamma_j * torch.log(p_t) * w[:, None]
        loss = terms.sum() / (keep.sum().clamp(min=1) if normalizer is None else normalizer)
        grad = torch.autograd.grad(loss, x, retain_graph=True)[0].abs()
        self.pos = self.pos + (grad * y).sum(0)
        self.neg = self.neg + (grad * (1 - y)).sum(0)
        self.pos_neg = torch.clamp(self.pos / (self.neg + 1e-10), 0, 1)
        return loss


def normed_conv2d_reference(x, weight, bias, temperature, power, eps, norm_over_kernel, padding=0):
    """MMDetection's ``NormedConv2d.forward``: each filter divided by (its norm over the input channels at each
    kernel position, or over all its weights with ``norm_over_kernel``)^power + eps, the input by its per-pixel
    channel norm^power + eps and times ``temperature``, then the convolution with the bias."""
    x, weight = x.double(), weight.double()
    if norm_over_kernel:
        norm = weight.reshape(weight.shape[0], -1).norm(dim=1)[:, None, None, None]
    else:
        norm = weight.norm(dim=1, keepdim=True)
    weight_ = weight / (norm.pow(power) + eps)
    x_ = x / (x.norm(dim=1, keepdim=True).pow(power) + eps) * temperature
    return F.conv2d(x_, weight_, None if bias is None else bias.double(), padding=padding)
