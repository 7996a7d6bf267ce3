"""The toy 2-D flow-matching model: the S-curve again, a velocity field trained on straight noise-to-data paths.

Introduced in notebook 10_flow_matching. Same network and data as the toy DDPM of
:mod:`helpers.teaching.toy2d`, diffusers' conventions: noise at σ = 1, data at σ = 0,
x_σ = (1 − σ)·x₀ + σ·ε, the network predicts the velocity v = ε − x₀ = dx/dσ (the rectified-flow target
of diffusers' SD 3 training scripts), and sampling integrates dx/dσ = v from σ = 1 down to σ = 0.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import nn

from helpers.teaching.toy2d import ToyDenoiser, s_curve

NUM_TRAIN_TIMESTEPS = 1000  # the network sees σ·1000, the range of the DDPM toy's timesteps


def train_toy_flow(
    steps: int = 2000,
    *,
    seed: int = 0,
    batch_size: int = 1024,
    n_data: int = 20_000,
    lr: float = 2e-3,
    progress: bool = True,
    pairs: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> tuple[ToyDenoiser, list[float]]:
    """Train a :class:`~helpers.teaching.toy2d.ToyDenoiser` as a velocity model → ``(model, losses)``.

    Rectified-flow loss: σ ~ U[0, 1], x_σ = (1 − σ)·x₀ + σ·ε, MSE(model(x_σ, 1000·σ), ε − x₀).
    Adam with cosine learning-rate decay, as :func:`~helpers.teaching.toy2d.train_toy`. Each step pairs
    data points with fresh noise, independently; ``pairs=(noises, points)`` (from :func:`reflow_pairs`) trains
    on those couples instead: **reflow**, which straightens the paths the model learns.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)  # the network's initial weights
    data = s_curve(n_data, seed=seed)
    model = ToyDenoiser()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    losses: list[float] = []
    if pairs is not None and (pairs[0].shape != pairs[1].shape or pairs[0].ndim != 2 or pairs[0].shape[1] != 2):
        raise ValueError("pairs must be (noises, points), two (n, 2) tensors: use reflow_pairs(model, n)")
    for _ in tqdm(range(steps), desc="toy 2-D flow", disable=not progress, mininterval=0.5, leave=False):
        if pairs is None:
            x0 = data[torch.randint(len(data), (batch_size,), generator=gen)]
            noise = torch.randn(x0.shape, generator=gen)
        else:
            rows = torch.randint(len(pairs[0]), (batch_size,), generator=gen)
            noise, x0 = pairs[0][rows], pairs[1][rows]
        sigma = torch.rand((batch_size, 1), generator=gen)
        x_sigma = (1 - sigma) * x0 + sigma * noise
        loss = torch.nn.functional.mse_loss(model(x_sigma, sigma.squeeze(1) * NUM_TRAIN_TIMESTEPS), noise - x0)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()
        losses.append(loss.item())
    return model.eval(), losses


def _start_noise(n: int, noise: torch.Tensor | None, generator: torch.Generator | None) -> torch.Tensor:
    if noise is None:
        return torch.randn((n, 2), generator=generator)
    if tuple(noise.shape) != (n, 2):
        raise ValueError(f"noise must have shape ({n}, 2), got {tuple(noise.shape)}")
    return noise


