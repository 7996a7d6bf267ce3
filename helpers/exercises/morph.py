"""The experiments behind the exercises of notebook 08_morph_your_own_images.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`. ``inversion`` is the notebook's
caption inversion of the two images (:func:`helpers.morph.invert_images`).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from helpers import morph
from helpers.metrics import WalkReport
from helpers.smooth import retime


def attention_steps_zero(pipe: Any, inversion: morph.ImageInversion, fracs: Sequence[float], adain: np.ndarray, *,
                         attention: str) -> tuple[bool, str]:
    """Exercise 1: the AdaIN morph with ``attention`` interpolation installed but ``attention_steps=0``, against
    ``adain``, the AdaIN morph without it (the same ``fracs``).

    Truth: whether the frames are equal (largest pixel difference below 1e-4).
    """
    off = morph.render_morph(pipe, inversion, fracs, noise="adain", attention=attention, attention_steps=0.0,
                             progress=False)
    gap = float(np.abs(off - adain).max())
    return gap < 1e-4, f"the largest pixel difference is {gap:.1e}"


def guided_endpoints(pipe: Any, inversion: morph.ImageInversion, *, guidance_scale: float = 3.0) -> tuple[str, str]:
    """Exercise 2: the morph's endpoints rendered at ``guidance_scale`` against guidance 1, both compared with
    the inverted images.

    Truth: ``"up"`` if the endpoint error is larger at ``guidance_scale``, else ``"down"``.
    """
    err_plain = morph.endpoint_error(morph.render_morph(pipe, inversion, [0.0, 1.0], progress=False), inversion)
    guided = morph.render_morph(pipe, inversion, [0.0, 1.0], guidance_scale=guidance_scale, progress=False)
    err_guided = morph.endpoint_error(guided, inversion)
    return "up" if err_guided > err_plain else "down", (
        f"endpoint MSE {err_plain:.4f} at guidance 1, {err_guided:.4f} at guidance {guidance_scale:g}")


def naive_retimed(pipe: Any, inversion: morph.ImageInversion, num_frames: int, *, coarse: int, budget: int,
                  full: WalkReport) -> tuple[bool, str]:
    """Exercise 3: re-time the naive morph (no AdaIN, no attention) at ``budget``; ``full`` is the report of the
    full method (AdaIN, attention and re-timing).

    Truth: whether the two come out as even, 1 − Gini within 0.02.
    """
    naive = retime(lambda fracs: morph.render_morph(pipe, inversion, fracs, progress=False), num_frames,
                   coarse=coarse, budget=budget)
    close = abs(naive.report.smoothness - full.smoothness) <= 0.02
    return close, (f"1 - Gini {naive.report.smoothness:.3f} for the re-timed naive morph, {full.smoothness:.3f} for "
                   "the full method")
