"""DenoiSeg: Noise2Void plus a segmentation learned from the few labelled images."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage.draw import disk

import infocus
from infocus._errors import InfocusInputError
from infocus.methods import create_scheme
from infocus.methods.config import default_config
from infocus.methods.denoiseg import instances_from_classes, three_classes
from infocus.metrics import average_precision, psnr


def nuclei(seed: int, size: int = 96, count: int = 14) -> tuple[np.ndarray, np.ndarray]:
    """Instance masks of round nuclei (some touching) and their clean image."""
    rng = np.random.default_rng(seed)
    labels = np.zeros((size, size), np.uint16)
    for k in range(1, count + 1):
        rr, cc = disk(tuple(rng.uniform(8, size - 8, 2)), rng.uniform(4, 7), shape=labels.shape)
        free = labels[rr, cc] == 0
        labels[rr[free], cc[free]] = k
    clean = ndimage.gaussian_filter(np.where(labels > 0, 40.0, 6.0), 1.0)
    return labels, clean


def test_instance_masks_become_three_classes():
    labels = np.zeros((1, 9, 9), np.int32)
    labels[0, 1:5, 1:5] = 1
    labels[0, 1:5, 5:8] = 2  # touching the first
    classes = three_classes(labels)
    assert classes[0, 0, 0] == 0 and classes[0, 2, 2] == 1
    assert classes[0, 1, 1] == 2 and classes[0, 2, 4] == 2 and classes[0, 2, 5] == 2
    unlabelled = three_classes(np.full((1, 4, 4), -1))
    assert (unlabelled == -1).all()


def test_touching_objects_are_split_along_the_border_class():
    probabilities = np.zeros((3, 10, 20), np.float32)
    probabilities[0] = 1.0
    probabilities[:, 2:8, 2:18] = np.array([0.0, 0.9, 0.1])[:, None, None]
    probabilities[:, 2:8, 9:11] = np.array([0.0, 0.2, 0.8])[:, None, None]  # the border
    labels = instances_from_classes(probabilities)
    assert labels.max() == 2 and (labels[2:8, 2:18] > 0).all()


def test_loss_counts_labelled_pixels_only():
    scheme = create_scheme("denoiseg")
    noisy = torch.rand(2, 1, 32, 32)
    classes = torch.full((2, 1, 32, 32), -1.0)
    classes[0, 0, :16] = 1.0
    batch = scheme.prepare(noisy, classes, torch.Generator().manual_seed(0))
    logits = torch.zeros(2, 3, 32, 32)
    logits[:, 1] = 20.0  # confident foreground everywhere
    confident = scheme.loss(torch.cat([noisy, logits], 1), batch)
    assert confident["denoise"].item() == 0.0
    assert confident["segment"].item() < 1e-6  # the unlabelled half does not count
    logits[:, 0] = 40.0
    assert scheme.loss(torch.cat([noisy, logits], 1), batch)["segment"].item() > 10


def test_few_labels_give_a_segmentation_and_a_denoised_image(rng):
    data = [nuclei(seed) for seed in range(6)]
    clean = np.stack([c for _, c in data])
    noisy = rng.poisson(clean).astype(np.float32)
    config = default_config("denoiseg").with_updates(
        steps=300, steps_per_epoch=100, patch_size=48, batch_size=8, learning_rate=4e-3,
        network_options={"depth": 2, "base_filters": 8})
    model = infocus.train(list(noisy), targets=[data[0][0], data[1][0], None, None, None, None],
                          method="denoiseg", axes="YX", config=config, progress=False,
                          log=lambda m: None)
    unlabelled = (2, 3, 4, 5)
    results = [model.predict(noisy[i], also=("labels", "foreground")) for i in unlabelled]
    for i, result in zip(unlabelled, results, strict=True):
        assert psnr(result.denoised, clean[i]) > psnr(noisy[i], clean[i]) + 3
        assert 0 <= result.extras["foreground"].min() <= result.extras["foreground"].max() <= 1
    learned = np.mean([average_precision(r.extras["labels"].astype(int), data[i][0])[0.5]
                       for i, r in zip(unlabelled, results, strict=True)])
    # Thresholding even the clean image merges touching nuclei; the border class splits them.
    threshold = np.mean([average_precision(ndimage.label(clean[i] > 23)[0], data[i][0])[0.5]
                         for i in unlabelled])
    assert learned > threshold + 0.08, (learned, threshold)


def test_labels_that_do_not_fit_their_image_are_refused(rng):
    noisy = rng.poisson(20, (2, 32, 32)).astype(np.float32)
    config = default_config("denoiseg").with_updates(steps=2, patch_size=16, batch_size=2)
    with pytest.raises(InfocusInputError, match="labels have"):
        infocus.train(list(noisy), targets=[np.zeros((32, 30), np.uint16), None],
                      method="denoiseg", axes="YX", config=config, progress=False)
    with pytest.raises(InfocusInputError, match="non-integer"):
        infocus.train(list(noisy), targets=[np.full((32, 32), 0.5), None], method="denoiseg",
                      axes="YX", config=config, progress=False)
    with pytest.raises(InfocusInputError, match="None of the images has labels"):
        infocus.train(list(noisy), targets=[None, None], method="denoiseg", axes="YX",
                      config=config, progress=False)


@pytest.mark.parametrize("option", [{"labelled_fraction": 1.5}, {"labelled_fraction": -0.1},
                                    {"border_weight": 0.0}])
def test_bad_sampling_and_weight_options_are_refused(option):
    with pytest.raises(InfocusInputError, match=next(iter(option))):
        create_scheme("denoiseg", **option)


def test_the_border_class_weighs_more_in_the_loss():
    noisy = torch.rand(1, 1, 8, 8)
    classes = torch.full((1, 1, 8, 8), float(2))  # all border
    logits = torch.zeros(1, 3, 8, 8)  # uniform guess: CE = log 3 per pixel
    losses = {}
    for weight in (1.0, 5.0):
        scheme = create_scheme("denoiseg", border_weight=weight)
        batch = scheme.prepare(noisy, classes, torch.Generator().manual_seed(0))
        losses[weight] = scheme.loss(torch.cat([noisy, logits], 1), batch)["segment"].item()
    assert losses[1.0] == pytest.approx(np.log(3), rel=1e-5)
    assert losses[5.0] == pytest.approx(5 * np.log(3), rel=1e-5)


def test_the_scheme_asks_for_its_labelled_share():
    assert create_scheme("denoiseg").labelled_share() == 0.9
    assert create_scheme("denoiseg", labelled_fraction=0.25).labelled_share() == 0.25


@pytest.mark.parametrize(("labelled", "warned"), [(1, True), (2, False)])
def test_a_single_labelled_image_is_warned_about(rng, labelled, warned):
    from infocus.methods.denoiseg import ONE_LABEL_WARNING

    data = [nuclei(seed, size=64, count=6) for seed in range(4)]
    noisy = [rng.poisson(c).astype(np.float32) for _, c in data]
    targets = [labels if i < labelled else None for i, (labels, _) in enumerate(data)]
    config = default_config("denoiseg").with_updates(
        steps=2, steps_per_epoch=2, patch_size=32, batch_size=2,
        network_options={"depth": 1, "base_filters": 4})
    said: list[str] = []
    infocus.train(noisy, targets=targets, method="denoiseg", axes="YX", config=config,
                  progress=False, log=said.append)
    assert (ONE_LABEL_WARNING in said) is warned


def test_the_denoising_loss_weighs_labelled_patches_by_their_share_of_the_data():
    """The sampler over-draws labelled images; the denoising term still averages as if
    patches came from all images: q L_labelled + (1 - q) L_unlabelled."""
    from infocus.methods._base import Batch

    torch.manual_seed(0)
    target = torch.zeros(4, 1, 8, 8)
    prediction = torch.cat([torch.full((3, 1, 8, 8), 1.0), torch.full((1, 1, 8, 8), 3.0)])
    mask = torch.ones(4, 1, 8, 8, dtype=torch.bool)
    labels = torch.cat([torch.zeros(3, 1, 8, 8), torch.full((1, 1, 8, 8), -1.0)])
    batch = Batch(prediction, target, mask, labels=labels)
    logits = torch.zeros(4, 3, 8, 8)
    scheme = create_scheme("denoiseg")
    plain = scheme.loss(torch.cat([prediction, logits], 1), batch)["denoise"].item()
    assert plain == pytest.approx((3 * 1.0 + 9.0) / 4)  # three labelled patches of four
    bound = scheme.bind({"labelled_pixel_share": 0.1}, None)
    weighted = bound.loss(torch.cat([prediction, logits], 1), batch)["denoise"].item()
    assert weighted == pytest.approx(0.1 * 1.0 + 0.9 * 9.0)
    only_labelled = Batch(prediction[:3], target[:3], mask[:3], labels=labels[:3])
    assert bound.loss(torch.cat([prediction[:3], logits[:3]], 1),
                      only_labelled)["denoise"].item() == pytest.approx(1.0)


def test_training_stores_the_labelled_share_of_the_pixels(rng):
    data = [nuclei(seed, size=64, count=4) for seed in range(3)]
    noisy = [rng.poisson(c).astype(np.float32) for _, c in data]
    config = default_config("denoiseg").with_updates(
        steps=2, steps_per_epoch=2, patch_size=16, batch_size=2,
        network_options={"depth": 1, "base_filters": 4})
    model = infocus.train(noisy, targets=[data[0][0], None, None], method="denoiseg",
                          axes="YX", config=config, progress=False)
    assert model.state["labelled_pixel_share"] == pytest.approx(1 / 3)
