"""The teaching data: scikit-learn's 1,797 real handwritten 8x8 digits, upsampled, with captions.

Introduced in notebook 01_diffusion_basics. No downloads: ``sklearn.datasets.load_digits`` ships in the wheel.

The split is fixed and documented: ``train_test_split(test_size=300, stratify=labels, random_state=0)``,
i.e. 1,497 training digits and 300 held-out digits (30 per class). Images are grey RGB (three equal channels)
in [0, 1], white ink on black, bilinearly upsampled from 8x8.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np
import torch
import torch.nn.functional as F

DIGIT_WORDS = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine")
HELD_OUT = 300
SPLIT_SEED = 0


def caption(label: int) -> str:
    """The caption of a digit class, e.g. ``caption(3) == "a handwritten three"``."""
    return f"a handwritten {DIGIT_WORDS[int(label)]}"


CAPTIONS = tuple(caption(i) for i in range(10))


@dataclass(frozen=True)
class DigitSplit:
    """Images (N, 3, size, size) float32 in [0, 1], integer labels (N,), and captions."""

    images: torch.Tensor
    labels: torch.Tensor

    @property
    def captions(self) -> list[str]:
        return [caption(int(i)) for i in self.labels]

    def __len__(self) -> int:
        return len(self.labels)


@lru_cache(maxsize=1)
def _raw_split() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    digits = load_digits()
    x = digits.images.astype(np.float32) / 16.0
    y = digits.target.astype(np.int64)
    return tuple(train_test_split(x, y, test_size=HELD_OUT, stratify=y, random_state=SPLIT_SEED))


def upsample(images8: np.ndarray | torch.Tensor, size: int = 32) -> torch.Tensor:
    """(N, 8, 8) grey digits in [0, 1] → (N, 3, size, size) grey RGB, bilinear."""
    x = torch.as_tensor(np.asarray(images8, dtype=np.float32))[:, None]
    x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)
    return x.expand(-1, 3, -1, -1).contiguous()


def load_split(split: str = "train", size: int = 32) -> DigitSplit:
    """The ``"train"`` (1,497) or ``"held_out"`` (300) digits at ``size`` x ``size`` pixels."""
    if split not in ("train", "held_out"):
        raise ValueError(f"split must be 'train' or 'held_out', got {split!r}")
    x_train, x_test, y_train, y_test = _raw_split()
    x, y = (x_train, y_train) if split == "train" else (x_test, y_test)
    return DigitSplit(images=upsample(x, size), labels=torch.as_tensor(y))


def to_grey_batch(images) -> torch.Tensor:
    """PIL images, (N,H,W[,C]) arrays, or (N,C,H,W) tensors or lists of (C,H,W) tensors in [0, 1] (uint8
    arrays: [0, 255]) → (N,1,H,W) grey in [0, 1]."""
    from PIL import Image

    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], Image.Image):
        arr = np.stack([np.asarray(im.convert("L"), dtype=np.float32) / 255.0 for im in images])
        return torch.from_numpy(arr)[:, None]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], torch.Tensor):
        images = torch.stack([torch.as_tensor(im) for im in images])  # a list of (C,H,W) frames is a batch
    if isinstance(images, torch.Tensor):
        x = images.detach().float().cpu()
        if x.ndim == 3:
            x = x[None]
        return x.mean(dim=1, keepdim=True)
    arr = np.asarray(images)
    scale = 255.0 if arr.dtype == np.uint8 else 1.0
    arr = arr.astype(np.float32) / scale
    if arr.ndim == 3:  # (N, H, W) grey
        arr = arr[..., None]
    return torch.from_numpy(arr).mean(dim=-1)[:, None]


def to_8x8(images) -> np.ndarray:
    """Any batch of digit images → (N, 64) features: grey, resized to 32x32, 4x4 average-pooled to 8x8."""
    x = to_grey_batch(images)
    if x.shape[-2:] != (32, 32):
        x = F.interpolate(x, size=(32, 32), mode="bilinear", align_corners=False)
    return F.avg_pool2d(x, 4).reshape(len(x), -1).numpy()


class DigitClassifier:
    """A logistic-regression judge of digit images (≈97% on held-out real digits).

    Fitted on the training split after the same upsample → 8x8 round trip that samples go through, so it
    judges generated images of any size. Used by the quality tests and the notebooks' metrics.
    """

    def __init__(self, seed: int = 0) -> None:
        from sklearn.linear_model import LogisticRegression

        train = load_split("train")
        self.model = LogisticRegression(max_iter=2000, C=1.0, random_state=seed)
        self.model.fit(to_8x8(train.images), train.labels.numpy())

    def predict_proba(self, images) -> np.ndarray:
        """(N, 10) class probabilities."""
        return self.model.predict_proba(to_8x8(images))

    def predict(self, images) -> np.ndarray:
        """(N,) predicted digit labels."""
        return self.predict_proba(images).argmax(axis=1)
