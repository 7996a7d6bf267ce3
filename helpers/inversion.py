"""DDIM inversion, once for every model: the deterministic DDIM update run upwards, from an image towards noise.

Introduced in notebook 02_slerp_and_latent_geometry (where the loop is written out by hand). Stable Diffusion
(:func:`helpers.morph.invert_images`, :func:`helpers.backends.ddim_invert`) and both stages of unCLIP
(:func:`helpers.unclip.invert`) call :func:`ddim_inversion` with their own noise prediction; the scheduler is
diffusers' ``DDIMInverseScheduler`` on the model's own noise schedule. The one approximation is DDIM inversion's:
the noise predicted at the lower timestep is used for the step up.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

#: ``noise(sample, t, i)``: the model's noise prediction for ``sample`` at timestep ``t`` (step ``i`` of the loop).
NoiseFn = Callable[[torch.Tensor, torch.Tensor, int], torch.Tensor]


@torch.no_grad()
def ddim_inversion(noise: NoiseFn, scheduler: Any, sample: torch.Tensor, num_inference_steps: int) -> torch.Tensor:
    """Run ``scheduler`` (a ``DDIMInverseScheduler``) for ``num_inference_steps`` steps from the clean ``sample``
    up to noise, with ``noise`` predicting each step's noise; returns the inverted sample.

    Introduced in notebook 02_slerp_and_latent_geometry.
    """
    scheduler.set_timesteps(num_inference_steps, device=sample.device)
    for i, t in enumerate(scheduler.timesteps):
        sample = scheduler.step(noise(sample, t, i), t, sample).prev_sample
    return sample
