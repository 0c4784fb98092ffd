import pytest
import torch
import torch.nn.functional as F

from seesaw_losses import BinarySeesawLoss
from seesaw_losses.functional import binary_counts, binary_seesaw_loss, lovasz_hinge_loss

from references import binary_seesaw_original, binary_seesaw_paper_reference

COUNTS = torch.tensor([97_000, 3_000])


def _inputs(shape=(2, 1, 12, 12), dtype=torch.float64, scale=3.0, fg=0.1):
    logits = (torch.randn(shape, dtype=torch.float64) * scale).to(dtype).requires_grad_()
    target = (torch.rand(shape) < fg).to(dtype)
    return logits, target


@pytest.mark.parametrize("p,q", [(0.8, 2.0), (0.0, 2.0), (0.8, 0.0), (2.0, 1.0)])
@pytest.mark.parametrize("counts", [COUNTS, torch.tensor([10, 500]), torch.tensor([0, 0])])
def test_paper_matches_two_class_seesaw_reference(p, q, counts):
    logits, target = _inputs()
    ours = binary_seesaw_loss(logits, target, counts, p=p, q=q, reduction="none")
    ref = binary_seesaw_paper_reference(logits, target, counts, p, q, 1e-2)
    torch.testing.assert_close(ours, ref)
    g1, = torch.autograd.grad(ours.sum(), logits)
    g2, = torch.autograd.grad(ref.sum(), logits)
    torch.testing.assert_close(g1, g2)


def test_gradcheck():
    logits, target = _inputs((2, 1, 6, 6))
    weight = torch.rand(2, 1, 6, 6, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x: binary_seesaw_loss(x, target, COUNTS, q=0.0, weight=weight), (logits,))
    assert torch.autograd.gradcheck(
        lambda x: binary_seesaw_loss(x, target, None, variant="reweighted", reduction="none"), (logits,))
    assert torch.autograd.gradcheck(
        lambda x: binary_seesaw_loss(x, target, None, variant="reweighted", q=0.5, temperature=1.5), (logits,))


def test_p_q_zero_is_exactly_bce():
    logits, target = _inputs((3, 1, 17, 9), dtype=torch.float32)
    for reduction in ("mean", "sum", "none"):
        ours = binary_seesaw_loss(logits, target, COUNTS, p=0, q=0, reduction=reduction)
        bce = F.binary_cross_entropy_with_logits(logits, target, reduction=reduction)
        torch.testing.assert_close(ours, bce)
        g1, = torch.autograd.grad(ours.sum(), logits)
        g2, = torch.autograd.grad(bce.sum(), logits)
        torch.testing.assert_close(g1, g2)


@pytest.mark.parametrize("variant", ["paper", "reweighted"])
def test_one_logit_equals_two_logit_with_zero_background(variant):
    x, target = _inputs((2, 1, 8, 8))
    two = torch.cat([torch.zeros_like(x), x.detach()], dim=1).requires_grad_()
    counts = COUNTS if variant == "paper" else None
    one_loss = binary_seesaw_loss(x, target, counts, variant=variant, reduction="none")
    two_loss = binary_seesaw_loss(two, target[:, 0].long(), counts, variant=variant, reduction="none")
    torch.testing.assert_close(one_loss[:, 0], two_loss, rtol=0, atol=0)
    g_one, = torch.autograd.grad(one_loss.sum(), x)
    g_two, = torch.autograd.grad(two_loss.sum(), two)
    torch.testing.assert_close(g_one[:, 0], g_two[:, 1], rtol=0, atol=0)
    torch.testing.assert_close(g_two[:, 0], -g_two[:, 1], rtol=0, atol=0)


def test_squeezed_one_logit_form():
    x, target = _inputs((2, 10, 10))
    torch.testing.assert_close(binary_seesaw_loss(x, target, COUNTS),
                               binary_seesaw_loss(x[:, None], target[:, None], COUNTS))