@torch.no_grad()
def euler_sample(
    model: nn.Module,
    n: int,
    *,
    generator: torch.Generator | None = None,
    num_inference_steps: int = 50,
    return_trajectory: bool = False,
    noise: torch.Tensor | None = None,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points by Euler steps of dx/dσ = model(x, 1000·σ) from σ = 1 (noise) to σ = 0.

    The steps are diffusers' ``FlowMatchEulerDiscreteScheduler`` (shift 1) on an even grid, σ = 1, 1 − 1/N, …,
    1/N, 0 (as FLUX's pipeline sets it; the scheduler's own grid ends 1/N … 0.001, which makes a 2-step sample
    one step and a sliver); its ``timesteps`` are 1000·σ, the time input the network was trained with. The start is
    ``noise`` (n, 2) if given, else Gaussian noise from ``generator``. With ``return_trajectory`` also
    returns the (steps + 1, n, 2) path, first row the start.
    """
    from diffusers import FlowMatchEulerDiscreteScheduler

    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be ≥ 1, got {num_inference_steps}")
    # Any: mypy resolves this class to diffusers' dummy placeholder, which has none of its methods
    sched: Any = FlowMatchEulerDiscreteScheduler(num_train_timesteps=NUM_TRAIN_TIMESTEPS, shift=1.0)
    sched.set_timesteps(sigmas=np.linspace(1.0, 1.0 / num_inference_steps, num_inference_steps))  # even steps
    param = next(model.parameters())
    x = _start_noise(n, noise, generator).to(param.device, param.dtype)
    path = [x.cpu()]
    for t in sched.timesteps:
        x = sched.step(model(x, t), t, x).prev_sample  # x + (σ_next − σ)·v
        if return_trajectory:
            path.append(x.cpu())
    x = x.cpu()
    return (x, torch.stack(path)) if return_trajectory else x


def straightness(trajectory: torch.Tensor) -> torch.Tensor:
    """Per point of a (steps + 1, n, d) path: chord |x_end − x_start| over path length Σ|x_{i+1} − x_i|.

    1 for a straight path walked one way, smaller the more it bends or turns back (a path that never
    moves counts as straight).
    """
    if trajectory.ndim != 3 or len(trajectory) < 2:
        raise ValueError(f"trajectory must have shape (steps + 1 ≥ 2, n, d), got {tuple(trajectory.shape)}")
    traj = trajectory.double()
    chord = (traj[-1] - traj[0]).norm(dim=-1)
    length = (traj[1:] - traj[:-1]).norm(dim=-1).sum(dim=0)
    ratio = torch.where(length > 0, chord / length.clamp_min(torch.finfo(torch.float64).tiny), 1.0)
    return ratio.to(trajectory.dtype if trajectory.is_floating_point() else torch.float32)


def mean_straightness(trajectory: torch.Tensor) -> float:
    """The mean of :func:`straightness` over the points."""
    return float(straightness(trajectory).mean())


@torch.no_grad()
def ddim_as_flow(
    model: nn.Module,
    scheduler,
    noise: torch.Tensor,
    num_inference_steps: int = 50,
    *,
    return_trajectory: bool = False,
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Sample the toy DDPM ε-model by plain Euler steps in flow-matching coordinates; equals DDIM (η = 0).

    With α = √ᾱ_t, s = √(1 − ᾱ_t): x_fm = x / (α + s) at σ = s / (α + s), so x_fm = (1 − σ)·x̂₀ + σ·ε̂ for
    x̂₀ = (x − s·ε̂) / α, and the velocity is v = ε̂ − x̂₀. DDIM keeps x̂₀ and ε̂ fixed over a step and remixes
    them at the next level, x_fm' = (1 − σ')·x̂₀ + σ'·ε̂; Euler gives x_fm + (σ' − σ)·v, the same point.

    The σ grid is DDIM's (``DDIMScheduler`` from ``scheduler.config``: its timesteps, previous timestep
    t − T // steps, ``final_alpha_cumprod`` past t = 0), so the result matches
    ``toy2d.sample_toy(..., scheduler_kind="ddim")`` started from ``noise`` (n, 2). Returns the samples
    (DDPM coordinates), with ``return_trajectory`` also the (steps + 1, n, 2) path in flow coordinates.
    """
    from diffusers import DDIMScheduler

    if num_inference_steps < 1:
        raise ValueError(f"num_inference_steps must be ≥ 1, got {num_inference_steps}")
    sched = DDIMScheduler.from_config(scheduler.config)
    sched.set_timesteps(num_inference_steps)
    stride = sched.config.num_train_timesteps // num_inference_steps

    def alpha_bar(t: int) -> torch.Tensor:
        return sched.alphas_cumprod[t] if t >= 0 else sched.final_alpha_cumprod

    def to_flow(abar: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """(α, s, σ) for this ᾱ."""
        a, s = abar.sqrt(), (1 - abar).sqrt()
        return a, s, s / (a + s)

    param = next(model.parameters())
    a, s, sigma = to_flow(alpha_bar(int(sched.timesteps[0])))
    x_fm = noise.to(param.device, param.dtype) / (a + s)
    path = [x_fm.cpu()]
    for t in sched.timesteps:
        a, s, sigma = to_flow(alpha_bar(int(t)))
        x = x_fm * (a + s)
        eps = model(x, t)
        x0 = (x - s * eps) / a
        _, _, sigma_next = to_flow(alpha_bar(int(t) - stride))
        x_fm = x_fm + (sigma_next - sigma) * (eps - x0)
        if return_trajectory:
            path.append(x_fm.cpu())
    a, s, _ = to_flow(alpha_bar(int(sched.timesteps[-1]) - stride))
    x = (x_fm * (a + s)).cpu()
    return (x, torch.stack(path)) if return_trajectory else x


@torch.no_grad()
def reflow_pairs(model: nn.Module, n: int, *, seed: int = 0, num_inference_steps: int = 50
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` couples (noise, the point the model's ODE takes it to), by :func:`euler_sample` from seeded noise.

    Training a new model on these couples (``train_toy_flow(pairs=...)``) is rectified flow's *reflow*: the
    couples no longer cross each other's straight lines as independent ones do, so the learned velocity no
    longer averages directions that disagree, and its paths come out straighter (Liu, Gong and Liu, 2022).
    """
    noise = torch.randn((n, 2), generator=torch.Generator().manual_seed(seed))
    points = euler_sample(model, n, noise=noise, num_inference_steps=num_inference_steps)
    assert isinstance(points, torch.Tensor)  # no trajectory asked for
    return noise, points


def chamfer_ratio(samples: torch.Tensor, *, seed: int = 1) -> float:
    """Two-way fit: nearest-neighbour distances samples → data and data → samples, over the same for a second
    draw of data (≈ 1 is a fit). Unlike :func:`~helpers.teaching.toy2d.fit_ratio` it also sees points that
    collapse onto a few places of the curve (a one-step sample of curved paths lands near the data's mean)."""
    from helpers.teaching.toy2d import nearest_neighbour_distance as nn

    n = len(samples)
    data, other = s_curve(n, seed=seed + 1000), s_curve(n, seed=seed + 2000)
    return (nn(samples, data) + nn(data, samples)) / (nn(other, data) + nn(data, other))
