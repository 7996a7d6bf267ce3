"""The experiments behind the exercises of notebook 07_smooth_interpolation.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. A walk is given, as to
:func:`helpers.smooth.retime`, by a function from fractions λ to frames; ``before`` is the report of the
walk at uniform λ and ``retimed`` what ``retime`` made of it at ``budget``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import numpy as np
import torch

from helpers.backends import Backend
from helpers.embeddings import make_latents
from helpers.metrics import WalkReport, walk_report
from helpers.render import render_frames
from helpers.smooth import RenderFn as Render
from helpers.smooth import Retimed, adain_interpolate, retime


def reusing(render: Render) -> Render:
    """``render`` that keeps every frame it made, so that several re-timings of one walk share their renders."""
    made: dict[float, Any] = {}

    def render_fracs(fracs: Any) -> np.ndarray:
        todo = [float(x) for x in fracs if float(x) not in made]
        if todo:
            made.update(zip(todo, render(np.asarray(todo))))
        return np.stack([made[float(x)] for x in fracs])

    return render_fracs


def budgets(render: Render, num_frames: int, before: WalkReport, retimed: Retimed, *, coarse: int,
            budget: int) -> tuple[bool, str]:
    """Exercise 1: re-time the walk with ``method="bisect"`` at ``budget``, then (invert) at the tightest budget
    retime accepts, ``coarse + num_frames - 2``.

    Truth: whether the tightest budget keeps more than half of ``retimed``'s improvement in CV.
    """
    bisected = retime(render, num_frames, coarse=coarse, budget=budget, method="bisect")
    tight = coarse + num_frames - 2
    tightest = retime(render, num_frames, coarse=coarse, budget=tight)
    gain = before.cv - retimed.report.cv
    kept = (before.cv - tightest.report.cv) / gain if gain > 0 else math.nan
    return kept > 0.5, (f"CV {before.cv:.3f} at uniform λ; at budget {budget}: {retimed.report.cv:.3f} (invert), "
                        f"{bisected.report.cv:.3f} (bisect); at budget {tight}: {tightest.report.cv:.3f}, "
                        f"{kept:.0%} of the improvement")


def ssim_metric(render: Render, num_frames: int, walk: Sequence[Any], before: WalkReport, retimed: Retimed, *,
                coarse: int, budget: int) -> tuple[bool, str]:
    """Exercise 2: re-time the walk with ``metric="ssim"``; ``walk`` is its frames at uniform λ.

    Truth: whether the SSIM re-timing's CV under RMSE is lower than the uniform walk's.
    """
    ssim = retime(render, num_frames, metric="ssim", coarse=coarse, budget=budget)
    ssim_rmse = walk_report(ssim.frames)
    ssim_of = {name: walk_report(f, metric="ssim").cv for name, f in
               (("uniform", walk), ("RMSE re-timed", retimed.frames), ("SSIM re-timed", ssim.frames))}
    return ssim_rmse.cv < before.cv, (
        f"RMSE CV: {before.cv:.3f} uniform, {retimed.report.cv:.3f} re-timed by RMSE, {ssim_rmse.cv:.3f} re-timed by "
        f"SSIM; 1 − SSIM CV: " + ", ".join(f"{v:.3f} {k}" for k, v in ssim_of.items())
        + f"; the two re-timings' fractions differ by up to {np.abs(ssim.ts - retimed.ts).max():.3f}")


def noise_loop(backend: Backend, embeds: torch.Tensor, negative: torch.Tensor, *, seed: int, steps: int | None,
               num_frames: int, coarse: int, budget: int) -> tuple[bool, str]:
    """Exercise 3: the noise loop x(λ) = cos(2πλ)·x₀ + sin(2πλ)·x₁ (the noises of ``seed`` and ``seed + 1``)
    with prompt A (``embeds[0]``), rendered with the ``backend``'s settings (``steps``: None for its default), at
    uniform λ and re-timed with ``closed=True``.

    Truth: whether re-timing brings the loop's closure gap closer to 1.
    """
    pipe, render_kwargs = backend.pipe, backend.render_kwargs(steps)
    x0, x1 = make_latents(pipe, [seed, seed + 1], height=backend.height, width=backend.width)

    def render_loop(fracs: Any) -> Any:
        latents = torch.stack([math.cos(2 * math.pi * x) * x0 + math.sin(2 * math.pi * x) * x1 for x in fracs])
        return render_frames(pipe, prompt_embeds=embeds[:1].expand(len(latents), -1, -1),
                             negative_prompt_embeds=negative[:1], latents=latents, seed=seed, progress=False,
                             output_type="np", **render_kwargs)

    loop_at = reusing(render_loop)
    loop_before = walk_report(loop_at(np.arange(num_frames) / num_frames), closed=True)
    loop_after = retime(loop_at, num_frames, closed=True, coarse=coarse, budget=budget).report
    return abs(loop_after.closure_gap - 1) < abs(loop_before.closure_gap - 1), (
        f"closure gap {loop_before.closure_gap:.2f} → {loop_after.closure_gap:.2f}, CV {loop_before.cv:.3f} → "
        f"{loop_after.cv:.3f}")


def adain_retimed(render_morph: Callable[..., Any], morph_retimed: Retimed, morph_adain: Sequence[Any],
                  morph_before: WalkReport) -> tuple[bool, str]:
    """Exercise 4: render the morph at ``morph_retimed``'s fractions with AdaIN noises
    (``render_morph(fracs, noise=helpers.adain_interpolate)``); ``morph_adain`` is the AdaIN morph at uniform λ
    and ``morph_before`` the slerp morph's report.

    Truth: whether the re-timed fractions give the AdaIN morph a lower CV than uniform λ.
    """
    retimed_report = walk_report(render_morph(morph_retimed.ts, noise=adain_interpolate))
    uniform_report = walk_report(morph_adain)
    return retimed_report.cv < uniform_report.cv, (
        f"CV of the AdaIN morph {uniform_report.cv:.3f} at uniform λ, {retimed_report.cv:.3f} at the re-timed λ "
        f"(the slerp morph: {morph_before.cv:.3f} → {morph_retimed.report.cv:.3f})")
