"""The flow ODE of SD 3- and FLUX-class models, written out: velocity, Euler and midpoint steps, inversion, sampling.

A flow-matching model predicts the velocity v(x, σ) = dx/dσ of the straight path x_σ = (1 − σ)·x₀ + σ·ε (noise at
σ = 1, diffusers' convention). Sampling integrates it from σ = 1 down to 0 on the scheduler's σ grid; **inversion**
integrates the same ODE upwards, from an image's latent at σ = 0 to the noise that rebuilds it. Three solvers:

* ``"euler"``: x ← x + (σ' − σ)·v(x, σ), one evaluation per step. What ``FlowMatchEulerDiscreteScheduler`` does
  downwards. Upwards it uses the velocity at the *lower* σ of each step, where sampling uses the higher one; the
  mismatch is first order in the step, so the rebuilt image drifts unless the steps are many.
* ``"midpoint"``: x ← x + (σ' − σ)·v(x + (σ' − σ)/2 · v(x, σ), (σ + σ')/2), second order, and as accurate run
  either way; two evaluations per step.
* ``"fireflow"``: the midpoint step whose first evaluation v(x, σ) is replaced by the previous step's midpoint
  velocity, which differs from it by O(step) and so keeps the method second order (FireFlow, arXiv 2412.07517):
  one evaluation per step, plus one at the start.

Latents are ``(N, C, h, w)`` for both families; FLUX's are packed into 2x2-patch tokens only for its transformer
(:func:`helpers.embeddings.pack_latents`). The conditioning is what :func:`helpers.encode_prompts` returns (tokens
and the pooled embedding packed as one extra token). SD 3 combines a negative branch by classifier-free guidance;
FLUX.1 takes its (distilled) guidance as an input and uses a negative branch only with ``true_cfg_scale`` > 1, as
its pipeline does. Introduced in notebook 10_flow_matching.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from helpers.checks import check_guidance, check_steps
from helpers.pipeline_info import family, latent_shape, min_steps, model_dtype, pooled_width, text_tokens

#: The solvers of :func:`integrate`.
SOLVERS = ("euler", "midpoint", "fireflow")
#: The families whose flow ODE this module integrates.
FLOW_FAMILIES = ("sd3", "flux")
#: ``velocity(x, sigma)``: the model's velocity for latents ``x`` (N, C, h, w) at noise level ``sigma`` (a float).
VelocityFn = Callable[[torch.Tensor, float], torch.Tensor]


def check_flow_pipeline(pipe: Any, what: str, hint: str = "DDIM inversion (helpers.morph.invert_images) serves "
                                                           "the Stable Diffusion families") -> str:
    """The family (``"sd3"`` or ``"flux"``) of a flow-matching pipeline, else one ``TypeError`` ending in ``hint``."""
    try:
        fam = family(pipe)
    except TypeError:
        fam = "unknown"
    if fam not in FLOW_FAMILIES:
        raise TypeError(f"{what} integrates the flow ODE of an SD 3- or FLUX-class pipeline; {type(pipe).__name__} "
                        f"is a {fam!r} pipeline: {hint}")
    return fam


def image_tokens(pipe: Any, height: int | None = None, width: int | None = None) -> int:
    """How many image tokens the transformer sees at ``height`` x ``width`` pixels (default: the model's size):
    one per 2x2 latent patch for FLUX, one per ``patch_size``² patch for SD 3."""
    check_flow_pipeline(pipe, "image_tokens")
    _, h, w = latent_shape(pipe, height=height, width=width)
    patch = 2 if family(pipe) == "flux" else int(pipe.transformer.config.patch_size)
    return (h // patch) * (w // patch)


def sigmas(pipe: Any, num_inference_steps: int, *, height: int | None = None,
           width: int | None = None) -> torch.Tensor:
    """The σ grid (steps + 1 values, from 1 down to 0) that ``pipe`` samples on at ``height`` x ``width``: the
    scheduler's shift, and its resolution-dependent shift (FLUX's ``mu``) when the scheduler uses one."""
    from diffusers.pipelines.flux.pipeline_flux import calculate_shift

    fam = check_flow_pipeline(pipe, "sigmas")
    low, why = min_steps(pipe)
    steps = check_steps("num_inference_steps", num_inference_steps, low=low, hint=why)
    scheduler = type(pipe.scheduler).from_config(pipe.scheduler.config)
    cfg = scheduler.config
    kwargs: dict[str, Any] = {}
    if cfg.get("use_dynamic_shifting"):
        kwargs["mu"] = calculate_shift(image_tokens(pipe, height, width), cfg.get("base_image_seq_len", 256),
                                       cfg.get("max_image_seq_len", 4096), cfg.get("base_shift", 0.5),
                                       cfg.get("max_shift", 1.15))
    if fam == "flux":  # FluxPipeline's own grid before the shift
        scheduler.set_timesteps(sigmas=np.linspace(1.0, 1 / steps, steps).tolist(), **kwargs)
    else:
        scheduler.set_timesteps(steps, **kwargs)
    return scheduler.sigmas.float().cpu()


def velocity_fn(pipe: Any, prompt_embeds: torch.Tensor, negative_prompt_embeds: torch.Tensor | None = None, *,
                guidance_scale: float = 1.0, true_cfg_scale: float = 1.0) -> VelocityFn:
    """``pipe``'s velocity with ``prompt_embeds`` (one row, or one per latent row) from :func:`helpers.encode_prompts`.

    SD 3: classifier-free guidance against ``negative_prompt_embeds`` when ``guidance_scale`` > 1. FLUX:
    ``guidance_scale`` is the distilled guidance the transformer takes as an input (ignored by FLUX.1-schnell,
    which has none), and the negative branch is combined only when ``true_cfg_scale`` > 1. The CFG branches
    travel as one batch, negatives first (as the pipelines stack them)."""
    from helpers.embeddings import pack_latents, unpack_pooled

    fam = check_flow_pipeline(pipe, "velocity_fn")
    guidance = check_guidance("guidance_scale", guidance_scale)
    true_cfg = check_guidance("true_cfg_scale", true_cfg_scale)
    scale = true_cfg if fam == "flux" else guidance
    device, dtype = pipe._execution_device, model_dtype(pipe)
    width, tokens = pooled_width(pipe), text_tokens(pipe)
    rows = [prompt_embeds]
    if scale > 1:
        if negative_prompt_embeds is None:
            raise ValueError(f"{'true_cfg_scale' if fam == 'flux' else 'guidance_scale'} > 1 needs "
                             "negative_prompt_embeds (helpers.encode_prompts gives both)")
        rows = [negative_prompt_embeds.expand(len(prompt_embeds), -1, -1), prompt_embeds]
    parts = [unpack_pooled(r.to(device, dtype), int(width or 0), tokens) for r in rows]
    transformer = pipe.transformer
    distilled = fam == "flux" and bool(getattr(transformer.config, "guidance_embeds", False))

    def flux_inputs(x: torch.Tensor, seq_len: int) -> dict[str, Any]:
        _, _, h, w = x.shape
        img_ids = type(pipe)._prepare_latent_image_ids(1, h // 2, w // 2, device, dtype)
        out: dict[str, Any] = {"img_ids": img_ids, "txt_ids": torch.zeros(seq_len, 3, device=device, dtype=dtype)}
        if distilled:
            out["guidance"] = torch.full((len(x),), guidance, device=device, dtype=torch.float32)
        return out

    @torch.no_grad()
    def velocity(x: torch.Tensor, sigma: float) -> torch.Tensor:
        n = len(x)
        seq = torch.cat([p[0].expand(n, -1, -1) for p in parts])
        pooled = torch.cat([p[1].expand(n, -1) for p in parts])
        x_in = torch.cat([x] * len(parts)).to(device, dtype)
        if fam == "flux":
            t = torch.full((len(x_in),), sigma, device=device, dtype=dtype)  # FLUX takes σ, SD 3 takes 1000 σ
            packed = transformer(hidden_states=pack_latents(pipe, x_in), timestep=t, encoder_hidden_states=seq,
                                 pooled_projections=pooled, return_dict=False, **flux_inputs(x_in, seq.shape[1]))[0]
            c, h, w = x_in.shape[1:]  # unpack: (N, h/2 · w/2, 4C) tokens → (N, C, h, w)
            v = packed.float().reshape(len(x_in), h // 2, w // 2, c, 2, 2).permute(0, 3, 1, 4, 2, 5)
            v = v.reshape(x_in.shape)
        else:
            t = torch.full((len(x_in),), sigma * 1000.0, device=device, dtype=dtype)
            v = transformer(hidden_states=x_in, timestep=t, encoder_hidden_states=seq, pooled_projections=pooled,
                            return_dict=False)[0].float()
        if len(parts) == 1:
            return v
        v_neg, v_pos = v.chunk(2)
        return v_neg + scale * (v_pos - v_neg)

    return velocity


def step(velocity: VelocityFn, x: torch.Tensor, sigma: float, sigma_next: float, solver: str = "euler") -> torch.Tensor:
    """One step of the flow ODE from ``sigma`` to ``sigma_next`` (either direction) with ``"euler"`` or
    ``"midpoint"`` (``"fireflow"`` carries a velocity from step to step: use :func:`integrate`)."""
    h = sigma_next - sigma
    if solver == "euler":
        return x + h * velocity(x, sigma)
    if solver == "midpoint":
        half = x + (h / 2) * velocity(x, sigma)
        return x + h * velocity(half, sigma + h / 2)
    raise ValueError(f"step() takes 'euler' or 'midpoint', got {solver!r} ('fireflow' runs through integrate())")


def evaluations(solver: str, steps: int) -> int:
    """Network evaluations (per guidance branch) that :func:`integrate` spends on ``steps`` steps."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    return {"euler": steps, "midpoint": 2 * steps, "fireflow": steps + 1}[solver]


