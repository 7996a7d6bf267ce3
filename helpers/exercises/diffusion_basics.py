"""The experiments behind the exercises of notebook 01_diffusion_basics (the toy 2-D model and the VAE).

Each returns ``(truth, explanation)`` for :func:`helpers.exercises.check`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from helpers.devices import make_generator
from helpers.teaching import toy2d

STEP_COUNTS = (5, 10, 20, 50, 100)


def _ddim_fit(model: torch.nn.Module, num_points: int, seed: int, num_inference_steps: int) -> float:
    """Fit ratio of DDIM samples drawn from the noise of ``seed`` (notebook 01, section 4)."""
    xy = toy2d.sample_toy(model, toy2d.make_scheduler(), num_points, generator=make_generator(seed),
                          scheduler_kind="ddim", num_inference_steps=num_inference_steps)
    assert isinstance(xy, torch.Tensor)  # no trajectory asked for
    return toy2d.fit_ratio(xy)


def short_training(model: torch.nn.Module, *, trained_steps: int, num_points: int, seed: int,
                   short_steps: int = 200) -> tuple[str, str]:
    """Exercise 1: train a toy model for ``short_steps`` and compare its DDIM-50 fit ratio with ``model``'s.

    ``model`` was trained for ``trained_steps`` (for the printed sentence); both sample ``num_points`` points from
    the noise of ``seed``. Truth: ``"higher"`` or ``"lower"`` (the short model's fit ratio against ``model``'s).
    """
    short_model, _, _ = toy2d.train_toy(steps=short_steps, seed=seed, progress=False)
    short_fit, trained_fit = _ddim_fit(short_model, num_points, seed, 50), _ddim_fit(model, num_points, seed, 50)
    return ("higher" if short_fit > trained_fit else "lower",
            f"DDIM 50 fit ratio {short_fit:.2f} after {short_steps} training steps, {trained_fit:.2f} after "
            f"{trained_steps}")


def ddim_steps(model: torch.nn.Module, *, num_points: int, seed: int) -> tuple[int, str]:
    """Exercise 2: the fewest DDIM steps of :data:`STEP_COUNTS` whose fit ratio is within 0.05 of the best."""
    fits = {n: _ddim_fit(model, num_points, seed, n) for n in STEP_COUNTS}
    enough = min(n for n, f in fits.items() if f <= min(fits.values()) + 0.05)
    return enough, ("fit ratios " + ", ".join(f"{n} steps {f:.2f}" for n, f in fits.items())
                    + f": {enough} steps is the fewest within 0.05 of the best")


def _neighbour_correlation(change: torch.Tensor) -> float:
    """Correlation between horizontally and vertically adjacent pixels of a (C, H, W) tensor."""
    x = change.float().cpu()
    pairs = ((x[:, :, :-1], x[:, :, 1:]), (x[:, :-1, :], x[:, 1:, :]))
    return float(np.mean([torch.corrcoef(torch.stack([p.flatten(), q.flatten()]))[0, 1] for p, q in pairs]))


@torch.no_grad()
def noise_texture(pipe: Any, pixels: torch.Tensor, *, seed: int, timestep: int = 500) -> tuple[bool, str]:
    """Exercise 3: what noise added to the VAE latent at ``timestep`` changes in the decoded image, against noise
    added to the pixels; both measured by the correlation of neighbouring pixels of the change.

    ``pixels`` is the (1, 3, H, W) image in [-1, 1] that notebook 01 encodes; the noise of both is drawn from
    ``seed``, and the signal share √ᾱ_t is subtracted so that only the noise's own effect is left. Truth: whether
    the latent noise's change is the more correlated.
    """
    scheduler = toy2d.make_scheduler()  # notebook 01's DDPM schedule
    vae, sf = pipe.vae, pipe.vae.config.scaling_factor
    latent = vae.encode(pixels.to(pipe.device, vae.dtype)).latent_dist.mean * sf
    t = torch.tensor([timestep])
    keep = scheduler.alphas_cumprod[timestep].sqrt()
    z_noise = torch.randn(latent.shape, generator=make_generator(seed)).to(latent)
    noisy_latent = scheduler.add_noise(latent, z_noise, t.to(latent.device))
    latent_change = (vae.decode(noisy_latent / sf).sample - vae.decode(keep.to(latent) * latent / sf).sample)[0]
    p_noise = torch.randn(pixels.shape, generator=make_generator(seed))
    pixel_change = (scheduler.add_noise(pixels, p_noise, t) - keep * pixels)[0]
    corr_latent, corr_pixel = _neighbour_correlation(latent_change), _neighbour_correlation(pixel_change)
    return corr_latent > corr_pixel, (
        f"neighbouring pixels of the change correlate {corr_latent:.2f} for latent noise, {corr_pixel:.2f} for "
        "pixel noise")
