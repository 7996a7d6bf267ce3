"""Judges of the teaching world: what is in a picture, measured without asking the model that drew it.

Introduced in notebook 01_diffusion_basics. The quality and visibility tests, and the notebooks' numbers, read
generated images with these:

* :func:`background_of` — the background colour: the median of the border pixels, nearest of the five;
* :func:`foreground_mask`, :func:`object_area`, :func:`object_extent`, :func:`foreground_colour` — the pixels
  that differ from that background, how many there are (small objects ≈ 120 px, big ones ≈ 330 px), the side
  of the box around them and their mean colour;
* :class:`SceneJudge` — a small CNN object classifier **fitted on freshly rendered ground-truth scenes** (never
  on model outputs), with blur, noise and a 16-px round trip as augmentation so that soft samples are judged
  fairly; it also carries the size threshold (object extent) fitted on the same scenes. :func:`scene_judge`
  gives the one that ``make teaching-models`` fitted (seed 0) and ships in ``weights/scene-judge`` (110 KB), so
  a notebook does not spend the 40–50 s of fitting; the quality tests fit their own, in the test.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from helpers.teaching import scenes as S
from helpers.teaching.common import WEIGHTS_DIR

JUDGE_FOLDER = WEIGHTS_DIR / "scene-judge"

FOREGROUND_DISTANCE = 0.12  # RGB distance (pixels in [0, 1]) from the background that counts as object


def _batch(images) -> torch.Tensor:
    """PIL images, (N, H, W, 3) arrays in [0, 1] or uint8, or (N, 3, H, W) tensors → (N, 3, 32, 32) float."""
    from PIL import Image

    if isinstance(images, Image.Image):
        images = [images]
    if isinstance(images, (list, tuple)) and images and isinstance(images[0], Image.Image):
        arr = np.stack([np.asarray(im.convert("RGB").resize((S.IMAGE_SIZE,) * 2, Image.Resampling.BICUBIC))
                        for im in images])
        return torch.from_numpy(arr).float().div(255).permute(0, 3, 1, 2)
    if isinstance(images, (list, tuple)):
        images = torch.stack([torch.as_tensor(np.asarray(im)) if not isinstance(im, torch.Tensor) else im
                              for im in images])
    if isinstance(images, np.ndarray):
        scale = 255.0 if images.dtype == np.uint8 else 1.0
        images = torch.from_numpy(images.astype(np.float32) / scale)
        if images.ndim == 3:
            images = images[None]
        if images.shape[-1] == 3:
            images = images.permute(0, 3, 1, 2)
    x = images.detach().float().cpu()
    if x.ndim == 3:
        x = x[None]
    if x.shape[-2:] != (S.IMAGE_SIZE, S.IMAGE_SIZE):
        x = F.interpolate(x, size=(S.IMAGE_SIZE, S.IMAGE_SIZE), mode="bilinear", antialias=True,
                          align_corners=False)
    return x.clamp(0, 1)


_PALETTE = torch.tensor([S.BACKGROUNDS[b] for b in S.BACKGROUND_NAMES], dtype=torch.float32) / 255


def background_colour(images) -> torch.Tensor:
    """(N, 3) median colour of each image's one-pixel border."""
    x = _batch(images)
    border = torch.cat([x[:, :, 0], x[:, :, -1], x[:, :, 1:-1, 0], x[:, :, 1:-1, -1]], dim=-1)
    return border.median(dim=-1).values


def background_of(images) -> np.ndarray:
    """(N,) index into ``scenes.BACKGROUND_NAMES`` of the nearest background colour."""
    return torch.cdist(background_colour(images), _PALETTE).argmin(dim=1).numpy()


def foreground_mask(images) -> torch.Tensor:
    """(N, 32, 32) bool: pixels farther than ``FOREGROUND_DISTANCE`` from the image's background colour."""
    x = _batch(images)
    bg = background_colour(x)[:, :, None, None]
    return (x - bg).norm(dim=1) > FOREGROUND_DISTANCE


def object_area(images) -> np.ndarray:
    """(N,) number of foreground pixels."""
    return foreground_mask(images).sum(dim=(1, 2)).numpy()


def object_box(images) -> np.ndarray:
    """(N, 2) height and width in pixels of the box around the foreground (rows / columns holding at least two
    foreground pixels, so stray noise pixels do not count)."""
    mask = foreground_mask(images)
    idx = torch.arange(mask.shape[-1])

    def side(m):
        hi = torch.where(m, idx, torch.tensor(-1)).max(dim=1).values
        lo = torch.where(m, idx, torch.tensor(10**6)).min(dim=1).values
        return (hi - lo + 1).clamp(min=0)

    return torch.stack([side(mask.sum(dim=2) >= 2), side(mask.sum(dim=1) >= 2)], dim=1).numpy()


def object_extent(images) -> np.ndarray:
    """(N,) the larger side of :func:`object_box`: ≈ 13 px for small objects, ≈ 22 px for big ones."""
    return object_box(images).max(axis=1).astype(np.float32)


def foreground_colour(images) -> np.ndarray:
    """(N, 3) mean RGB of the foreground pixels (the background colour where there are none)."""
    x = _batch(images)
    mask = foreground_mask(x)[:, None].float()
    total = mask.sum(dim=(2, 3))
    mean = (x * mask).sum(dim=(2, 3)) / total.clamp(min=1)
    return torch.where(total > 0, mean, background_colour(x)).numpy()


