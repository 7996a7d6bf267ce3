"""The experiments behind the exercises of notebook 02_slerp_and_latent_geometry.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from helpers.backends import Backend
from helpers.devices import make_generator
from helpers.embeddings import encode_prompts
from helpers.interpolation import lerp, linear_schedule
from helpers.interpolation import slerp as slerp_path
from helpers.render import render_frames

NUDGES = (1e-1, 1e-2, 1e-3, 1e-4, 1e-5, 1e-6)


def _naive_slerp(a: torch.Tensor, b: torch.Tensor, frac: float) -> torch.Tensor:
    """The textbook formula with no fallback (notebook 02, section 4)."""
    cos = (a * b).sum() / (a.norm() * b.norm())
    theta = torch.arccos(cos.clamp(-1, 1))
    return (torch.sin((1 - frac) * theta) * a + torch.sin(frac * theta) * b) / torch.sin(theta)


def nudged_noise(a: torch.Tensor, *, seed: int) -> tuple[float, str]:
    """Exercise 1: ``b = a + ε·n`` (``n`` fresh noise from ``seed``) for each ε of :data:`NUDGES`.

    Truth: the largest ε at which ``helpers.slerp`` falls back to lerp (1 − cos below 5e-4, in float32). The
    explanation also says where the naive formula's error against float64 reaches 1e-3.
    """
    n = torch.randn(a.shape, generator=make_generator(seed))
    gaps, naive_errors = {}, {}  # 1 − cos in float32, as the formulas compute it; the naive formula's error
    for eps in NUDGES:
        b_near = a + eps * n
        gaps[eps] = float(1 - (a * b_near).sum() / (a.norm() * b_near.norm()))
        exact = _naive_slerp(a.double(), b_near.double(), 0.5)  # the same formula in float64
        naive_errors[eps] = float((_naive_slerp(a, b_near, 0.5).double() - exact).norm() / exact.norm())
    largest = max(eps for eps in NUDGES if gaps[eps] < 1 - 0.9995)
    broken = [eps for eps in NUDGES if not naive_errors[eps] < 1e-3]  # nan counts as broken
    return largest, (
        "1 − cos in float32: " + ", ".join(f"ε={eps:g}: {gaps[eps]:.1e}" for eps in NUDGES)
        + f"; helpers.slerp falls back to lerp (1 − cos < 5e-4) from ε = {largest:g} down. The naive formula is "
        + (f"broken (nan, or a relative error ≥ 1e-3 against float64) at ε = {', '.join(f'{e:g}' for e in broken)}, "
           f"where 1 − cos rounds to {', '.join(f'{gaps[e]:.1e}' for e in broken)}" if broken else
           "accurate (error < 1e-3 against float64) at every ε here"))


def _to_shell(path: torch.Tensor, radius: float) -> torch.Tensor:
    return path * radius / path.flatten(1).norm(dim=1).reshape(-1, *([1] * (path.dim() - 1)))


def _largest_mean_gap(frames_x: Sequence[Any], frames_y: Sequence[Any]) -> float:
    return max(float(np.abs(np.asarray(p, np.float32) - np.asarray(q, np.float32)).mean() / 255)
               for p, q in zip(frames_x, frames_y))


def normalised_lerp(backend: Backend, a: torch.Tensor, b: torch.Tensor, embeds: torch.Tensor,
                    negative: torch.Tensor, lerp_frames: Sequence[Any], slerp_frames: Sequence[Any], *,
                    seed: int, steps: int | None = None) -> tuple[str, str]:
    """Exercise 2: lerp rescaled to the shell's radius √d, against slerp, between the noises ``a`` and ``b``.

    Measures the angle between the two paths at 101 fractions, and renders the rescaled walk at the fractions
    of ``lerp_frames``/``slerp_frames`` (notebook 02's walks, with ``embeds``, ``negative``, ``seed`` and
    ``steps``) to compare pixels. Truth: ``"middle"`` if the angle peaks at λ in [0.375, 0.625], else
    ``"quarters"``.
    """
    radius = math.sqrt(a.numel())
    fine = np.linspace(0, 1, 101, dtype=np.float32)
    slerped = slerp_path(a, b, fine)
    nlerped = _to_shell(lerp(a, b, fine), radius)
    cos = torch.nn.functional.cosine_similarity(nlerped.flatten(1), slerped.flatten(1), dim=1)
    angle = torch.rad2deg(torch.arccos(cos.clamp(-1, 1))).numpy()
    far_frac = float(fine[int(np.argmax(angle))])
    fracs = linear_schedule(len(slerp_frames))
    nlerp_frames = render_frames(backend.pipe, prompt_embeds=embeds.expand(len(fracs), -1, -1),
                                 negative_prompt_embeds=negative, latents=_to_shell(lerp(a, b, fracs), radius),
                                 seed=seed, progress=False, **backend.render_kwargs(steps))
    return "middle" if 0.375 <= far_frac <= 0.625 else "quarters", (
        f"the normalised lerp is farthest from slerp at λ = {far_frac:.2f} ({angle.max():.2f}°; "
        f"{angle[50]:.2f}° at λ = 0.5); the largest mean pixel difference from slerp's frames is "
        f"{_largest_mean_gap(nlerp_frames, slerp_frames):.3f} (plain lerp: "
        f"{_largest_mean_gap(lerp_frames, slerp_frames):.3f})")


def inversion_steps(backend: Backend, images: Sequence[Any], inverted: torch.Tensor, recon: Sequence[Any], *,
                    seed: int, steps: int | None = None) -> tuple[str, str]:
    """Exercise 3: invert ``images`` with twice the steps and render them back (empty prompt, guidance 1).

    ``inverted`` and ``recon`` are notebook 02's inversion with ``steps`` (None: the backend's) and its
    reconstruction, rendered from ``seed``. Truth: ``"down"`` if the reconstruction's mean squared error
    against the inputs falls with twice the steps, else ``"up"``.
    """
    steps_once = steps or backend.steps
    empty, _ = encode_prompts(backend.pipe, [""])
    inverted_twice = backend.invert(images, steps=2 * steps_once)
    recon_twice = render_frames(backend.pipe, prompt_embeds=empty.expand(len(images), -1, -1),
                                latents=inverted_twice, seed=seed, progress=False,
                                **backend.render_kwargs(2 * steps_once, guidance_scale=1.0))
    inputs = [im.resize(recon[0].size) for im in images]

    def recon_error(frames: Sequence[Any]) -> float:
        return float(np.mean([((np.asarray(p, np.float32) - np.asarray(q, np.float32)) / 255) ** 2
                              for p, q in zip(frames, inputs)]))

    err_once, err_twice = recon_error(recon), recon_error(recon_twice)
    return "down" if err_twice < err_once else "up", (
        f"reconstruction MSE {err_once:.4f} with {steps_once} steps, {err_twice:.4f} with {2 * steps_once}; the "
        f"latents' std {inverted.std():.3f} → {inverted_twice.std():.3f} (fresh noise: 1)")
