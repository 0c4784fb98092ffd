"""Topology losses (clDice, Skeleton Recall, boundary), their target transforms and the topology metrics."""

import builtins
import itertools

import numpy as np
import pytest
import torch

import seesaw_losses as sl
from seesaw_losses import functional as F
from seesaw_losses import transforms
from seesaw_losses.experiments.evaluation import topology as metrics
from seesaw_losses.functional.topology import tube

# ------------------------------------------------------------------------------------------ float64 references


def _neighbours(x, offsets, fill):
    """Each ``offset`` of the spatial dimensions of ``x`` as a shifted copy (outside pixels read ``fill``)."""
    k = x.dim() - 2
    padded = torch.nn.functional.pad(x, [1, 1] * k, value=fill)
    size = x.shape[2:]
    return [padded[(slice(None), slice(None)) + tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, size))]
            for offset in offsets]


def erode_reference(x):
    k = x.dim() - 2
    cross = [tuple(d if a == axis else 0 for a in range(k)) for axis in range(k) for d in (-1, 1)] + [(0,) * k]
    return torch.stack(_neighbours(x, cross, float("inf"))).amin(0)


def dilate_reference(x):
    square = list(itertools.product((-1, 0, 1), repeat=x.dim() - 2))
    return torch.stack(_neighbours(x, square, float("-inf"))).amax(0)


def skeleton_reference(x, iterations):
    """Shit et al.'s soft skeleton as the paper's code writes it (2 * iterations + 1 erosions)."""
    relu = torch.relu
    skeleton = relu(x - dilate_reference(erode_reference(x)))
    for _ in range(iterations):
        x = erode_reference(x)
        delta = relu(x - dilate_reference(erode_reference(x)))
        skeleton = skeleton + relu(delta - skeleton * delta)
    return skeleton


def cldice_reference(p, t, iterations=3, smooth=1.0, dims=None):
    """Per-class clDice of probabilities ``p`` and a target ``t`` of their shape, sums over ``dims`` (default:
    batch and space: one value per class)."""
    p, t = p.double(), t.double()
    dims = dims if dims is not None else [0] + list(range(2, p.dim()))
    sp, st = skeleton_reference(p, iterations), skeleton_reference(t, iterations)
    precision = ((sp * t).sum(dims) + smooth) / (sp.sum(dims) + smooth)
    sensitivity = ((st * p).sum(dims) + smooth) / (st.sum(dims) + smooth)
    return 1 - 2 * precision * sensitivity / (precision + sensitivity)


# ------------------------------------------------------------------------------------------ fixtures


def _line_mask(shape, spatial):
    """Binary masks ``(N, C, *spatial)`` with one thin line per image and class, at different places."""
    mask = torch.zeros(shape)
    for n, c in itertools.product(range(shape[0]), range(shape[1])):
        row = 2 + (n + 2 * c) % (shape[-2] - 4)
        mask[(n, c) + (slice(1, -1),) * (spatial - 2) + (row, slice(1, -1))] = 1
    return mask


CASES = [  # (logits shape, activation)
    ((2, 1, 12, 12), "sigmoid"),
    ((2, 3, 12, 12), "sigmoid"),
    ((2, 3, 12, 12), "softmax"),
    ((2, 1, 6, 10, 10), "sigmoid"),
    ((2, 3, 6, 10, 10), "softmax"),
]


def _perfect(shape, activation):
    """Logits whose probabilities are exactly the (one-hot) target, and that target."""
    mask = _line_mask(shape, len(shape) - 2)
    if activation == "softmax":
        index = mask.argmax(1)
        return torch.nn.functional.one_hot(index, shape[1]).movedim(-1, 1).float() * 2e4 - 1e4, index
    return mask * 2e4 - 1e4, mask


# ------------------------------------------------------------------------------------------ soft skeleton


@pytest.mark.parametrize("spatial", [2, 3])
def test_soft_skeleton_of_a_one_pixel_line_is_the_line(spatial):
    line = _line_mask((1, 1) + (9,) * spatial, spatial)
    for iterations in (1, 3, 5):
        torch.testing.assert_close(F.soft_skeleton(line, iterations=iterations), line)