def _net() -> torch.nn.Module:
    def block(cin, cout):
        return [torch.nn.Conv2d(cin, cout, 3, padding=1), torch.nn.GroupNorm(8, cout), torch.nn.SiLU()]

    return torch.nn.Sequential(
        *block(3, 16), torch.nn.MaxPool2d(2), *block(16, 32), torch.nn.MaxPool2d(2),
        *block(32, 64), torch.nn.AdaptiveMaxPool2d(1), torch.nn.Flatten(), torch.nn.Linear(64, len(S.OBJECTS)),
    )


def _blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    k = torch.arange(-2, 3, dtype=torch.float32)
    k = torch.exp(-(k**2) / (2 * sigma**2))
    k = (k / k.sum()).repeat(3, 1)
    x = F.pad(x, (2, 2, 2, 2), mode="replicate")
    x = F.conv2d(x, k.view(3, 1, 1, 5), groups=3)
    return F.conv2d(x, k.view(3, 1, 5, 1), groups=3)


def _augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Blur (σ 0.6 or 1 px) or a 16-px round trip for a quarter of the batch each, noise, colour jitter."""
    n = len(x)
    q = n // 4
    x = torch.cat([
        x[:q],
        _blur(x[q:2 * q], 0.6),
        _blur(x[2 * q:3 * q], 1.0),
        F.interpolate(F.interpolate(x[3 * q:], size=(16, 16), mode="bilinear", antialias=True,
                                    align_corners=False), size=(32, 32), mode="bicubic", align_corners=False),
    ])
    gain = 1 + 0.1 * (torch.rand(n, 3, 1, 1, generator=gen) - 0.5)
    noise = 0.04 * torch.rand(n, 1, 1, 1, generator=gen) * torch.randn(x.shape, generator=gen)
    return (x * gain + noise).clamp(0, 1)


class SceneJudge:
    """Object classifier and size threshold fitted on fresh ground-truth scenes (``seed`` picks them).

    ``steps`` × 128 augmented scenes (the default 400 take 40–50 s on one CPU thread). ``object_accuracy`` is
    measured on another 1,000 fresh scenes and kept on the instance. :meth:`save` / :meth:`load` keep a fitted
    judge in a folder (``model.safetensors`` + ``judge.json``).
    """

    def __init__(self, seed: int = 0, steps: int = 400) -> None:
        self.seed, self.steps = seed, steps
        gen = torch.Generator().manual_seed(seed)
        torch.manual_seed(seed)
        fit = S.fresh_scenes(8_000, seed)
        extent = object_extent(fit.images)
        self.extent_threshold = float(np.mean([extent[fit.sizes.numpy() == k].mean() for k in (0, 1)]))
        self.net = _net()
        opt = torch.optim.AdamW(self.net.parameters(), lr=3e-3, weight_decay=1e-4)
        sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=3e-3, total_steps=steps, pct_start=0.15)
        labels = fit.objects
        self.net.train()
        for _ in range(steps):
            idx = torch.randint(0, len(fit), (128,), generator=gen)
            loss = F.cross_entropy(self.net(_augment(fit.images[idx], gen)), labels[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            sched.step()
        self.net.eval()
        check = S.fresh_scenes(1_000, seed + 1_000)
        self.object_accuracy = float((self.predict(check.images) == check.objects.numpy()).mean())

    def save(self, folder: str | Path) -> Path:
        """Write the fitted judge into ``folder`` (the classifier's weights, the size threshold, its accuracy)."""
        from safetensors.torch import save_file

        from helpers.media import atomic_write

        folder = Path(folder)
        info = {"seed": self.seed, "steps": self.steps, "extent_threshold": self.extent_threshold,
                "object_accuracy": self.object_accuracy}
        with atomic_write(folder / "model.safetensors") as tmp:  # each file whole, or not replaced
            save_file({k: v.contiguous() for k, v in self.net.state_dict().items()}, tmp)
        with atomic_write(folder / "judge.json") as tmp:
            tmp.write_text(json.dumps(info, indent=2) + "\n", encoding="utf-8")
        return folder

    @classmethod
    def load(cls, folder: str | Path) -> SceneJudge:
        """A judge that :meth:`save` wrote, without fitting."""
        from safetensors.torch import load_file

        folder = Path(folder)
        info = json.loads((folder / "judge.json").read_text(encoding="utf-8"))
        judge = cls.__new__(cls)
        judge.seed, judge.steps = info["seed"], info["steps"]
        judge.extent_threshold, judge.object_accuracy = info["extent_threshold"], info["object_accuracy"]
        judge.net = _net()
        judge.net.load_state_dict(load_file(folder / "model.safetensors"))
        judge.net.eval()
        return judge

    @torch.no_grad()
    def predict_proba(self, images) -> np.ndarray:
        """(N, 48) object probabilities."""
        x = _batch(images)
        return torch.cat([self.net(c).softmax(-1) for c in x.split(512)]).numpy()

    def predict(self, images) -> np.ndarray:
        """(N,) object indices."""
        return self.predict_proba(images).argmax(axis=1)

    def size_of(self, images) -> np.ndarray:
        """(N,) 0 for small, 1 for big (object extent against the fitted threshold)."""
        return (object_extent(images) > self.extent_threshold).astype(int)


@lru_cache(maxsize=2)
def scene_judge(seed: int = 0) -> SceneJudge:
    """One :class:`SceneJudge` per seed and process: for seed 0 the shipped one (fitted by
    ``make teaching-models`` exactly as ``SceneJudge(0)`` fits), for other seeds one fitted now."""
    if seed == 0 and (JUDGE_FOLDER / "judge.json").is_file():
        return SceneJudge.load(JUDGE_FOLDER)
    previous = torch.get_num_threads()
    try:
        return SceneJudge(seed)
    finally:
        torch.set_num_threads(previous)
