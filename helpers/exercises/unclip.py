"""The experiments behind the exercises of notebook 03_unclip_image_interpolation.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. ``judge`` is the teaching world's
scene judge (:func:`helpers.teaching.judge.scene_judge`); objects are named as in
:data:`helpers.teaching.scenes.OBJECT_NAMES`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from helpers.interpolation import lerp, linear_schedule
from helpers.render import render_frames
from helpers.teaching import scenes


def decoder_seeds(pipe: Any, path: torch.Tensor, judge: Any, *, seed: int,
                  render_kwargs: Mapping[str, Any]) -> tuple[bool, str]:
    """Exercise 1: decode the first, middle and last embedding of ``path`` with the decoder noise of ``seed`` and
    of the next three seeds; the judge reads each frame.

    Truth: whether the judge reads the same two objects at the ends with every seed.
    """
    ends = [0, len(path) // 2, len(path) - 1]  # the first, middle and last frame of the walk
    readings, spread = {}, []
    for s in (seed, seed + 1, seed + 2, seed + 3):
        seed_frames = render_frames(pipe, image_embeddings=path[ends], seed=s, progress=False, **render_kwargs)
        readings[s] = [scenes.OBJECT_NAMES[k] for k in judge.predict(seed_frames)]
        spread.append(np.stack([np.asarray(f, np.float32) / 255 for f in seed_frames]))
    same_ends = all([r[0], r[-1]] == [readings[seed][0], readings[seed][-1]] for r in readings.values())
    middles = {r[1] for r in readings.values()}
    return same_ends, (
        "the judge reads (first, middle, last frame) " + "; ".join(f"seed {s}: {', '.join(r)}"
                                                                   for s, r in readings.items())
        + f"; the pixels differ across the seeds by {np.std(spread, axis=0).mean():.3f} on average (std, pixels in "
        f"[0, 1]). The ends {'keep' if same_ends else 'do not keep'} their objects across the seeds, and the middle "
        f"frame is read as {len(middles)} object(s) over the four seeds")


def text_diff_judged(diff_frames: Sequence[Any], fracs: Sequence[float], judge: Any, *,
                     image_object: str) -> tuple[str, str]:
    """Exercise 2: the judge's probability of ``image_object`` (image A's) along the text diff's frames.

    ``diff_frames`` are rendered at the fractions ``fracs``. Truth: ``"by 0.5"`` if it first falls below one
    half at λ ≤ 0.5, ``"after 0.5"`` if later, ``"never"`` if it does not.
    """
    index = scenes.object_index(image_object)
    p_diff = judge.predict_proba(diff_frames)
    below = [float(x) for x, p_a in zip(fracs, p_diff[:, index]) if p_a < 0.5]
    when = "never" if not below else ("by 0.5" if below[0] <= 0.5 else "after 0.5")
    last = int(np.argmax(p_diff[-1]))
    return when, (
        f"P({image_object}) along the text diff: " + ", ".join(f"{p:.2f}" for p in p_diff[:, index])
        + (f"; it first falls below 0.5 at λ = {below[0]:.3f}" if below else "; it never falls below 0.5")
        + f". At λ = 1 the judge's best guess is {scenes.OBJECT_NAMES[last]!r} with probability "
        f"{p_diff[-1, last]:.2f}")


def lerp_switch(pipe: Any, embeds: torch.Tensor, slerp_frames: Sequence[Any], judge: Any, *,
                objects: tuple[str, str], seed: int, render_kwargs: Mapping[str, Any]) -> tuple[str, str]:
    """Exercise 3: render the lerp walk between the two image embeddings ``embeds`` with the decoder noise of
    ``seed`` and compare the judge's switch from ``objects[0]`` to ``objects[1]`` with the slerp walk's
    (``slerp_frames``, at the same evenly spaced fractions).

    Truth: ``"sharper"`` if lerp's largest jump of P(B) − P(A) between neighbouring frames is the larger, else
    ``"smoother"``.
    """
    index_a, index_b = scenes.object_index(objects[0]), scenes.object_index(objects[1])
    fracs = linear_schedule(len(slerp_frames))
    path_lerp = lerp(embeds[0], embeds[1], fracs)
    lerp_frames = render_frames(pipe, image_embeddings=path_lerp, seed=seed, progress=False, **render_kwargs)

    def largest_jump(frames: Sequence[Any]) -> float:
        p = judge.predict_proba(frames)
        return float(np.abs(np.diff(p[:, index_b] - p[:, index_a])).max())

    jump_slerp, jump_lerp = largest_jump(slerp_frames), largest_jump(lerp_frames)
    cos = torch.nn.functional.cosine_similarity(embeds[0], embeds[1], dim=0)
    middle = float(path_lerp[len(fracs) // 2].norm() / embeds[0].norm(dim=-1))
    return "sharper" if jump_lerp > jump_slerp else "smoother", (
        f"the largest jump of P({objects[1]}) − P({objects[0]}) between neighbouring frames is {jump_lerp:.2f} "
        f"with lerp, {jump_slerp:.2f} with slerp (the embeddings are {torch.rad2deg(torch.arccos(cos)):.0f}° "
        f"apart; lerp's midpoint has {middle:.2f} of A's norm)")
