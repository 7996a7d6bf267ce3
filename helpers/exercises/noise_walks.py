"""The experiments behind the exercises of notebook 05_circular_noise_walks.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. ``noises`` are the notebook's seed
noises, (S, C, H, W) on the CPU; distances between latents are divided by √d, d the size of one latent.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from helpers.interpolation import circular_walk, interpolation_path, linear_schedule, slerp
from helpers.metrics import adjacent_distances
from helpers.render import render_frames

STEP_RATIOS = (1, 2, 4)


def _steps(x: torch.Tensor, *, closed: bool) -> torch.Tensor:
    """|Δ latent|/√d between consecutive latents; ``closed``: the last one is the wrap-around back to the first."""
    nxt = torch.roll(x, -1, dims=0) if closed else x[1:]
    return (x[:len(nxt)] - nxt).flatten(1).norm(dim=1) / math.sqrt(x[0].numel())


def _turns(x: torch.Tensor) -> torch.Tensor:
    """The angle (degrees) a closed path turns at each frame: between the step into it and the step out of it."""
    step_out = (torch.roll(x, -1, dims=0) - x).flatten(1)
    cos = torch.nn.functional.cosine_similarity(torch.roll(step_out, 1, dims=0), step_out, dim=1)
    return torch.rad2deg(torch.arccos(cos.clamp(-1, 1)))


def _cv(values: torch.Tensor) -> float:
    return float(values.std() / values.mean())


def three_seed_loop(noises: torch.Tensor, num_frames: int) -> tuple[str, str]:
    """Exercise 1: a closed ``interpolation_path`` through the first three noises against ``circular_walk``
    through the first two, both of ``num_frames`` frames.

    Truth: ``"turns"`` if the three-seed loop's CV of the turning angles exceeds the circle's by more than its
    CV of the step sizes does, else ``"sizes"``.
    """
    loop = circular_walk(noises[0], noises[1], num_frames)
    three = interpolation_path(list(noises[:3]), num_frames, closed=True)
    size_gap = _cv(_steps(three, closed=True)) - _cv(_steps(loop, closed=True))
    turn_gap = _cv(_turns(three)) - _cv(_turns(loop))
    seed_frames = [i for i in range(num_frames) if any(torch.allclose(three[i], z, atol=1e-4) for z in noises[:3])]
    corners = [i for i, angle in enumerate(_turns(three)) if angle > 2 * _turns(three).median()]
    return "turns" if turn_gap > size_gap else "sizes", (
        f"step-size CV {_cv(_steps(three, closed=True)):.3f} through three seeds, "
        f"{_cv(_steps(loop, closed=True)):.3f} for circular_walk; the three-seed loop turns by "
        f"{float(_turns(three).min()):.0f}° to {float(_turns(three).max()):.0f}° (turn CV {_cv(_turns(three)):.2f}), "
        f"circular_walk by {float(_turns(loop).min()):.0f}° to {float(_turns(loop).max()):.0f}° (turn CV "
        f"{_cv(_turns(loop)):.2f}); the sharpest turns are at frames {corners}, the seeds are frames {seed_frames}")


def half_norm(pipe: Any, noises: torch.Tensor, embeds: torch.Tensor, negative: torch.Tensor, *, num_frames: int,
              seed: int, render_kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """Exercise 2: ``circular_walk(noises[0], 0.5 * noises[1], num_frames)``; renders ±½·x₁ (θ = 90° and 270°,
    the shortest latents) and ±x₁ with the prompt ``embeds`` and ``negative``, from ``seed``.

    Truth: ``"lower"`` if the pictures' contrast (pixel standard deviation) is lower at half norm, else
    ``"higher"``.
    """
    short_norms = circular_walk(noises[0], 0.5 * noises[1], num_frames).flatten(1).norm(dim=1)
    short_norms = short_norms / math.sqrt(noises[0].numel())
    quarter = torch.stack([noises[1], -noises[1]])  # θ = 90° and 270° of the loop: ±x₁
    latents = torch.cat([0.5 * quarter, quarter])
    pictures = render_frames(pipe, prompt_embeds=embeds.expand(len(latents), -1, -1), negative_prompt_embeds=negative,
                             latents=latents, seed=seed, progress=False, **render_kwargs)
    contrast = [float(np.asarray(p, np.float32).std() / 255) for p in pictures]
    half, full = np.mean(contrast[:2]), np.mean(contrast[2:])
    change = np.mean([np.sqrt(((np.asarray(p, np.float32) / 255 - np.asarray(q, np.float32) / 255) ** 2).mean())
                      for p, q in zip(pictures[:2], pictures[2:])])
    return "lower" if half < full else "higher", (
        f"|latent|/√d runs from {float(short_norms.min()):.2f} to {float(short_norms.max()):.2f} along the loop; at "
        f"θ = 90° and 270° the contrast is {half:.3f} at half norm, {full:.3f} at full norm, and halving the norm "
        f"changes those pictures by {change:.3f} RMS")


def loop_step(noises: torch.Tensor, seed_frames: Sequence[Any], loop_frames: Sequence[Any]) -> tuple[int, str]:
    """Exercise 3: the step between consecutive frames of the loop ``circular_walk(noises[0], noises[1], N)``
    against the seed walk ``slerp(noises[0], noises[1], linear_schedule(N))``, N frames each.

    ``seed_frames`` and ``loop_frames`` are the two walks rendered (notebook 05, sections 1 and 2). Truth: the
    ratio of the loop's mean latent step (|Δ latent|/√d, the wrap-around included) to the seed walk's, rounded
    to the nearest of :data:`STEP_RATIOS` (on a log scale).
    """
    num_frames = len(loop_frames)
    if len(seed_frames) != num_frames:
        raise ValueError(f"seed_frames and loop_frames must be walks of the same length, got {len(seed_frames)} "
                         f"and {num_frames} frames")
    loop_latent = float(_steps(circular_walk(noises[0], noises[1], num_frames), closed=True).mean())
    walk_latent = float(_steps(slerp(noises[0], noises[1], linear_schedule(num_frames)), closed=False).mean())
    ratio = loop_latent / walk_latent
    nearest = min(STEP_RATIOS, key=lambda r: abs(math.log(ratio / r)))
    loop_px, walk_px = adjacent_distances([*loop_frames, loop_frames[0]]).mean(), adjacent_distances(seed_frames).mean()
    return nearest, (
        f"|Δ latent|/√d per step: {loop_latent:.3f} around the loop (360° in {num_frames} steps), {walk_latent:.3f} "
        f"along the seed walk (x₀ to x₁, about 90°, in {num_frames - 1} steps): {ratio:.2f} times as large. The "
        f"picture changes by {loop_px:.3f} RMS per frame around the loop, {walk_px:.3f} along the seed walk "
        f"({loop_px / walk_px:.2f} times); a loop with steps as small as the seed walk's needs about "
        f"{round(num_frames * ratio)} frames")
