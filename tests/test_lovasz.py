import pytest
import torch

import seesaw_losses as sl
from seesaw_losses.functional import lovasz_hinge_loss, lovasz_softmax_loss
from seesaw_losses.functional._fused import plain_formula


def lovasz_grad_reference(gt_sorted):
    """The authors' lovasz_grad, written out for one vector."""
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    jaccard[1:] = jaccard[1:] - jaccard[:-1].clone()
    return jaccard


def hinge_flat_reference(logits, labels):
    if len(labels) == 0:
        return logits.sum() * 0.0
    signs = 2.0 * labels - 1.0
    errors = 1.0 - logits * signs
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(torch.relu(errors_sorted), lovasz_grad_reference(labels[perm]))


def softmax_flat_reference(probas, labels, num_classes, classes="present"):
    losses = []
    for c in range(num_classes):
        fg = (labels == c).double()
        if classes == "present" and fg.sum() == 0:
            continue
        errors = (fg - probas[:, c]).abs()
        errors_sorted, perm = torch.sort(errors, descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad_reference(fg[perm])))
    return sum(losses) / len(losses) if losses else probas.sum() * 0.0


@pytest.mark.parametrize("per_image", [True, False])
def test_hinge_matches_reference_with_ignore(per_image):
    x = torch.randn(3, 1, 5, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(3, 1, 5, 4) < 0.3).double()
    t[0, 0, 0] = 255
    t[2] = 0  # no foreground
    ours = lovasz_hinge_loss(x, t, per_image=per_image, ignore_index=255)
    rows = [(x[i].flatten(), t[i].flatten()) for i in range(3)] if per_image else [(x.flatten(), t.flatten())]
    ref = torch.stack([hinge_flat_reference(xi[ti != 255], ti[ti != 255]) for xi, ti in rows]).mean()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, x)[0], torch.autograd.grad(ref, x)[0])


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("classes", ["present", "all"])
def test_softmax_matches_reference(per_image, classes):
    z = torch.randn(3, 4, 5, 4, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 4, (3, 5, 4))
    t[1, 0] = 255
    t[2] = t[2].clamp(max=1)
    ours = lovasz_softmax_loss(z, t, classes=classes, per_image=per_image, ignore_index=255)
    p = torch.softmax(z, 1)
    if per_image:
        rows = [(p[i].flatten(1).T, t[i].flatten()) for i in range(3)]
    else:
        rows = [(p.movedim(1, -1).reshape(-1, 4), t.flatten())]
    ref = torch.stack([softmax_flat_reference(pi[ti != 255], ti[ti != 255], 4, classes) for pi, ti in rows]).mean()
    torch.testing.assert_close(ours, ref)
    torch.testing.assert_close(torch.autograd.grad(ours, z)[0], torch.autograd.grad(ref, z)[0])


def test_two_logit_hinge_equals_margin_and_gradcheck():
    z = torch.randn(2, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    t = torch.randint(0, 2, (2, 3, 3))
    torch.testing.assert_close(lovasz_hinge_loss(z, t), lovasz_hinge_loss((z[:, 1] - z[:, 0]), t.double()))
    assert torch.autograd.gradcheck(lambda v: lovasz_hinge_loss(v, t, per_image=True), (z,))
    assert torch.autograd.gradcheck(lambda v: lovasz_softmax_loss(v, t, per_image=True), (z,))


def test_all_ignored_scores_zero_and_extremes():
    x = torch.randn(2, 1, 4, 4, requires_grad=True)
    t = torch.full((2, 1, 4, 4), 255.0)
    loss = lovasz_hinge_loss(x, t, ignore_index=255)
    loss.backward()
    assert loss.item() == 0 and (x.grad == 0).all()
    big = (torch.randn(2, 3, 8, 8) * 1e4).requires_grad_()
    lovasz_softmax_loss(big, torch.randint(0, 3, (2, 8, 8))).backward()
    assert torch.isfinite(big.grad).all()
    half = torch.randn(2, 1, 8, 8, dtype=torch.bfloat16, requires_grad=True)
    lovasz_hinge_loss(half, (torch.rand(2, 1, 8, 8) < 0.5).to(torch.bfloat16)).backward()
    assert half.grad.dtype == torch.bfloat16


def test_modules_and_bad_input():
    x, t = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) < 0.5).float()
    torch.testing.assert_close(sl.LovaszHingeLoss(per_image=True)(x, t), lovasz_hinge_loss(x, t, per_image=True))
    z, idx = torch.randn(2, 3, 4, 4), torch.randint(0, 3, (2, 4, 4))
    torch.testing.assert_close(sl.LovaszSoftmaxLoss(classes="all")(z, idx), lovasz_softmax_loss(z, idx, classes="all"))
    with pytest.raises(ValueError, match="binary"):
        lovasz_hinge_loss(x, t * 2)
    with pytest.raises(ValueError, match="classes must be one of .*did you mean 'all'"):
        sl.LovaszSoftmaxLoss(classes="al")
    with pytest.raises(ValueError, match="use lovasz_hinge_loss"):
        lovasz_softmax_loss(x, t[:, 0].long())


