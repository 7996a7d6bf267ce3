"""Making walks even: perceptually uniform re-timing, AdaIN for slerped noises, Beta schedules.

Diffusion interpolations tend to jump: most of the change happens in one or two frames. Three remedies:

* :func:`retime` — measure the walk on a coarse grid of fractions λ, then choose new fractions so that
  consecutive frames are equally far apart (inverting the cumulative distance, as DiffMorpher does, and/or
  bisection, as IMPUS does), within a stated render budget. :func:`invert_cumulative` is the pure inversion step.
* :func:`adain_interpolate` — slerp two (inverted) noises, then give the result the per-channel mean and std
  interpolated linearly between the endpoints (AdaIN).
* :func:`beta_schedule` — fractions λ at the quantiles of a Beta distribution (AID's Beta prior).

Throughout, a walk's frames sit at interpolation fractions λ in [0, 1] (``ts`` in the code: one fraction per
frame).

Introduced in notebook 07_smooth_interpolation.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from helpers.metrics import MetricLike, WalkReport, resolve_metric, split_frames

__all__ = [
    "Retimed",
    "adain_interpolate",
    "beta_schedule",
    "invert_cumulative",
    "retime",
]

RenderFn = Callable[[np.ndarray], Any]


# ----------------------------------------------------------------------------------------------------------
# Inverting the cumulative distance
# ----------------------------------------------------------------------------------------------------------


def invert_cumulative(
    ts: Sequence[float] | np.ndarray,
    distances: Sequence[float] | np.ndarray,
    num_frames: int,
    *,
    closed: bool = False,
    t_end: float | None = None,
) -> np.ndarray:
    """New fractions λ at equal steps of cumulative distance, from distances measured between samples.

    Open walk: ``ts`` are increasing sample positions λ and ``distances[i] = D(x(ts[i]), x(ts[i+1]))``
    (``len(ts) - 1`` values); the result has ``num_frames`` values from ``ts[0]`` to ``ts[-1]`` (exact ends).
    Closed walk (``closed=True``): the frame at ``t_end`` is the frame at ``ts[0]``; ``distances`` has
    ``len(ts)`` values, the last one ``D(x(ts[-1]), x(ts[0]))``; the result has ``num_frames`` values in
    ``[ts[0], t_end)`` — a loop without a duplicated end frame.

    The cumulative distance is linear between samples. The result is strictly increasing.

    Introduced in notebook 07_smooth_interpolation.
    """
    t = np.asarray(ts, dtype=np.float64).ravel()
    d = np.asarray(distances, dtype=np.float64).ravel()
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames must be an integer >= 2, got {num_frames!r}")
    if t.size < 2 and not closed:
        raise ValueError("need at least 2 samples of the walk (2 values in ts)")
    if not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError("ts must be finite and strictly increasing")
    if closed:
        if t_end is None or not t_end > t[-1]:
            raise ValueError("closed walks need t_end (the loop's end, where the first frame repeats) > ts[-1]")
        t = np.append(t, float(t_end))
    if d.size != t.size - 1:
        want = "len(ts)" if closed else "len(ts) - 1"
        raise ValueError(f"expected {want} = {t.size - 1} distances, got {d.size}")
    if np.any(d < 0) or not np.all(np.isfinite(d)):
        raise ValueError("distances must be finite and non-negative")
    steps = num_frames if closed else num_frames - 1
    cum = np.concatenate([[0.0], np.cumsum(d)])
    total = cum[-1]
    if total == 0:  # nothing changes anywhere: any spacing is even; keep it uniform in λ
        cum = np.linspace(0.0, 1.0, t.size)
    else:  # a tiny tilt makes flat stretches strictly increasing, so the inverse is well defined
        cum = cum + 1e-9 * total * np.linspace(0.0, 1.0, t.size)
    targets = np.arange(num_frames) * (cum[-1] / steps)
    out = np.interp(targets, cum, t)
    out[0] = t[0]
    if not closed:
        out[-1] = t[-1]
    return out


# ----------------------------------------------------------------------------------------------------------
# Re-timing a walk by rendering it
# ----------------------------------------------------------------------------------------------------------


@dataclass
class Retimed:
    """Result of :func:`retime`. Introduced in notebook 07_smooth_interpolation."""

    ts: np.ndarray  # the new fractions λ, one per frame (closed walks: without the end point)
    frames: list[Any] = field(repr=False)  # the frames rendered at ``ts``
    report: WalkReport  # evenness of ``frames`` (closed walks include the wrap-around step as closure gap)
    renders: int  # frames rendered in all (coarse pass included); never more than the budget
    coarse_ts: np.ndarray = field(repr=False)
    coarse_report: WalkReport = field(repr=False)  # evenness of the coarse, uniform-in-λ pass


class _BudgetExceeded(Exception):
    pass


class _Sampler:
    """Renders frames at fractions λ on demand, caches them and the distances between them."""

    def __init__(self, render_fn: RenderFn, metric: MetricLike, budget: int, closed: bool, t0: float, t1: float):
        self.render_fn = render_fn
        self.metric_name, self.prepare, self.pair = resolve_metric(metric)
        self.images = isinstance(metric, str) and metric in ("rmse", "ssim")
        self.budget = budget
        self.closed = closed
        self.t0, self.t1 = t0, t1
        self.renders = 0
        self.frames: dict[float, Any] = {}
        self.states: dict[float, Any] = {}
        self._dist: dict[tuple[float, float], float] = {}

    def _key(self, t: float) -> float:
        # a closed walk's end point is its start: same frame, never rendered
        return self.t0 if self.closed and t == self.t1 else float(t)

    def missing(self, ts: np.ndarray) -> list[float]:
        return sorted({self._key(t) for t in ts} - set(self.states))

    def render(self, ts: np.ndarray) -> None:
        new = self.missing(ts)
        if not new:
            return
        if self.renders + len(new) > self.budget:
            raise _BudgetExceeded
        out = split_frames(self.render_fn(np.asarray(new, dtype=np.float64)), images=self.images)
        if len(out) != len(new):
            raise ValueError(
                f"render_fn returned {len(out)} frames for {len(new)} fractions; return one frame per fraction, as a "
                "list or a batch (NxHxWxC array, NxCxHxW tensor)"
            )
        self.renders += len(new)
        for t, frame in zip(new, out):
            self.frames[t] = frame
            self.states[t] = self.prepare(frame)

    def dist(self, a: float, b: float) -> float:
        ka, kb = self._key(a), self._key(b)
        if (ka, kb) not in self._dist:
            self._dist[(ka, kb)] = self.pair(self.states[ka], self.states[kb])
        return self._dist[(ka, kb)]

    def sample_ts(self) -> np.ndarray:
        ts = sorted(self.states)
        return np.asarray(ts + [self.t1] if self.closed else ts, dtype=np.float64)

    def chain(self, ts: np.ndarray) -> np.ndarray:
        """Distances between consecutive fractions (closed: ts must end at t1, the loop's end)."""
        return np.array([self.dist(a, b) for a, b in zip(ts[:-1], ts[1:])], dtype=np.float64)

    def invert(self, num_frames: int) -> np.ndarray:
        ts = self.sample_ts()
        d = self.chain(ts)
        if self.closed:
            return invert_cumulative(ts[:-1], d, num_frames, closed=True, t_end=self.t1)
        return invert_cumulative(ts, d, num_frames)

    def report(self, ts: np.ndarray, name: str | None) -> WalkReport:
        full = np.append(ts, self.t1) if self.closed else ts
        d = self.chain(full)
        if self.closed:
            d, end = d[:-1], d[-1]
        else:
            end = self.dist(ts[0], ts[-1])
        return WalkReport.from_distances(d, end_to_end=end, closed=self.closed, name=name, metric=self.metric_name)


def _even_score(report: WalkReport) -> float:
    """Coefficient of variation of every step the viewer sees (closed: including the wrap-around step)."""
    d = report.distances
    if report.closed:
        d = np.append(d, report.closure_gap * report.mean)
    mean = d.mean()
    return float(d.std() / mean) if mean > 0 else 0.0


def retime(
    render_fn: RenderFn,
    num_frames: int,
    *,
    t0: float = 0.0,
    t1: float = 1.0,
    metric: MetricLike = "rmse",
    closed: bool = False,
    coarse: int | None = None,
    budget: int | None = None,
    method: str = "invert",
    name: str | None = "retimed",
) -> Retimed:
    """Choose fractions λ so that consecutive frames of a walk are equally far apart (perceptually uniform
    timing).

    ``render_fn(ts)`` renders frames at a 1-D float64 array of fractions λ in one batch and returns them (a
    list, a batch with a leading frame axis, or a pipeline output with ``.images``) — any walk works: prompt, noise,
    circular, unCLIP. Rendering must be deterministic in λ (fixed noise), otherwise distances measure noise.

    1. Coarse pass: ``coarse`` frames uniform in λ (default ``2 * num_frames``).
    2. ``method="invert"`` (DiffMorpher-style): invert the cumulative distance to place ``num_frames`` fractions
       at equal steps; render them; while the budget allows, add them to the samples and invert again, keeping
       the most even result. ``method="bisect"`` (IMPUS-style): repeatedly render the midpoint of the sample
       interval holding each target cumulative distance (batched bisection), then invert once at the end.
    3. ``budget`` caps the total number of frames rendered, coarse pass included (default
       ``coarse + 2 * num_frames``); frames already rendered (the endpoints) are reused, never rendered twice.

    ``closed=True`` treats λ as periodic on ``[t0, t1)`` (the frame at t1 is the frame at t0, never rendered):
    the result is a loop of ``num_frames`` frames starting at ``t0`` with no duplicated end frame, and the
    wrap-around step is evened out with the others. Open walks keep ``t0`` and ``t1`` exactly.

    Introduced in notebook 07_smooth_interpolation.
    """
    if not callable(render_fn):
        raise TypeError("render_fn must be a function ts -> frames")
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames must be an integer >= 2, got {num_frames!r}")
    if method not in ("invert", "bisect"):
        raise ValueError(f"method must be 'invert' or 'bisect', got {method!r}")
    t0, t1 = float(t0), float(t1)
    if not (math.isfinite(t0) and math.isfinite(t1) and t1 > t0):
        raise ValueError(f"need finite t0 < t1, got t0={t0}, t1={t1}")
    coarse = 2 * int(num_frames) if coarse is None else coarse
    if not isinstance(coarse, (int, np.integer)) or coarse < 2:
        raise ValueError(f"coarse must be an integer >= 2, got {coarse!r}")
    # the final frames that can never coincide with coarse samples: all but t0 (closed) or t0 and t1 (open)
    minimum = coarse + (num_frames - 1 if closed else num_frames - 2)
    budget = coarse + 2 * int(num_frames) if budget is None else budget
    if not isinstance(budget, (int, np.integer)) or budget < minimum:
        raise ValueError(
            f"budget={budget!r} is too small: the coarse pass ({coarse} frames) plus the final frames need up "
            f"to {minimum} renders; raise budget or lower coarse"
        )

    sampler = _Sampler(render_fn, metric, int(budget), closed, t0, t1)
    grid = np.linspace(t0, t1, coarse, endpoint=not closed)
    sampler.render(grid)
    coarse_report = sampler.report(grid, "uniform (coarse)")
    reserve = num_frames - 1 if closed else num_frames - 2  # worst case for rendering the final frames

    if method == "bisect":
        span_tol = 1e-9 * (t1 - t0)
        while True:
            samples = sampler.sample_ts()
            cum = np.concatenate([[0.0], np.cumsum(sampler.chain(samples))])
            steps = num_frames if closed else num_frames - 1
            targets = np.arange(1, steps) * (cum[-1] / steps)
            idx = np.clip(np.searchsorted(cum, targets, side="right") - 1, 0, samples.size - 2)
            idx = np.unique(idx)
            wide = idx[samples[idx + 1] - samples[idx] > span_tol]
            room = sampler.budget - sampler.renders - reserve
            if wide.size == 0 or room <= 0:
                break
            if wide.size > room:  # last, partial round: split the intervals that hold the most distance
                wide = np.sort(wide[np.argsort(cum[wide + 1] - cum[wide], kind="stable")[::-1][:room]])
            sampler.render(0.5 * (samples[wide] + samples[wide + 1]))
        ts = sampler.invert(num_frames)
        sampler.render(ts)
        best_ts, best = ts, sampler.report(ts, name)
    else:
        ts = sampler.invert(num_frames)
        sampler.render(ts)
        best_ts, best = ts, sampler.report(ts, name)
        while _even_score(best) > 1e-6:
            ts = sampler.invert(num_frames)  # all samples so far, denser where the walk moves fast
            need = len(sampler.missing(ts))
            if sampler.renders + need > sampler.budget:
                break
            sampler.render(ts)
            report = sampler.report(ts, name)
            if _even_score(report) < _even_score(best):
                best_ts, best = ts, report
            if need == 0:  # nothing new to learn from: converged
                break

    frames = [sampler.frames[sampler._key(t)] for t in best_ts]
    return Retimed(
        ts=best_ts,
        frames=frames,
        report=best,
        renders=sampler.renders,
        coarse_ts=grid,
        coarse_report=coarse_report,
    )


# ----------------------------------------------------------------------------------------------------------
# AdaIN and Beta schedules
# ----------------------------------------------------------------------------------------------------------


def adain_interpolate(a: Any, b: Any, t: float | Sequence[float], *, dim: int = -3, eps: float = 1e-6) -> Any:
    """Slerp two noises, then restore per-channel statistics: mean and std interpolated linearly (AdaIN).

    Inverted noises (DDIM inversion) are far from unit Gaussian and their per-channel mean/std carry the image's
    colour and contrast; a plain slerp averages them away in the middle of the walk. Here
    ``z = slerp(a, b, λ)`` at the fraction λ = ``t`` and each channel of ``z`` is shifted and scaled to mean
    ``(1-λ)·μ_a + λ·μ_b`` and std ``(1-λ)·σ_a + λ·σ_b``. ``dim`` is the channel axis (default -3: ``C x H x W`` or ``B x C x H x W``);
    statistics are taken over every axis after it, separately per channel and per leading (batch) index.
    ``t``, the fraction λ, is a float (one result) or a 1-D sequence (results stacked on a new leading axis),
    as ``frac`` in :func:`helpers.slerp`. Torch tensors and numpy arrays alike; the result keeps the input dtype
    and device.

    Introduced in notebook 07_smooth_interpolation.
    """
    from helpers.interpolation import slerp

    is_numpy = isinstance(a, np.ndarray)
    ta = torch.from_numpy(np.ascontiguousarray(a)) if is_numpy else a
    tb = torch.from_numpy(np.ascontiguousarray(b)) if isinstance(b, np.ndarray) else b
    if not isinstance(ta, torch.Tensor) or not isinstance(tb, torch.Tensor):
        raise TypeError("a and b must be torch tensors or numpy arrays")
    if ta.shape != tb.shape:
        raise ValueError(f"a and b must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}")
    ndim = ta.ndim
    if not -ndim <= dim < ndim:
        raise ValueError(f"dim={dim} is out of range for tensors with {ndim} dimensions")
    channel = dim % ndim
    axes = tuple(range(channel + 1, ndim))
    if not axes:
        raise ValueError(f"dim={dim} is the last axis: AdaIN needs spatial axes after the channel axis")
    scalar = isinstance(t, (int, float, np.floating, np.integer))
    t_arr = np.asarray([t] if scalar else t, dtype=np.float64)
    if t_arr.ndim != 1 or not np.all(np.isfinite(t_arr)):
        raise ValueError("t must be a finite float or a 1-D sequence of floats")

    out_dtype, device = ta.dtype, ta.device
    work = torch.float64 if ta.dtype == torch.float64 else torch.float32
    ta, tb = ta.to(work), tb.to(device=device, dtype=work)
    for name, x in (("a", ta), ("b", tb)):
        if x.numel() and not bool(x.any()):
            raise ValueError(f"adain_interpolate needs two non-zero noises, but `{name}` is all zeros: the slerp "
                             "inside AdaIN has no direction to turn from. Pass noises, e.g. inverted latents or "
                             "helpers.make_latents(pipe, [0, 1]).")
    z = slerp(ta, tb, t_arr.tolist())  # stacked: (T, *shape)
    z = torch.as_tensor(z).to(device=device, dtype=work)

    def stats(x: torch.Tensor, axes: tuple[int, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        return x.mean(dim=axes, keepdim=True), x.std(dim=axes, keepdim=True, unbiased=False)

    mu_a, sd_a = stats(ta, axes)
    mu_b, sd_b = stats(tb, axes)
    w = torch.as_tensor(t_arr, dtype=work, device=device).reshape(-1, *([1] * ndim))
    mu_t = (1 - w) * mu_a + w * mu_b
    sd_t = (1 - w) * sd_a + w * sd_b
    mu_z, sd_z = stats(z, tuple(ax + 1 for ax in axes))
    out = (z - mu_z) / sd_z.clamp_min(eps) * sd_t + mu_t
    out = out.to(out_dtype)
    if scalar:
        out = out[0]
    return out.numpy() if is_numpy else out


def beta_schedule(num_frames: int, alpha: float, beta: float) -> np.ndarray:
    """Fractions ``λ_k = F⁻¹(k / (num_frames - 1))``: the quantiles of Beta(alpha, beta) at evenly spaced
    levels.

    This is AID's Beta prior (He et al., 2024): frame k sits where the Beta CDF reaches k / N, so the frames are
    dense where the Beta *density* is high. ``alpha = beta > 1`` packs them around λ = 0.5, where diffusion
    morphs usually jump (AID's choice); ``alpha = beta = 1`` is linear; ``alpha = beta < 1`` packs them near the
    ends; unequal values move the dense region towards λ = alpha / (alpha + beta). Monotone, in [0, 1], with
    exact endpoints 0 and 1.

    Introduced in notebook 07_smooth_interpolation.
    """
    if not isinstance(num_frames, (int, np.integer)) or num_frames < 2:
        raise ValueError(f"num_frames must be an integer >= 2, got {num_frames!r}")
    for label, v in (("alpha", alpha), ("beta", beta)):
        if not (isinstance(v, (int, float, np.floating, np.integer)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{label} must be a positive finite number, got {v!r}")
    from scipy.stats import beta as beta_dist

    fracs = beta_dist.ppf(np.linspace(0.0, 1.0, num_frames), float(alpha), float(beta)).astype(np.float64)
    fracs[0], fracs[-1] = 0.0, 1.0
    return np.maximum.accumulate(np.clip(fracs, 0.0, 1.0))