def test_soft_skeleton_of_a_disc_lies_inside_and_converges_to_its_centre():
    yy, xx = torch.meshgrid(torch.arange(31.0), torch.arange(31.0), indexing="ij")
    distance = ((yy - 15) ** 2 + (xx - 15) ** 2).sqrt()
    for disc in ((distance <= 10).float(), torch.sigmoid(1.5 * (10 - distance))):
        centre = []
        for iterations in (2, 6, 10, 14):
            skeleton = F.soft_skeleton(disc[None, None], iterations=iterations)[0, 0]
            assert bool((skeleton <= disc + 1e-6).all()) and float(skeleton[distance > 10.5].abs().max()) < 1e-6
            if skeleton.sum() > 0:
                assert float((skeleton * distance).sum() / skeleton.sum()) <= 1.0  # its mass sits at the centre
            centre.append(float(skeleton[15, 15]))
        assert centre == sorted(centre) and centre[-1] > 0.5


@pytest.mark.parametrize("shape", [(2, 2, 9, 11), (1, 2, 5, 7, 6)])
def test_soft_skeleton_matches_the_papers_loop_in_float64(shape):
    x = torch.rand(shape, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    for iterations in (1, 3):
        torch.testing.assert_close(F.soft_skeleton(x, iterations=iterations), skeleton_reference(x, iterations))


# ------------------------------------------------------------------------------------------ clDice


@pytest.mark.parametrize("shape, activation", CASES)
def test_cldice_is_zero_on_a_perfect_prediction_and_positive_with_a_gradient_otherwise(shape, activation):
    logits, target = _perfect(shape, activation)
    assert float(F.cldice_loss(logits, target, activation=activation)) == pytest.approx(0.0, abs=1e-6)
    noisy = (logits / 1e4 + torch.randn(shape, generator=torch.Generator().manual_seed(1))).requires_grad_()
    loss = F.cldice_loss(noisy, target, activation=activation)
    loss.backward()
    assert float(loss) > 0.01 and float(noisy.grad.abs().sum()) > 0


@pytest.mark.parametrize("shape", [(2, 1, 10, 12), (2, 3, 10, 12), (2, 2, 5, 8, 8)])
def test_cldice_matches_the_float64_reference(shape):
    gen = torch.Generator().manual_seed(2)
    logits, target = torch.randn(shape, generator=gen), _line_mask(shape, len(shape) - 2)
    expected = cldice_reference(torch.sigmoid(logits.double()), target, iterations=2, smooth=0.5).mean()
    torch.testing.assert_close(F.cldice_loss(logits.double(), target.double(), iterations=2, smooth_nr=0.5,
                                             smooth_dr=0.5), expected)
    per_image = cldice_reference(torch.sigmoid(logits.double()), target, dims=list(range(2, len(shape))))
    torch.testing.assert_close(F.cldice_loss(logits.double(), target.double(), per_image=True, reduction="none"),
                               per_image)


def test_cldice_softmax_without_background_and_class_weights():
    gen = torch.Generator().manual_seed(3)
    logits, target = torch.randn(2, 3, 10, 10, generator=gen), torch.randint(0, 3, (2, 10, 10), generator=gen)
    onehot = torch.nn.functional.one_hot(target, 3).movedim(-1, 1)
    per_class = cldice_reference(torch.softmax(logits.double(), 1), onehot)
    torch.testing.assert_close(F.cldice_loss(logits.double(), target, activation="softmax",
                                             include_background=False), per_class[1:].mean())
    weight = torch.tensor([0.0, 1.0, 3.0])
    torch.testing.assert_close(F.cldice_loss(logits.double(), target, activation="softmax", class_weight=weight),
                               (per_class * weight.double()).sum() / weight.sum().double())


def test_cldice_ignores_marked_pixels():
    gen = torch.Generator().manual_seed(4)
    logits, target = torch.randn(1, 1, 10, 10, generator=gen), _line_mask((1, 1, 10, 10), 2)
    marked = target.clone()
    marked[..., :3] = 255
    valid = (marked != 255).double()
    expected = cldice_reference(torch.sigmoid(logits.double()) * valid, target * valid).mean()
    torch.testing.assert_close(F.cldice_loss(logits.double(), marked.double(), ignore_index=255), expected)


def test_cldice_gradcheck_in_float64():
    gen = torch.Generator().manual_seed(5)
    logits = torch.randn(1, 2, 6, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    target = _line_mask((1, 2, 6, 6), 2).double()
    assert torch.autograd.gradcheck(lambda x: F.cldice_loss(x, target, iterations=2), (logits,))


def test_cldice_matches_monai_on_one_channel_and_pins_its_channel_pooling():
    monai_losses = pytest.importorskip("monai.losses")
    gen = torch.Generator().manual_seed(6)
    p = torch.rand(3, 1, 12, 12, generator=gen)
    target = _line_mask((3, 1, 12, 12), 2)
    # MONAI (>= 1.6) scores one number per image and adds `smooth` to the harmonic mean's denominator.
    monai = monai_losses.SoftclDiceLoss(smooth=1e-12)(p, target)
    torch.testing.assert_close(F.cldice_loss(p, target, activation=None, per_image=True), monai)
    # With several channels MONAI pools the sums over them; here each class is scored, then averaged.
    p3, target3 = torch.rand(3, 3, 12, 12, generator=gen), _line_mask((3, 3, 12, 12), 2)
    monai = monai_losses.SoftclDiceLoss(smooth=1e-12)(p3, target3)
    torch.testing.assert_close(monai.double(), cldice_reference(p3, target3, dims=[1, 2, 3]).mean(), atol=1e-6,
                               rtol=1e-5)
    ours = F.cldice_loss(p3, target3, activation=None, per_image=True)
    assert abs(float(ours) - float(monai)) > 1e-3


def test_dice_plus_cldice_composition_matches_monai_soft_dice_cldice():
    # The paper's (1 - alpha) Dice + alpha clDice as a composition (MONAI's Dice smoothing is twice ours).
    monai_losses = pytest.importorskip("monai.losses")
    gen = torch.Generator().manual_seed(7)
    logits, target = torch.randn(2, 1, 12, 12, generator=gen), _line_mask((2, 1, 12, 12), 2)
    ours = sl.build_loss("0.5*dice:per_image=True,smooth_nr=0.5,smooth_dr=0.5+0.5*cldice:per_image=True")
    monai = monai_losses.SoftDiceclDiceLoss(sigmoid=True, smooth=1e-12, alpha=0.5)
    torch.testing.assert_close(ours(logits, target), monai(logits, target))


# ------------------------------------------------------------------------------------------ Skeleton Recall


def _band():
    """A band 3 pixels wide and its hand-built skeleton (the middle row), ``(1, 1, 7, 12)``."""
    mask = torch.zeros(1, 1, 7, 12)
    mask[0, 0, 2:5, 1:11] = 1
    skeleton = torch.zeros_like(mask)
    skeleton[0, 0, 3, 2:10] = 1
    return mask, skeleton


def test_skeleton_recall_matches_a_float64_reference_with_a_hand_built_skeleton():
    mask, skeleton = _band()
    mask, skeleton = torch.cat([mask, mask.flip(-1)]), torch.cat([skeleton, skeleton.flip(-1)])
    logits = torch.randn(mask.shape, generator=torch.Generator().manual_seed(8), dtype=torch.float64)
    p = torch.sigmoid(logits)
    expected = 1 - ((p * skeleton).sum() + 1.0) / (skeleton.sum() + 1.0)
    torch.testing.assert_close(F.skeleton_recall_loss(logits, mask, skeleton=skeleton), expected)
    per_image = 1 - ((p * skeleton).sum((2, 3)) + 0.5) / (skeleton.sum((2, 3)) + 0.5)
    torch.testing.assert_close(F.skeleton_recall_loss(logits, mask, skeleton=skeleton.bool(), smooth_nr=0.5, smooth_dr=0.5,
                                                      per_image=True, reduction="none"), per_image)


def test_skeleton_recall_computes_the_skeleton_in_torch_when_none_is_given():
    mask, skeleton = _band()
    logits = torch.randn(mask.shape, generator=torch.Generator().manual_seed(9), dtype=torch.float64)
    centre = torch.zeros_like(mask)
    centre[0, 0, 3, 2:10] = 1  # the morphological skeleton of the band: its middle row inside the end pixels
    torch.testing.assert_close(tube(mask, radius=0), centre)
    torch.testing.assert_close(F.skeleton_recall_loss(logits, mask, radius=0),
                               F.skeleton_recall_loss(logits, mask, skeleton=centre))
    # The tube (radius 1) is the band clipped to the mask.
    tubed = tube(mask, radius=1)
    assert bool((tubed <= mask).all()) and int(tubed.sum()) == 8 + 2 * 8 + 2


def test_skeleton_recall_multiclass_with_the_transforms_skeleton():
    target = torch.zeros(2, 12, 12, dtype=torch.int64)
    target[:, 2:5, 1:11] = 1
    target[:, 7:10, 1:11] = 2
    skeleton = transforms.tubed_skeleton(target, num_classes=3, radius=1, spatial_dims=2)
    assert skeleton.shape == (2, 3, 12, 12) and skeleton.dtype == torch.bool
    logits = torch.randn(2, 3, 12, 12, generator=torch.Generator().manual_seed(10), dtype=torch.float64)
    p, k = torch.softmax(logits, 1), skeleton.double()
    per_class = 1 - ((p * k).sum((0, 2, 3)) + 1) / (k.sum((0, 2, 3)) + 1)
    torch.testing.assert_close(F.skeleton_recall_loss(logits, target, skeleton=skeleton, activation="softmax",
                                                      include_background=False), per_class[1:].mean())


def test_skeleton_recall_perfect_and_3d():
    mask = _line_mask((2, 1, 6, 10, 10), 3)
    assert float(F.skeleton_recall_loss(mask, mask, activation=None, smooth_nr=0.0, smooth_dr=0.0)) == 0.0
    logits = torch.randn(mask.shape, requires_grad=True)
    loss = F.skeleton_recall_loss(logits, mask)
    loss.backward()
    assert float(loss) > 0 and float(logits.grad.abs().sum()) > 0


# ------------------------------------------------------------------------------------------ boundary loss


def _square():
    """A 3x3 square in a 5x5 image and its signed distance map, by hand."""
    mask = np.zeros((5, 5), np.uint8)
    mask[1:4, 1:4] = 1
    r2 = 2 ** 0.5
    phi = np.array([[r2, 1, 1, 1, r2],
                    [1, 0, 0, 0, 1],
                    [1, 0, -1, 0, 1],
                    [1, 0, 0, 0, 1],
                    [r2, 1, 1, 1, r2]], np.float32)
    return mask, phi


def test_signed_distance_map_against_a_hand_computed_one():
    mask, phi = _square()
    np.testing.assert_allclose(transforms.signed_distance_map(mask), phi, rtol=1e-6)
    assert transforms.signed_distance_map(mask).dtype == np.float32
    for blank in (np.zeros((5, 5)), np.ones((5, 5))):
        np.testing.assert_array_equal(transforms.signed_distance_map(blank), 0)
    index = np.where(mask == 1, 2, 0)
    stacked = transforms.signed_distance_map(index, num_classes=3)
    np.testing.assert_allclose(stacked[2], phi, rtol=1e-6)
    np.testing.assert_allclose(stacked[0], -phi, rtol=1e-6, atol=1.0)  # the complement, offset by one pixel
    np.testing.assert_array_equal(stacked[1], 0)
    np.testing.assert_allclose(transforms.signed_distance_map(mask, spacing=(2.0, 1.0))[0, 2], 2.0)


def test_boundary_loss_against_the_hand_computed_distance_map():
    mask, phi = _square()
    target = torch.from_numpy(mask).double()[None, None].repeat(2, 1, 1, 1)
    distance = torch.from_numpy(phi).double()[None, None].repeat(2, 1, 1, 1)
    logits = torch.randn(2, 1, 5, 5, generator=torch.Generator().manual_seed(11), dtype=torch.float64)
    expected = (torch.sigmoid(logits) * distance).mean()
    torch.testing.assert_close(F.boundary_loss(logits, target, distance_map=distance), expected)
    torch.testing.assert_close(F.boundary_loss(logits, target), expected)  # computed with SciPy
    assert float(F.boundary_loss(target, target, activation=None)) == pytest.approx(-1 / 25)  # the centre pixel


def test_boundary_loss_softmax_3d_and_ignore_index():
    target = torch.zeros(1, 4, 6, 6, dtype=torch.int64)
    target[0, 1:3, 1:4, 1:4] = 1
    target[0, :, 5, 5] = 2
    logits = torch.randn(1, 3, 4, 6, 6, generator=torch.Generator().manual_seed(12), dtype=torch.float64)
    phi = transforms.signed_distance_map(target, num_classes=3, spatial_dims=3).double()
    p = torch.softmax(logits, 1)
    expected = (p * phi)[:, 1:].mean()
    torch.testing.assert_close(F.boundary_loss(logits, target, activation="softmax", include_background=False),
                               expected)
    marked = target.clone()
    marked[0, 0] = -100
    valid = (marked != -100).double()[:, None]
    phi_marked = transforms.signed_distance_map(marked.clamp(min=0), num_classes=3, spatial_dims=3).double()
    expected = ((p * valid * phi_marked)[:, 1:].sum((2, 3, 4)) / valid.sum()).mean()
    torch.testing.assert_close(F.boundary_loss(logits, marked, activation="softmax", include_background=False,
                                               ignore_index=-100, distance_map=phi_marked), expected)


# ------------------------------------------------------------------------------------------ transforms


def test_tubed_skeleton_of_hand_built_masks():
    mask = np.zeros((7, 12), bool)
    mask[2:5, 1:11] = True  # a band 3 pixels wide
    bare = transforms.tubed_skeleton(mask, radius=0)
    # Zhang's thinning: the middle row, ending in a one-pixel spur towards a corner
    assert bare.dtype == bool and bare[3, 1:9].all() and bare.sum() == 9 and not bare[[0, 1, 4, 5, 6]].any()
    tubed = transforms.tubed_skeleton(mask, radius=1)
    assert bool((tubed <= mask).all()) and tubed[2:5, 1:9].all() and tubed.sum() == 27
    np.testing.assert_array_equal(transforms.tubed_skeleton(np.zeros((6, 6))), 0)
    volume = np.zeros((5, 9, 9), np.uint8)
    volume[2, 2:7, 4] = 1
    np.testing.assert_array_equal(transforms.tubed_skeleton(volume, radius=0), volume.astype(bool))
    batch = torch.from_numpy(np.stack([mask, mask[::-1]]))[:, None]
    out = transforms.tubed_skeleton(batch, spatial_dims=2)
    assert isinstance(out, torch.Tensor) and out.shape == (2, 1, 7, 12)
    np.testing.assert_array_equal(out[1, 0].numpy(), transforms.tubed_skeleton(mask[::-1].copy()))


# ------------------------------------------------------------------------------------------ metrics


def _line():
    line = np.zeros((16, 16), bool)
    line[8, 2:14] = True
    return line


def test_betti_errors_of_a_broken_line_and_a_ring():
    line = _line()
    broken = line.copy()
    broken[8, 7] = False
    ring = np.zeros((16, 16), bool)
    ring[4:12, 4:12] = True
    ring[6:10, 6:10] = False
    assert metrics.betti_numbers(line) == [1, 0] and metrics.betti_numbers(ring) == [1, 1]
    assert metrics.betti_numbers(np.zeros((4, 4))) == [0, 0]
    means, per_image = metrics.topology_metrics(np.stack([broken, ring, ring]),
                                                np.stack([line, ring, np.zeros_like(ring)]))
    assert per_image["betti0_error"] == [1.0, 0.0, 1.0] and per_image["betti1_error"] == [0.0, 0.0, 1.0]
    assert means["betti0_error"] == pytest.approx(2 / 3)
    assert set(means) == set(per_image) == set(metrics.METRICS) | {"surface_dice@1px", "surface_dice@2px"}
    volume = np.zeros((2, 4, 6, 6), bool)
    volume[:, 1, 1, 1] = volume[:, 2, 4, 4] = True
    assert "betti1_error" not in metrics.topology_metrics(volume, volume)[0]
    assert metrics.betti_numbers(volume[0]) == [2]


def test_cldice_score_and_hd95_on_hand_built_masks():
    line, empty = _line(), np.zeros((16, 16), bool)
    broken = line.copy()
    broken[8, 7] = False
    assert metrics.cldice_score(line, line) == 1.0
    # skeleton of the broken line lies in the line (precision 1); the line's skeleton misses 1 of 12 pixels
    assert metrics.cldice_score(broken, line) == pytest.approx(2 * (11 / 12) / (1 + 11 / 12))
    assert metrics.cldice_score(empty, empty) == 1.0 and metrics.cldice_score(empty, line) == 0.0
    a, b = np.zeros((10, 10), bool), np.zeros((10, 10), bool)
    a[2, 2], b[2, 5] = True, True
    assert metrics.hd95(a, b) == 3.0 and metrics.hd95(line, line) == 0.0
    assert metrics.hd95(empty, empty) == 0.0 and metrics.hd95(empty, line) == pytest.approx(16 * 2 ** 0.5)


def test_hd95_matches_monai():
    monai_metrics = pytest.importorskip("monai.metrics")
    rng = np.random.default_rng(0)
    p, t = rng.random((2, 24, 24)) < 0.1, rng.random((2, 24, 24)) < 0.1
    expected = monai_metrics.compute_hausdorff_distance(torch.tensor(p)[:, None], torch.tensor(t)[:, None],
                                                        percentile=95)
    np.testing.assert_allclose([metrics.hd95(a, b) for a, b in zip(p, t)], expected[:, 0].numpy(), rtol=1e-6)


# ------------------------------------------------------------------------------------------ modules, compile


def test_modules_equal_functions_and_compositions_route_precomputed_inputs():
    mask, skeleton = _band()
    logits = torch.randn(mask.shape, generator=torch.Generator().manual_seed(13))
    phi = transforms.signed_distance_map(mask, spatial_dims=2)
    torch.testing.assert_close(sl.ClDiceLoss(iterations=2)(logits, mask), F.cldice_loss(logits, mask, iterations=2))
    torch.testing.assert_close(sl.SkeletonRecallLoss()(logits, mask, skeleton),
                               F.skeleton_recall_loss(logits, mask, skeleton=skeleton))
    torch.testing.assert_close(sl.BoundaryLoss()(logits, mask, distance_map=phi),
                               F.boundary_loss(logits, mask, distance_map=phi))
    criterion = sl.build_loss("dice+skeleton_recall+0.01*boundary")
    torch.testing.assert_close(criterion(logits, mask, skeleton=skeleton, distance_map=phi),
                               F.dice_loss(logits, mask) + F.skeleton_recall_loss(logits, mask, skeleton=skeleton)
                               + 0.01 * F.boundary_loss(logits, mask, distance_map=phi))
    with pytest.raises(ValueError, match=r"keyword inputs must be taken by at least one component's forward, got "
                                         r"\['distance_map'\]"):
        sl.build_loss("dice+skeleton_recall")(logits, mask, distance_map=phi)
    weighted = sl.ClDiceLoss(class_weight=[1.0, 2.0]).to(torch.float64)
    assert weighted.class_weight.dtype == torch.float64 and "class_weight" in weighted.state_dict()
    for preset in ("binary_seesaw+dice", "binary_seesaw+cldice", "dice+skeleton_recall"):
        assert bool(torch.isfinite(sl.build_loss(preset)(logits, mask)))


def _every_topology_loss(binary, target, skeleton, distance, multi, index, multi_skeleton):
    return {
        "cldice": F.cldice_loss(binary, target),
        "cldice (softmax)": F.cldice_loss(multi, index, activation="softmax", include_background=False),
        "skeleton_recall": F.skeleton_recall_loss(binary, target, skeleton=skeleton),
        "skeleton_recall (computed)": F.skeleton_recall_loss(binary, target),
        "skeleton_recall (softmax)": F.skeleton_recall_loss(multi, index, skeleton=multi_skeleton,
                                                            activation="softmax"),
        "boundary": F.boundary_loss(binary, target, distance_map=distance),
    }


def test_topology_losses_compile_without_graph_breaks():
    mask, skeleton = _band()
    gen = torch.Generator().manual_seed(14)
    index = torch.randint(0, 3, (1, 7, 12), generator=gen)
    inputs = [torch.randn(mask.shape, generator=gen).requires_grad_(), mask, skeleton,
              transforms.signed_distance_map(mask, spatial_dims=2),
              torch.randn(1, 3, 7, 12, generator=gen).requires_grad_(), index,
              transforms.tubed_skeleton(index, num_classes=3, spatial_dims=2)]
    torch._dynamo.reset()
    compiled = torch.compile(_every_topology_loss, fullgraph=True, dynamic=False, backend="aot_eager")
    eager_losses = _every_topology_loss(*inputs)
    for name, value in compiled(*inputs).items():
        eager = eager_losses[name]
        torch.testing.assert_close(value, eager, msg=name)
        grads = torch.autograd.grad(value, [inputs[0], inputs[4]], allow_unused=True, retain_graph=True)
        eager_grads = torch.autograd.grad(eager, [inputs[0], inputs[4]], allow_unused=True, retain_graph=True)
        for got, want in zip(grads, eager_grads):
            if want is None:
                assert got is None or not bool(got.any())
            else:
                torch.testing.assert_close(got, want, msg=name)


# ------------------------------------------------------------------------------------------ bad input


def test_bad_input_raises_clear_errors():
    mask, skeleton = _band()
    logits = torch.randn(mask.shape)
    with pytest.raises(ValueError, match=r"soft_skeleton: iterations must be an int >= 1, got 0"):
        F.soft_skeleton(mask, iterations=0)
    with pytest.raises(ValueError, match=r"cldice_loss: iterations must be an int >= 1, got 0"):
        F.cldice_loss(logits, mask, iterations=0)
    with pytest.raises(ValueError, match=r"ClDiceLoss: iterations must be an int >= 1, got -1"):
        sl.ClDiceLoss(iterations=-1)
    with pytest.raises(ValueError, match=r"skeleton_recall_loss: radius must be an int >= 0, got -1"):
        F.skeleton_recall_loss(logits, mask, radius=-1)
    with pytest.raises(ValueError, match=r"SkeletonRecallLoss: radius must be an int >= 0, got -2"):
        sl.SkeletonRecallLoss(radius=-2)
    with pytest.raises(ValueError, match=r"tubed_skeleton: radius must be an int >= 0, got -1"):
        transforms.tubed_skeleton(mask.numpy(), radius=-1)
    with pytest.raises(ValueError, match=r"boundary_loss: distance_map must be of the logits' shape \(1, 1, 7, 12\), "
                                         r"got a tensor of shape \(1, 7, 12\)"):
        F.boundary_loss(logits, mask, distance_map=torch.zeros(1, 7, 12))
    with pytest.raises(ValueError, match=r"skeleton_recall_loss: skeleton must be binary \(values 0 and 1\), got "
                                         r"values in \[0, 0.5\]; pass the tubed skeleton mask"):
        F.skeleton_recall_loss(logits, mask, skeleton=skeleton * 0.5)
    with pytest.raises(ValueError, match=r"skeleton must be binary \(values 0 and 1\), got values in \[0, 2\]"):
        F.skeleton_recall_loss(logits, mask, skeleton=skeleton.long() * 2)
    with pytest.raises(ValueError, match=r"skeleton must be of the logits' shape .*num_classes=C"):
        F.skeleton_recall_loss(logits, mask, skeleton=skeleton[0])
    with pytest.raises(ValueError, match=r"cldice_loss: logits must be a tensor \(N, C, L\), \(N, C, H, W\) or "):
        F.cldice_loss(logits[:, :, 0, 0], mask[:, :, 0, 0])
    with pytest.raises(ValueError, match=r"cldice_loss: activation must be one of 'sigmoid', 'softmax' or None "
                                         r"\(inputs are probabilities\), got 'softmx'; did you mean 'softmax'\?"):
        F.cldice_loss(logits, mask, activation="softmx")
    with pytest.raises(ValueError, match=r"tubed_skeleton: mask must be binary \(values 0 and 1\), got values in "
                                         r"\[0, 2\]; for class-index masks pass num_classes="):
        transforms.tubed_skeleton(mask.numpy() * 2, spatial_dims=2)
    with pytest.raises(ValueError, match=r"signed_distance_map: spatial_dims must be from 1 to 3"):
        transforms.signed_distance_map(np.zeros((2, 5)), spatial_dims=4)
    with pytest.raises(ValueError, match=r"tubed_skeleton: spatial_dims must be from 2 to 3"):
        transforms.tubed_skeleton(np.zeros(5))


def test_transforms_name_the_extra_when_scipy_is_missing(monkeypatch):
    real_import = builtins.__import__

    def no_scipy(name, *args, **kwargs):
        if name.startswith("scipy"):
            raise ImportError(f"No module named {name!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_scipy)
    monkeypatch.setattr(transforms.importlib, "import_module", lambda name: no_scipy(name))
    with pytest.raises(ImportError, match=r"signed_distance_map: needs SciPy, which is not installed; install it "
                                          r"with pip install 'seesaw-losses\[cli\]'"):
        transforms.signed_distance_map(np.ones((3, 3)))


@pytest.mark.parametrize("shape", [(2, 2, 7, 9), (1, 2, 4, 5, 6)])
def test_fused_erosion_and_dilation_match_pooling_and_pass_gradcheck(shape):
    from seesaw_losses.functional._fused import plain_formula
    from seesaw_losses.functional.topology import _extremum

    gen = torch.Generator().manual_seed(15)
    x = torch.rand(shape, generator=gen, dtype=torch.float64, requires_grad=True)
    target = (torch.rand(shape, generator=gen) < 0.3).double()
    fused = F.cldice_loss(x, target)
    with plain_formula():  # max pooling, as under torch.compile
        pooled = F.cldice_loss(x, target)
    torch.testing.assert_close(fused, pooled)
    torch.testing.assert_close(torch.autograd.grad(fused, x)[0], torch.autograd.grad(pooled, x)[0])
    dims = tuple(range(2, len(shape)))
    for largest in (True, False):
        assert torch.autograd.gradcheck(lambda v: _extremum(v, dims, largest), (x,))
    binary = (torch.rand(shape, generator=gen) < 0.5).double().requires_grad_()  # ties everywhere
    weights = torch.rand(shape, generator=gen, dtype=torch.float64)
    grad, = torch.autograd.grad((_extremum(binary, dims, False) * weights).sum(), binary)
    torch.testing.assert_close(grad.sum(), weights.sum())  # each output's gradient goes to one winner


def test_cldice_scores_a_mask_covering_the_whole_image_as_perfect():
    # Nothing erodes at the image border (as in the paper's code and MONAI): a full mask has no soft skeleton,
    # so clDice alone cannot penalise over-segmentation; it is meant to be used beside a region loss.
    target = _line_mask((1, 1, 12, 12), 2)
    full = torch.ones_like(target)
    assert float(F.soft_skeleton(full).sum()) == 0.0
    assert float(F.cldice_loss(full, target, activation=None)) == 0.0


def test_skeleton_recall_fused_sums_match_the_plain_formula_and_pass_gradcheck():
    from seesaw_losses.functional._fused import plain_formula
    from seesaw_losses.functional.topology import _skeleton_sums

    gen = torch.Generator().manual_seed(16)
    logits = torch.randn(2, 3, 5, 6, generator=gen, dtype=torch.float64, requires_grad=True)
    skeleton = torch.rand(2, 3, 5, 6, generator=gen) < 0.3
    assert torch.autograd.gradcheck(lambda x: _skeleton_sums(x, skeleton)[0], (logits,))
    fused = F.skeleton_recall_loss(logits, skeleton.double(), skeleton=skeleton, include_background=False)
    with plain_formula():
        plain = F.skeleton_recall_loss(logits, skeleton.double(), skeleton=skeleton, include_background=False)
    torch.testing.assert_close(fused, plain)
    torch.testing.assert_close(torch.autograd.grad(fused, logits)[0], torch.autograd.grad(plain, logits)[0])
    half = logits.detach().half().requires_grad_()
    F.skeleton_recall_loss(half, skeleton.half(), skeleton=skeleton).backward()
    assert half.grad.dtype == torch.float16


def test_topology_smooth_is_deprecated_for_smooth_nr_and_smooth_dr():
    gen = torch.Generator().manual_seed(3)
    logits, target = torch.randn(2, 1, 16, 16, generator=gen), _line_mask((2, 1, 16, 16), 2)
    for function, module in ((F.cldice_loss, sl.ClDiceLoss), (F.skeleton_recall_loss, sl.SkeletonRecallLoss)):
        expected = function(logits, target, smooth_nr=0.25, smooth_dr=0.25)
        with pytest.warns(DeprecationWarning, match="smooth is deprecated.*smooth_nr=0.25, smooth_dr=0.25"):
            torch.testing.assert_close(function(logits, target, smooth=0.25), expected)
        with pytest.warns(DeprecationWarning, match=f"{module.__name__}: smooth is deprecated"):
            criterion = module(smooth=0.25)
        assert (criterion.options["smooth_nr"], criterion.options["smooth_dr"]) == (0.25, 0.25)
        torch.testing.assert_close(criterion(logits, target), expected)
    unequal = F.cldice_loss(logits, target, smooth_nr=0.0, smooth_dr=1.0)
    assert float(unequal) != float(F.cldice_loss(logits, target, smooth_nr=1.0, smooth_dr=1.0))