@pytest.mark.parametrize("fg", [0.05, 0.5, 0.0])
def test_reweighted_matches_the_original_formulation(fg):
    logits = (torch.randn(2, 2, 16, 16, dtype=torch.float64) * 2).requires_grad_()
    target = (torch.rand(2, 16, 16) < fg).long()
    ours = binary_seesaw_loss(logits, target, None, variant="reweighted")
    ref = binary_seesaw_original(logits, target)
    torch.testing.assert_close(ours, ref, rtol=1e-10, atol=1e-12)
    g1, = torch.autograd.grad(ours, logits)
    g2, = torch.autograd.grad(ref, logits)
    torch.testing.assert_close(g1, g2, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("variant", ["paper", "reweighted"])
@pytest.mark.parametrize("scale", [40.0, 1e4])
def test_finite_at_extreme_logits(variant, scale):
    logits = (torch.randn(2, 2, 8, 8).sign() * scale).requires_grad_()
    target = (torch.rand(2, 8, 8) < 0.3).long()
    loss = binary_seesaw_loss(logits, target, COUNTS if variant == "paper" else None, variant=variant)
    loss.backward()
    assert torch.isfinite(loss) and loss >= 0 and torch.isfinite(logits.grad).all()


def test_original_formulation_overflows_where_ours_does_not():
    logits = torch.full((1, 2, 2, 2), 40.0, dtype=torch.float32)
    logits[:, 0] = -40.0
    target = torch.zeros(1, 2, 2, dtype=torch.long)
    assert not torch.isfinite(binary_seesaw_original(logits.float() * 4, target))
    assert torch.isfinite(binary_seesaw_loss(logits * 4, target, None, variant="reweighted"))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("variant", ["paper", "reweighted"])
def test_half_precision(dtype, variant):
    logits, target = _inputs((2, 1, 32, 32), dtype=dtype)
    loss = binary_seesaw_loss(logits, target, COUNTS if variant == "paper" else None, variant=variant)
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert logits.grad.dtype == dtype and torch.isfinite(logits.grad).all()


def test_ignore_index_zero_gradient_and_not_counted():
    logits, target = _inputs((2, 1, 10, 10))
    target[:, :, :3] = 255
    criterion = BinarySeesawLoss(ignore_index=255)
    loss = criterion(logits, target)
    loss.backward()
    ignored = target == 255
    assert (logits.grad[ignored] == 0).all() and (logits.grad[~ignored] != 0).all()
    valid = target[~ignored]
    assert criterion.class_counts.tolist() == [int((valid == 0).sum()), int((valid == 1).sum())]
    mean = binary_seesaw_loss(logits, target, criterion.class_counts, ignore_index=255, reduction="sum")
    torch.testing.assert_close(loss, mean / (~ignored).sum())


def test_module_counts_state_and_eval():
    logits, target = _inputs()
    criterion = BinarySeesawLoss(p=0.8, q=2.0)
    out = criterion(logits, target)
    counts = binary_counts(target, None)
    assert torch.equal(criterion.class_counts, counts)
    torch.testing.assert_close(out, binary_seesaw_loss(logits, target, counts))
    criterion(logits, target)
    assert torch.equal(criterion.class_counts, 2 * counts)
    criterion.eval()
    criterion(logits, target)
    assert torch.equal(criterion.class_counts, 2 * counts)
    restored = BinarySeesawLoss()
    restored.load_state_dict(criterion.state_dict())
    assert torch.equal(restored.class_counts, 2 * counts)


def test_reweighted_module_uses_batch_counts():
    logits = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    target = (torch.rand(2, 8, 8) < 0.2).long()
    criterion = BinarySeesawLoss(variant="reweighted")
    criterion.class_counts.fill_(10**9)
    torch.testing.assert_close(criterion(logits, target), binary_seesaw_original(logits, target))


def test_errors_are_clear():
    x = torch.randn(2, 1, 4, 4)
    t = (torch.rand(2, 1, 4, 4) > 0.5).float()
    with pytest.raises(ValueError, match="variant must be one of 'paper', 'reweighted', got 'papr'; did you mean"):
        binary_seesaw_loss(x, t, COUNTS, variant="papr")
    with pytest.raises(ValueError, match="BinarySeesawLoss: variant must be one of"):
        BinarySeesawLoss(variant="original")
    with pytest.raises(ValueError, match=r"BinarySeesawLoss: p must be in \[0, inf\], got -1"):
        BinarySeesawLoss(p=-1)
    with pytest.raises(ValueError, match="target must be binary .* got a value 255; if 255 marks pixels to skip"):
        binary_seesaw_loss(x, t * 255, COUNTS)
    with pytest.raises(ValueError, match="got a value 0.3.*binarise soft masks"):
        binary_seesaw_loss(x, torch.full_like(t, 0.3), COUNTS)
    with pytest.raises(ValueError, match="add the channel dimension with target.unsqueeze"):
        binary_seesaw_loss(x, t[:, 0], COUNTS)
    with pytest.raises(ValueError, match="logits must be of 2 channels .* for C > 2 classes use seesaw_loss"):
        binary_seesaw_loss(torch.randn(2, 3, 4, 4), torch.zeros(2, 4, 4, dtype=torch.long), COUNTS)
    with pytest.raises(TypeError, match="integer tensor of class indices .* convert with target.long"):
        binary_seesaw_loss(torch.randn(2, 2, 4, 4), torch.zeros(2, 4, 4), COUNTS)
    with pytest.raises(ValueError, match="class_counts must be a 1-D tensor of 2 class counts"):
        binary_seesaw_loss(x, t, torch.tensor([1, 2, 3]))
    with pytest.raises(ValueError, match="class_counts must be None for variant='reweighted'"):
        binary_seesaw_loss(x, t, COUNTS, variant="reweighted")
    with pytest.raises(ValueError, match="temperature must be None for variant='paper'"):
        BinarySeesawLoss(temperature=2.0)
    with pytest.raises(ValueError, match="reduction must be one of"):
        BinarySeesawLoss(reduction="avg")


def test_a_rejected_call_counts_nothing():
    criterion = BinarySeesawLoss(ignore_index=255)
    logits, mask = torch.randn(2, 1, 4, 4), (torch.rand(2, 1, 4, 4) < 0.3).float()
    bad_calls = [
        lambda: criterion(torch.randn(2, 3, 4, 4), mask[:, 0].long()),        # channel count
        lambda: criterion(logits, mask * 2),                                 # target values
        lambda: criterion(logits, mask, torch.ones(3)),                      # element weight shape
        lambda: criterion(logits, mask[:, 0]),                               # target shape
    ]
    for call in bad_calls:
        with pytest.raises(ValueError):
            call()
    assert criterion.class_counts.sum() == 0
    criterion(logits, mask)
    assert criterion.class_counts.tolist() == [int((mask == 0).sum()), int((mask == 1).sum())]


def test_binary_counts_of_a_float_target_without_a_copy():
    mask = (torch.rand(3, 1, 9, 9) < 0.2).float()
    mask[0, 0, :2] = 255
    valid = mask[mask != 255]
    expected = [int((valid == 0).sum()), int((valid == 1).sum())]
    assert binary_counts(mask, 255).tolist() == expected and binary_counts(mask, 255).dtype == torch.int64
    assert binary_counts(mask.double(), 255).tolist() == expected
    assert binary_counts(mask.masked_fill(mask == 255, 0), None).tolist() == [expected[0] + 18, expected[1]]
    assert binary_counts(mask.long(), 255).tolist() == expected


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_two_logit_margin_is_taken_in_float32(dtype):
    # bfloat16 cannot hold 10048 + 30: subtracting in the input dtype would give 10054 instead of 10084ish
    logits = torch.tensor([[-30.0, 10048.0], [1.3, -0.4]]).view(2, 2, 1)
    target = torch.tensor([[0], [1]])
    half = logits.to(dtype)
    ours = binary_seesaw_loss(half, target, torch.tensor([100, 100]), q=0.0, reduction="none")
    exact = binary_seesaw_loss(half.double(), target, torch.tensor([100, 100]), q=0.0, reduction="none")
    torch.testing.assert_close(ours.double(), exact, rtol=1e-6, atol=1e-6)
    assert abs(ours[0, 0].item() - (float(half[0, 1, 0]) - float(half[0, 0, 0]))) < 1e-3
    torch.testing.assert_close(lovasz_hinge_loss(half, target, per_image=True, reduction="none").double(),
                               lovasz_hinge_loss(half.double(), target, per_image=True, reduction="none"))
