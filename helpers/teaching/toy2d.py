"""The toy 2-D diffusion model: a small MLP denoiser learns scikit-learn's S-curve.

Introduced in notebook 01_diffusion_basics, which trains it live (a few seconds on CPU), animates the
reverse process and compares DDPM with DDIM sampling. The scheduler is diffusers' ``DDPMScheduler`` with
``clip_sample=False`` (its default clamps samples into [-1, 1], which would crop the curve).
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from torch import nn

NOISE = 0.1
TIME_DIM = 32
HIDDEN = 128
COORD_SCALE = 8.0


def s_curve(n: int, *, seed: int = 0, noise: float = NOISE) -> torch.Tensor:
    """``n`` points of the S-curve, (n, 2) float32, scaled so both coordinates lie in about [-1, 1].

    The (x, z) projection of ``sklearn.datasets.make_s_curve`` (z halved), with ``noise`` added in 3-D.
    Introduced in notebook 01_diffusion_basics.
    """
    from sklearn.datasets import make_s_curve

    if not isinstance(n, (int, np.integer)) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    x, _ = make_s_curve(int(n), noise=noise, random_state=seed)
    pts = x[:, [0, 2]] * np.array([1.0, 0.5])
    return torch.from_numpy(pts.astype(np.float32))


class ToyDenoiser(nn.Module):
    """MLP ε-predictor for 2-D points: [x, y, sin/cos(8x), sin/cos(8y), sin/cos(t)] → 3x128 (SiLU) → ε.

    Sinusoidal features of the coordinates (not only of t) let a small MLP draw the curve's sharp edges.
    """

    def __init__(self, hidden: int = HIDDEN, time_dim: int = TIME_DIM, coord_scale: float = COORD_SCALE) -> None:
        super().__init__()
        self.time_dim = time_dim
        self.coord_scale = coord_scale
        self.net = nn.Sequential(
            nn.Linear(2 + 3 * time_dim, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, hidden),
            nn.SiLU(),
            nn.Linear(hidden, 2),
        )

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        from diffusers.models.embeddings import get_timestep_embedding

        t = torch.as_tensor(t, device=x.device).reshape(-1).expand(len(x))
        feats = [x] + [get_timestep_embedding(x[:, i] * self.coord_scale, self.time_dim) for i in range(2)]
        feats.append(get_timestep_embedding(t, self.time_dim))
        return self.net(torch.cat(feats, dim=1).to(x.dtype))


def make_scheduler(num_train_timesteps: int = 1000):
    """The training scheduler: ``DDPMScheduler``, cosine betas, ``clip_sample=False``."""
    from diffusers import DDPMScheduler

    return DDPMScheduler(
        num_train_timesteps=num_train_timesteps, beta_schedule="squaredcos_cap_v2", clip_sample=False
    )


def train_toy(
    steps: int = 2000,
    *,
    seed: int = 0,
    batch_size: int = 1024,
    n_data: int = 20_000,
    lr: float = 2e-3,
    progress: bool = True,
) -> tuple[ToyDenoiser, object, list[float]]:
    """Train the denoiser on ``n_data`` S-curve points → ``(model, scheduler, losses)``.

    Standard ε-prediction DDPM loss; Adam with cosine learning-rate decay. ~5 s for 2,000 steps on 2 cores.
    Introduced in notebook 01_diffusion_basics.
    """
    from tqdm.auto import tqdm

    if steps < 1:
        raise ValueError(f"steps must be ≥ 1, got {steps}")
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    data = s_curve(n_data, seed=seed)
    model = ToyDenoiser()
    scheduler = make_scheduler()
    opt = torch.optim.Adam(model.parameters(), lr=lr)
    decay = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps, eta_min=lr * 0.05)
    alphas = scheduler.alphas_cumprod
    losses: list[float] = []
    for _ in tqdm(range(steps), desc="toy 2-D DDPM", disable=not progress, mininterval=0.5, leave=False):
        x0 = data[torch.randint(len(data), (batch_size,), generator=gen)]
        t = torch.randint(scheduler.config.num_train_timesteps, (batch_size,), generator=gen)
        noise = torch.randn(x0.shape, generator=gen)
        a = alphas[t].unsqueeze(1)
        loss = torch.nn.functional.mse_loss(model(a.sqrt() * x0 + (1 - a).sqrt() * noise, t), noise)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        decay.step()
        losses.append(loss.item())
    return model.eval(), scheduler, losses


@torch.no_grad()
def sample_toy(
    model: nn.Module,
    scheduler,
    n: int,
    *,
    generator: torch.Generator | None = None,
    num_inference_steps: int | None = None,
    return_trajectory: bool = False,
    scheduler_kind: Literal["ddpm", "ddim"] = "ddpm",
) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
    """Draw ``n`` points by running the reverse process from Gaussian noise (drawn with ``generator``, CPU).

    ``scheduler_kind="ddpm"`` (stochastic; default all training steps) or ``"ddim"`` (deterministic, η = 0;
    default 50 steps), both built from ``scheduler.config``. With ``return_trajectory`` also returns the
    (steps + 1, n, 2) path of every point, first row the starting noise. Introduced in notebook 01.
    """
    from diffusers import DDIMScheduler, DDPMScheduler

    if scheduler_kind not in ("ddpm", "ddim"):
        raise ValueError(f"scheduler_kind must be 'ddpm' or 'ddim', got {scheduler_kind!r}")
    cls = DDPMScheduler if scheduler_kind == "ddpm" else DDIMScheduler
    sched = cls.from_config(scheduler.config)
    if num_inference_steps is None:
        num_inference_steps = sched.config.num_train_timesteps if scheduler_kind == "ddpm" else 50
    sched.set_timesteps(num_inference_steps)
    param = next(model.parameters())
    x = torch.randn((n, 2), generator=generator).to(param.device, param.dtype)
    path = [x.cpu()]
    for t in sched.timesteps:
        eps = model(x, t)
        if scheduler_kind == "ddpm":
            x = sched.step(eps, t, x, generator=generator).prev_sample
        else:
            x = sched.step(eps, t, x, eta=0.0).prev_sample
        if return_trajectory:
            path.append(x.cpu())
    x = x.cpu()
    return (x, torch.stack(path)) if return_trajectory else x


def nearest_neighbour_distance(points: torch.Tensor, reference: torch.Tensor) -> float:
    """Mean distance from each of ``points`` to its nearest neighbour in ``reference`` (the fit measure)."""
    return float(torch.cdist(points.float(), reference.float()).min(dim=1).values.mean())


def fit_ratio(samples: torch.Tensor, *, seed: int = 1) -> float:
    """NN distance samples → data over data' → data (two independent draws of len(samples)); ≈ 1 is a fit."""
    n = len(samples)
    data, other = s_curve(n, seed=seed + 1000), s_curve(n, seed=seed + 2000)
    return nearest_neighbour_distance(samples, data) / nearest_neighbour_distance(other, data)


