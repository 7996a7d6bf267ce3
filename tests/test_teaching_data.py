"""The digit data and the judge used by the quality checks: one answer whatever form the frames come in."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from helpers.teaching.data import DigitClassifier, load_split, to_grey_batch


def test_every_frame_format_gives_the_same_grey_batch():
    x = load_split("held_out").images[:6]  # (6, 3, 32, 32) float in [0, 1]
    uint8 = (x.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    forms = {
        "tensor batch": x,
        "list of CHW tensors": list(x),
        "PIL list": [Image.fromarray(a) for a in uint8],
        "uint8 NHWC array": uint8,
        "float NHWC array": uint8.astype(np.float32) / 255,
    }
    reference = x.mean(dim=1, keepdim=True)
    for name, images in forms.items():
        got = to_grey_batch(images)
        assert got.shape == (6, 1, 32, 32), name
        assert torch.allclose(got, reference, atol=3 / 255), name


def test_the_judge_scores_real_held_out_digits_whatever_their_form():
    held_out = load_split("held_out")
    judge = DigitClassifier()
    accuracy = float((judge.predict(held_out.images) == held_out.labels.numpy()).mean())
    assert accuracy >= 0.93  # logistic regression on 8x8 digits scores about 96-97% (scikit-learn's own example)
    first = held_out.images[:20]
    assert (judge.predict(list(first)) == judge.predict(first)).all()


def test_the_split_is_fixed_and_disjoint():
    train, held_out = load_split("train"), load_split("held_out")
    assert (len(train.labels), len(held_out.labels)) == (1497, 300)
    counts = np.bincount(held_out.labels.numpy(), minlength=10)
    assert counts.min() >= 29 and counts.max() <= 31  # stratified: every digit about equally often
    flat_train = {tuple(np.round(v, 4)) for v in train.images[:, 0, ::4, ::4].reshape(len(train.labels), -1).numpy()}
    flat_held = [tuple(np.round(v, 4)) for v in held_out.images[:, 0, ::4, ::4].reshape(300, -1).numpy()]
    assert sum(v in flat_train for v in flat_held) <= 3  # scikit-learn's digits hold a few exact duplicates