@pytest.mark.parametrize("per_image", [True, False])
def test_backward_gradcheck_with_ignore_and_retained_graph(per_image):
    x = torch.randn(2, 1, 3, 4, dtype=torch.float64, requires_grad=True)
    t = (torch.rand(2, 1, 3, 4) < 0.4).double()
    t[0, 0, 0, 0] = 255
    reduction = "none" if per_image else "mean"
    assert torch.autograd.gradcheck(
        lambda v: lovasz_hinge_loss(v, t, per_image=per_image, ignore_index=255, reduction=reduction), (x,))
    z = torch.randn(2, 3, 3, 4, dtype=torch.float64, requires_grad=True)
    idx = torch.randint(0, 3, (2, 3, 4))
    idx[1, 0] = 255
    assert torch.autograd.gradcheck(
        lambda v: lovasz_softmax_loss(v, idx, per_image=per_image, ignore_index=255, reduction=reduction), (z,))
    loss = lovasz_hinge_loss(x, t, per_image=per_image, ignore_index=255)
    first, = torch.autograd.grad(loss, x, retain_graph=True)
    torch.testing.assert_close(torch.autograd.grad(loss, x)[0], first)


@pytest.mark.parametrize("per_image", [True, False])
def test_float32_keys_sort_like_float64(per_image):
    x = torch.randn(3, 1, 32, 32) * 2
    t = (torch.rand(3, 1, 32, 32) < 0.1).float()
    t[1, 0, :4] = 255
    x64 = x.double().requires_grad_()
    x32 = x.clone().requires_grad_()
    loss32 = lovasz_hinge_loss(x32, t, per_image=per_image, ignore_index=255)
    loss64 = lovasz_hinge_loss(x64, t, per_image=per_image, ignore_index=255)
    torch.testing.assert_close(loss32, loss64.float())
    loss32.backward()
    loss64.backward()
    torch.testing.assert_close(x32.grad, x64.grad.float())


@pytest.mark.parametrize("per_image", [True, False])
def test_plain_formula_matches_the_fused_path(per_image):
    x = torch.randn(2, 1, 6, 7) * 2
    t = (torch.rand(2, 1, 6, 7) < 0.3).float()
    t[0, 0, 0] = 255
    z, idx = torch.randn(2, 3, 6, 7), torch.randint(0, 3, (2, 6, 7))
    idx[1, 0] = 255
    calls = [lambda v: lovasz_hinge_loss(v, t, per_image=per_image, ignore_index=255),
             lambda v: lovasz_softmax_loss(v, idx, per_image=per_image, ignore_index=255)]
    for call, inputs in zip(calls, (x, z)):
        fused = inputs.clone().requires_grad_()
        call(fused).backward()
        plain = inputs.clone().requires_grad_()
        with plain_formula():
            loss = call(plain)
        loss.backward()
        torch.testing.assert_close(loss, call(inputs))
        torch.testing.assert_close(plain.grad, fused.grad)


def test_rows_beyond_float32_counts_are_counted_in_float64(monkeypatch):
    """Rows longer than float32 counts hold exactly are counted in float64; forced here on small rows, the loss
    and the gradient (still handed over in the logits' shape) are those of the float32 path."""
    from seesaw_losses.functional import lovasz
    logits = torch.randn(3, 1, 9, 7) * 2
    target = (torch.rand(3, 1, 9, 7) < 0.3).float()

    def run():
        x = logits.clone().requires_grad_()
        loss = lovasz_hinge_loss(x, target, per_image=True)
        loss.backward()
        return loss.detach(), x.grad

    expected = run()
    monkeypatch.setattr(lovasz, "_EXACT_COUNTS", 8)
    torch.testing.assert_close(run(), expected)


def _relative_float32_error(call, logits: torch.Tensor, target: torch.Tensor) -> float:
    """How far ``call`` in float32 is from ``call`` in float64, relative, on the same (float32-rounded) logits."""
    narrow = call(logits.float(), target)
    wide = call(logits.float().double(), target)
    return abs(narrow.double() - wide).item() / abs(wide).item()


def _volume(shape, seed=0):
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(shape, generator=gen) * 2
    target = torch.randint(0, shape[1], (shape[0],) + shape[2:], generator=gen)
    target[:, :2] = 255
    return logits, target


@pytest.mark.parametrize("per_image", [True, False])
@pytest.mark.parametrize("plain", [False, True])
def test_float32_loss_of_a_volume_is_float64s(per_image, plain):
    """131,072 voxels per class: summed as one float32 dot product, the loss was 5.7e-5 off float64."""
    logits, target = _volume((1, 3, 32, 64, 64))
    with plain_formula(plain):
        error = _relative_float32_error(
            lambda x, t: lovasz_softmax_loss(x, t, per_image=per_image, ignore_index=255), logits, target)
    assert error < 1e-5


@pytest.mark.slow
def test_float32_losses_of_large_volumes_are_float64s():
    """(2, 4, 64, 128, 128): 2.1 million voxels per class; 2e-3 off float64 with a float32 dot product."""
    logits, target = _volume((2, 4, 64, 128, 128))
    assert _relative_float32_error(lambda x, t: lovasz_softmax_loss(x, t, ignore_index=255), logits, target) < 1e-5
    mask = (target == 1).float().masked_fill(target == 255, 255).unsqueeze(1)
    assert _relative_float32_error(lambda x, t: lovasz_hinge_loss(x, t, ignore_index=255), logits[:, :1], mask) < 1e-5
