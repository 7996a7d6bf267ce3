"""The experiments behind the exercises of notebook 04_prompt_walks.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. Every walk is rendered as notebook
04 renders its walks: prompt embeddings along a path, the first row of ``negative`` as negative prompt, and
the one initial noise ``latent`` shared by every frame.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import Image

from helpers.devices import make_generator
from helpers.interpolation import cosine_schedule, interpolation_path, slerp, walk_around
from helpers.media import export_gif
from helpers.metrics import adjacent_distances, rmse, walk_report
from helpers.render import render_frames

RADII = (0.15, 0.3, 0.6, 1.2, 2.4)


def _render(pipe: Any, path: torch.Tensor, negative: torch.Tensor, latent: torch.Tensor, seed: int,
            render_kwargs: Mapping[str, Any]) -> list[Any]:
    return render_frames(pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1], latents=latent, seed=seed,
                         progress=False, **render_kwargs)


def cosine_walk(pipe: Any, embeds: torch.Tensor, negative: torch.Tensor, latent: torch.Tensor,
                frames: Sequence[Any], *, seed: int, render_kwargs: Mapping[str, Any]) -> tuple[bool, str]:
    """Exercise 1: the walk between the two prompts of ``embeds`` at ``helpers.cosine_schedule``'s fractions,
    against ``frames``, the same walk at evenly spaced fractions.

    Truth: whether the cosine walk's first and last steps (RMS pixel change, their mean) are the smaller.
    """
    cosine = _render(pipe, slerp(embeds[0], embeds[1], cosine_schedule(len(frames))), negative, latent, seed,
                     render_kwargs)
    cos_steps = adjacent_distances(cosine)
    lin_steps = adjacent_distances(frames)
    end_cos, end_lin = (cos_steps[0] + cos_steps[-1]) / 2, (lin_steps[0] + lin_steps[-1]) / 2
    return end_cos < end_lin, (
        f"first and last steps {cos_steps[0]:.3f}, {cos_steps[-1]:.3f} with the cosine schedule, {lin_steps[0]:.3f}, "
        f"{lin_steps[-1]:.3f} with the linear one; the cosine walk's largest step is between frames "
        f"{int(np.argmax(cos_steps))} and {int(np.argmax(cos_steps)) + 1} ({max(cos_steps):.3f}; the linear walk's "
        f"largest: {max(lin_steps):.3f})")


def closed_walk(pipe: Any, key_embeds: torch.Tensor, negative: torch.Tensor, latent: torch.Tensor, *,
                num_frames: int, seed: int, render_kwargs: Mapping[str, Any], out_dir: str | Path) -> tuple[bool, str]:
    """Exercise 2: a closed walk of ``num_frames`` frames through the prompts of ``key_embeds``, exported as
    ``three_prompt_loop.gif`` in ``out_dir`` and read back.

    Truth: whether the last frame repeats the first (RMS difference below 1e-3).
    """
    closed_frames = _render(pipe, interpolation_path(list(key_embeds), num_frames, method="slerp", closed=True),
                            negative, latent, seed, render_kwargs)
    gif = export_gif(closed_frames, Path(out_dir) / "three_prompt_loop.gif", fps=6)
    with Image.open(gif) as opened:
        gif_frames = getattr(opened, "n_frames", 1)  # an animated GIF has it
    report = walk_report(closed_frames, closed=True)
    gap = rmse(closed_frames[-1], closed_frames[0])
    return gap < 1e-3, (
        f"the last frame is {gap:.3f} (RMS) from the first; the wrap-around step is {report.closure_gap:.2f} mean "
        f"steps (1: an ordinary step, 0: a repeated frame); {gif.name} holds {gif_frames} frames for the "
        f"{len(closed_frames)} of the walk")


def loop_radius(pipe: Any, embeds: torch.Tensor, negative: torch.Tensor, latent: torch.Tensor,
                frames: Sequence[Any], *, seed: int, render_kwargs: Mapping[str, Any]) -> tuple[float | str, str]:
    """Exercise 3: loops of four frames around prompt A's embedding (``helpers.walk_around``, noise of ``seed``)
    at each radius of :data:`RADII`; ``frames`` is the walk from prompt A to prompt B, from the same noise.

    A loop is "no longer the prompt" when its frames are on average at least halfway (RMS) from A's picture
    (``frames[0]``) to B's (``frames[-1]``). Truth: the smallest such radius, or ``"none"``.
    """
    loops = torch.cat([walk_around(embeds[0], 4, radius=r, generator=make_generator(seed)) for r in RADII])
    pictures = _render(pipe, loops, negative, latent, seed, render_kwargs)
    halfway = rmse(frames[0], frames[-1]) / 2
    away = {r: float(np.mean([rmse(f, frames[0]) for f in pictures[4 * i:4 * i + 4]])) for i, r in enumerate(RADII)}
    gone: float | str = next((r for r in RADII if away[r] >= halfway), "none")
    return gone, ("mean RMS from the prompt's picture: " + ", ".join(f"radius {r:g}: {d:.3f}" for r, d in away.items())
                  + f"; halfway to prompt B's picture is {halfway:.3f}, so the loop stops looking like the prompt at "
                  + (f"radius {gone:g}" if gone != "none" else "none of these radii"))