@torch.no_grad()
def integrate(velocity: VelocityFn, x: torch.Tensor, grid: torch.Tensor, solver: str = "euler", *,
              return_trajectory: bool = False, callback: Callable[[int], None] | None = None,
              ) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Integrate from ``grid[0]`` through every σ of ``grid`` (descending: sampling; ascending: inversion).

    ``callback(i)`` runs before step i (e.g. to switch an attention processor on or off)."""
    if solver not in SOLVERS:
        raise ValueError(f"solver must be one of {SOLVERS}, got {solver!r}")
    x = x.float()
    path = [x]
    carried: torch.Tensor | None = None  # fireflow: the previous step's midpoint velocity
    for i, (sigma, sigma_next) in enumerate(zip(grid[:-1].tolist(), grid[1:].tolist())):
        if callback is not None:
            callback(i)
        if solver == "fireflow":
            h = sigma_next - sigma
            start = velocity(x, sigma) if carried is None else carried
            carried = velocity(x + (h / 2) * start, sigma + h / 2)
            x = x + h * carried
        else:
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


__all__ = ["FLOW_FAMILIES", "SOLVERS", "VelocityFn", "check_flow_pipeline", "decode_latents", "encode_image_latents",
           "evaluations", "image_tokens", "integrate", "sigmas", "step", "velocity_fn"]