def save_toy(model: ToyDenoiser, scheduler, out_dir: str | Path) -> Path:
    """Write ``model.safetensors`` + ``scheduler_config.json`` into ``out_dir`` (each file written atomically)."""
    from safetensors.torch import save_file

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    for name, write in (
        ("model.safetensors", lambda p: save_file({k: v.contiguous() for k, v in model.state_dict().items()}, p)),
        ("scheduler_config.json", lambda p: Path(p).write_text(json.dumps(dict(scheduler.config), indent=2))),
    ):
        fd, tmp = tempfile.mkstemp(prefix=f".{name}.", dir=out_dir)
        os.close(fd)
        try:
            write(tmp)
            os.chmod(tmp, 0o644)
            os.replace(tmp, out_dir / name)
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    return out_dir


def load_toy(folder: str | Path, *, device: str | torch.device | None = None) -> tuple[ToyDenoiser, object]:
    """Load what :func:`save_toy` wrote → ``(model, scheduler)``."""
    from diffusers import DDPMScheduler
    from safetensors.torch import load_file

    folder = Path(folder)
    if not (folder / "model.safetensors").is_file():
        raise FileNotFoundError(f"No toy model in {folder}; train one with `python -m helpers.teaching.train --only toy2d`.")
    model = ToyDenoiser()
    model.load_state_dict(load_file(folder / "model.safetensors"))
    scheduler = DDPMScheduler.from_config(json.loads((folder / "scheduler_config.json").read_text()))
    return model.to(device or "cpu").eval(), scheduler
