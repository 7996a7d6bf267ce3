"""The experiments behind the exercises of notebook 10_flow_matching.

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch

from helpers import morph
from helpers.devices import make_generator
from helpers.metrics import WalkReport, walk_report
from helpers.teaching import toy_flow


def shuffled_couples(pairs: tuple[torch.Tensor, torch.Tensor], noise: torch.Tensor, flow_path: torch.Tensor,
                     reflow_path: torch.Tensor, *, toy_steps: int, seed: int) -> tuple[bool, str]:
    """Exercise 1: train a toy flow model on the reflow couples ``pairs`` paired at random (a permutation drawn
    from ``seed + 3``), as notebook 10 trains the reflowed model (``toy_steps`` steps, ``seed + 1``), and sample
    it from ``noise`` with 50 Euler steps. ``flow_path`` and ``reflow_path`` are the first and the reflowed
    model's trajectories from the same noise.

    Truth: whether the new model's mean straightness is above 0.9.
    """
    perm = torch.randperm(len(pairs[0]), generator=make_generator(seed + 3))
    shuffled, _ = toy_flow.train_toy_flow(toy_steps, seed=seed + 1, pairs=(pairs[0], pairs[1][perm]), progress=False)
    _, path = toy_flow.euler_sample(shuffled, len(noise), noise=noise, num_inference_steps=50, return_trajectory=True)
    straight = toy_flow.mean_straightness(path)
    return straight > 0.9, (f"mean straightness {straight:.2f} on shuffled couples, "
                            f"{toy_flow.mean_straightness(reflow_path):.2f} on the reflow couples, "
                            f"{toy_flow.mean_straightness(flow_path):.2f} for the first model")


def attention_half(pipe: Any, inversion: morph.ImageInversion, fracs: Sequence[float], *, plain: WalkReport,
                   full: WalkReport) -> tuple[str, str]:
    """Exercise 2: the flow model's morph with attention interpolation (``"inner"``) on the first half of the
    steps only; ``plain`` and ``full`` are the reports of the morph without it and with it on every step.

    Truth: ``"full"`` if its 1 − Gini lands closer to ``full``'s, else ``"plain"``.
    """
    half = morph.render_morph(pipe, inversion, fracs, attention="inner", attention_steps=0.5, progress=False)
    even = walk_report(half).smoothness
    return ("full" if abs(even - full.smoothness) < abs(even - plain.smoothness) else "plain",
            f"1 − Gini: plain slerp {plain.smoothness:.3f}, attention on the first half of the steps {even:.3f}, "
            f"on all {full.smoothness:.3f}")
