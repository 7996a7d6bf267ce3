"""The flow ODE of SD 3-class models, written out: velocity, Euler and midpoint steps, inversion and sampling.

A flow-matching model predicts the velocity v(x, σ) = dx/dσ of the straight path x_σ = (1 − σ)·x₀ + σ·ε (noise at
σ = 1, diffusers' convention). Sampling integrates it from σ = 1 down to 0 on the scheduler's σ grid; **inversion**
integrates the same ODE upwards, from an image's latent at σ = 0 to the noise that rebuilds it. Two solvers:

* ``"euler"``: x ← x + (σ' − σ)·v(x, σ), one evaluation per step. What ``FlowMatchEulerDiscreteScheduler`` does
  downwards. Upwards it uses the velocity at the *lower* σ of each step, where sampling uses the higher one; the
  mismatch is first order in the step, so the rebuilt image drifts unless the steps are many.
* ``"midpoint"``: x ← x + (σ' − σ)·v(x + (σ' − σ)/2 · v(x, σ), (σ + σ')/2), second order, and as accurate run
  either way. FireFlow (arXiv 2412.07517) reuses the previous step's midpoint velocity to bring the cost back to
  one evaluation per step; here both evaluations are spent, which keeps it a textbook method.

The conditioning is what :func:`helpers.encode_prompts` returns (tokens and the pooled embedding packed as one
extra token); classifier-free guidance combines the two branches as the pipeline does. Introduced in notebook
10_flow_matching.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import torch

from helpers.checks import check_guidance, check_steps
from helpers.pipeline_info import family, model_dtype, pooled_width, text_tokens

#: The solvers of :func:`integrate`.
SOLVERS = ("euler", "midpoint")
#: ``velocity(x, sigma)``: the model's velocity for latents ``x`` (N, C, h, w) at noise level ``sigma`` (a float).
VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]


def check_flow_pipeline(pipe: Any, what: str) -> None:
    """One ``TypeError`` unless ``pipe`` is an SD 3-class flow pipeline (FLUX's packed tokens are not handled)."""
    fam = family(pipe)
    if fam != "sd3":
        hint = ("FLUX's packed latent tokens are not handled here yet" if fam == "flux" else
                "DDIM inversion (helpers.morph.invert_images) serves the Stable Diffusion families")
        raise TypeError(f"{what} integrates the flow ODE of an SD 3-class pipeline (StableDiffusion3Pipeline); "
                        f"{type(pipe).__name__} is a {fam!r} pipeline: {hint}")


def sigmas(pipe: Any, num_inference_steps: int) -> torch.Tensor:
    """The σ grid (steps + 1 values, from 1 down to 0) that ``pipe``'s scheduler samples on, shift included."""
    steps = check_steps("num_inference_steps", num_inference_steps)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    scheduler.set_timesteps(steps)
    return scheduler.sigmas.float().cpu()


def velocity_fn(pipe: Any, prompt_embeds: torch.Tensor, negative_prompt_embeds: torch.Tensor | None = None, *,
                guidance_scale: float = 1.0) -> VelocityFn:
    """``pipe``'s velocity with ``prompt_embeds`` (one row, or one per latent row) from :func:`helpers.encode_prompts`,
    with classifier-free guidance against ``negative_prompt_embeds`` when ``guidance_scale`` > 1."""
    from helpers.embeddings import unpack_pooled

    check_flow_pipeline(pipe, "velocity_fn")
    guidance = check_guidance("guidance_scale", guidance_scale)
    device, dtype = pipe._execution_device, model_dtype(pipe)
    width, tokens = pooled_width(pipe), text_tokens(pipe)
    rows = [prompt_embeds]
    if guidance > 1:
        if negative_prompt_embeds is None:
            raise ValueError("guidance_scale > 1 needs negative_prompt_embeds (helpers.encode_prompts gives both)")
        rows = [negative_prompt_embeds.expand(len(prompt_embeds), -1, -1), prompt_embeds]
    parts = [unpack_pooled(r.to(device, dtype), int(width or 0), tokens) for r in rows]

    @torch.no_grad()
    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        n = len(x)
        seq = torch.cat([p[0].expand(n, -1, -1) for p in parts])
        pooled = torch.cat([p[1].expand(n, -1) for p in parts])
        x_in = torch.cat([x] * len(parts)).to(device, dtype)
        t = torch.full((len(x_in),), sigma * 1000.0, device=device, dtype=dtype)
        v = pipe.transformer(hidden_states=x_in, timestep=t, encoder_hidden_states=seq, pooled_projections=pooled,
                             return_dict=False)[0].float()
        if len(parts) == 1:
            return v
        v_neg, v_pos = v.chunk(2)
        return v_neg + guidance * (v_pos - v_neg)

    return velocity


def step(velocity: VelocityFn, x: torch.Tensor, sigma: float, sigma_next: float, solver: str = "euler") -> torch.Tensor:
    """One step of the flow ODE from ``sigma`` to ``sigma_next`` (either direction) with ``solver``."""
    h = sigma_next - sigma
    if solver == "euler":
        return x + h * velocity(x, sigma)
    if solver == "midpoint":
        half = x + (h / 2) * velocity(x, sigma)
        return x + h * velocity(half, sigma + h / 2)
    raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")


@torch.no_grad()
def integrate(velocity: VelocityFn, x: torch.Tensor, grid: torch.Tensor, solver: str = "euler",
              *, return_trajectory: bool = False) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrate from ``grid[0]`` through every σ of ``grid`` (descending: sampling; ascending: inversion)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    x = x.float()
    path = [x]
    for sigma, sigma_next in zip(grid[:-1].tolist(), grid[1:].tolist()):
        x = step(velocity, x, sigma, sigma_next, solver)
        if return_trajectory:
            path.append(x)
    return (x, torch.stack(path)) if return_trajectory else x


def encode_image_latents(pipe: Any, pixels: torch.Tensor) -> torch.Tensor:
    """Images (N, 3, H, W) in [-1, 1] → the normalised latents the transformer works on: (z − shift) · scale."""
    vae = pipe.vae
    with torch.no_grad():
        z = vae.encode(pixels.to(pipe._execution_device, vae.dtype)).latent_dist.mean
    return ((z - (vae.config.shift_factor or 0.0)) * vae.config.scaling_factor).float()


def decode_latents(pipe: Any, latents: torch.Tensor) -> torch.Tensor:
    """The transformer's latents → images (N, 3, H, W) in [0, 1], as the pipeline decodes them."""
    vae = pipe.vae
    z = latents / vae.config.scaling_factor + (vae.config.shift_factor or 0.0)
    with torch.no_grad():
        images = vae.decode(z.to(pipe._execution_device, vae.dtype)).sample
    return ((images.float() + 1) / 2).clamp(0, 1).cpu()


__all__ = ["SOLVERS", "VelocityFn", "check_flow_pipeline", "decode_latents", "encode_image_latents", "integrate",
           "sigmas", "step", "velocity_fn"]
