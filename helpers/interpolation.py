"""Interpolation paths through latents and embeddings: slerp, lerp, multi-point walks, loops.

Introduced in notebook 02_slerp_and_latent_geometry. Every function takes torch tensors or numpy arrays and
returns the same kind, with the input's dtype and device; the arithmetic runs in float32 (float64 for float64
inputs), so half-precision latents neither overflow nor lose their norm.

The interpolation fraction ``frac`` (λ in the notebooks: 0 at the first input, 1 at the second) may be a float
(one result, shaped like the inputs) or a 1-D sequence (results stacked on a new leading axis).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from typing import Any, TypeVar, overload

import numpy as np
import torch

from helpers.checks import check_real

Array = torch.Tensor | np.ndarray
# The kind of the first input, which every function returns (a tensor for a tensor, an array for an array).
ArrayT = TypeVar("ArrayT", torch.Tensor, np.ndarray)
Schedule = None | str | Callable[[np.ndarray], np.ndarray] | Sequence[float] | np.ndarray

__all__ = [
    "slerp",
    "lerp",
    "normalize",
    "interpolation_path",
    "circular_walk",
    "walk_around",
    "text_diff",
    "linear_schedule",
    "cosine_schedule",
    "schedule_values",
]


# --------------------------------------------------------------------------------------------------
# conversions and checks


def _as_tensor(x: Array, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        if not np.issubdtype(x.dtype, np.floating):
            raise TypeError(f"`{name}` must hold floating-point numbers, got numpy dtype {x.dtype}.")
        return torch.from_numpy(np.ascontiguousarray(x))
    if isinstance(x, torch.Tensor):
        if not x.is_floating_point():
            raise TypeError(f"`{name}` must hold floating-point numbers, got {x.dtype}.")
        return x
    raise TypeError(f"`{name}` must be a torch.Tensor or a numpy array, got {type(x).__name__}.")


def _work_dtype(x: torch.Tensor) -> torch.dtype:
    return torch.float64 if x.dtype == torch.float64 else torch.float32


def _restore(result: torch.Tensor, like: ArrayT) -> ArrayT:
    """Cast back to the first input's kind, dtype and device."""
    if isinstance(like, np.ndarray):
        return result.detach().cpu().numpy().astype(like.dtype, copy=False)
    return result.to(dtype=like.dtype, device=like.device)


def _prepare_pair(a: Array, b: Array) -> tuple[torch.Tensor, torch.Tensor]:
    ta, tb = _as_tensor(a, "a"), _as_tensor(b, "b")
    if ta.shape != tb.shape:
        raise ValueError(
            f"`a` and `b` must have the same shape, got {tuple(ta.shape)} and {tuple(tb.shape)}. "
            "Interpolate between two latents (or embeddings) of one model and one size."
        )
    if ta.numel() == 0:
        raise ValueError(f"`a` and `b` are empty input (shape {tuple(ta.shape)}): they hold nothing to "
                         "interpolate.")
    work = _work_dtype(ta)
    ta, tb = ta.to(work), tb.to(device=ta.device, dtype=work)
    for name, x in (("a", ta), ("b", tb)):
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"`{name}` contains NaN or infinite values; check the encoder or the seed.")
    return ta, tb


def _prepare_frac(frac: float | Sequence[float] | Array, device: torch.device, dtype: torch.dtype):
    """Returns (the fractions as a 1-D tensor, whether the caller passed a scalar)."""
    if isinstance(frac, torch.Tensor):
        fr = frac.detach().to(device=device, dtype=dtype)
    else:
        try:
            arr = np.asarray(frac, dtype=np.float64) if frac is not None else None
        except (TypeError, ValueError):
            arr = None
        if arr is None:
            raise TypeError(f"frac must be a number or a 1-D sequence of numbers, got {frac!r} "
                            f"({type(frac).__name__}).")
        fr = torch.as_tensor(arr, dtype=dtype, device=device)
    scalar = fr.ndim == 0
    if fr.ndim > 1:
        raise ValueError(f"`frac` must be a number or a 1-D sequence of numbers, got shape {tuple(fr.shape)}.")
    if fr.numel() == 0:
        raise ValueError("`frac` is empty: pass at least one interpolation position.")
    if not bool(torch.isfinite(fr).all()):
        raise ValueError("`frac` contains NaN or infinite values.")
    return fr.reshape(-1), scalar


#: Results may take at most this fraction of the machine's memory (the arithmetic needs a few times more).
_MEMORY_SHARE = 0.25


def _memory_bytes(device: torch.device) -> int | None:
    """The memory of ``device`` in bytes: the GPU's total, or the machine's physical memory; None if unknown."""
    try:
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[1])
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (AttributeError, OSError, RuntimeError, ValueError):
        return None


def _check_result_size(frames: int, like: torch.Tensor, what: str) -> None:
    """Refuse a result of ``frames`` rows shaped like ``like`` that would not fit in memory, saying its size."""
    need = frames * like.numel() * like.element_size()
    have = _memory_bytes(like.device)
    if have is not None and need > _MEMORY_SHARE * have:
        raise ValueError(f"{what} of {frames} frames of shape {tuple(like.shape)} would allocate {need / 1e9:,.1f} GB "
                         f"for its result alone, more than this machine's memory allows ({have / 1e9:,.1f} GB); ask "
                         "for fewer frames, or build the walk in pieces.")


def check_fractions(name: str, values: object, what: str = "0 = the first input, 1 = the second") -> np.ndarray:
    """``values`` (a number or a 1-D sequence of numbers, all finite and in [0, 1]) as a 1-D float64 array; else
    one ``ValueError`` naming ``name``. The fractions of a morph or walk between two endpoints."""
    try:
        arr = np.asarray(values, dtype=np.float64) if values is not None else np.full((1, 1), np.nan)
    except (TypeError, ValueError):
        arr = np.full((1, 1), np.nan)
    if arr.size == 0:
        raise ValueError(f"{name} is empty: give at least one fraction in [0, 1] ({what}).")
    if arr.ndim > 1 or not np.all(np.isfinite(arr)) or arr.min() < 0 or arr.max() > 1:
        raise ValueError(f"{name} must be a number or a 1-D sequence of finite numbers in [0, 1] ({what}), "
                         f"got {values!r}")
    return arr.reshape(-1)


def _reduce_dims(x: torch.Tensor, dim: int | Sequence[int] | None) -> tuple[int, ...]:
    if dim is None:
        return tuple(range(x.ndim))
    dims = (dim,) if isinstance(dim, int) else tuple(dim)
    if x.ndim == 0:
        raise ValueError("`dim` cannot be used with 0-d inputs.")
    bad = [d for d in dims if isinstance(d, bool) or not isinstance(d, int) or not -x.ndim <= d < x.ndim]
    if bad:
        raise ValueError(f"`dim` {bad[0]!r} is out of range for inputs with {x.ndim} axes "
                         f"(valid: {-x.ndim} to {x.ndim - 1}, or None for the whole tensor).")
    return tuple(sorted({d % x.ndim for d in dims}))


def _norm(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """Euclidean norm over ``dims``; where the squares overflow (values near 1e20 in float32) it is computed
    on ``x / max|x|`` instead, so large but finite inputs keep a finite norm."""
    if not dims:
        return x.abs()
    n = torch.linalg.vector_norm(x, dim=dims, keepdim=True)
    if bool(torch.isfinite(n).all()):
        return n
    peak = x.abs().amax(dim=dims, keepdim=True)
    peak = torch.where(peak > 0, peak, torch.ones_like(peak))
    return peak * torch.linalg.vector_norm(x / peak, dim=dims, keepdim=True)


def _sum(x: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    return x.sum(dim=dims, keepdim=True) if dims else x


def _fallback_perpendicular(a_unit: torch.Tensor, dims: tuple[int, ...]) -> torch.Tensor:
    """A deterministic unit vector perpendicular to ``a_unit`` (per slice): the basis vector along which
    ``a_unit`` is smallest (first such index), with its ``a_unit`` component removed."""
    if math.prod(a_unit.shape[d] for d in dims) < 2:  # 0-d, or 1-element slices: no perpendicular exists
        raise ValueError("slerp between exactly opposite 1-element vectors is undefined: there is no "
                         "perpendicular direction to turn through. Use lerp.")
    flat_shape = [s for i, s in enumerate(a_unit.shape) if i not in dims]
    moved = a_unit.permute(*[i for i in range(a_unit.ndim) if i not in dims], *dims)
    moved = moved.reshape(int(np.prod(flat_shape)) if flat_shape else 1, -1)
    idx = moved.abs().argmin(dim=1)
    e = torch.zeros_like(moved)
    e[torch.arange(len(e)), idx] = 1.0
    e = e - (e * moved).sum(dim=1, keepdim=True) * moved
    e = e / torch.linalg.vector_norm(e, dim=1, keepdim=True)  # >= 1/sqrt(2): some |a_i| <= 1/sqrt(2)
    kept = [a_unit.shape[i] for i in range(a_unit.ndim) if i not in dims]
    reduced = [a_unit.shape[i] for i in dims]
    e = e.reshape(*kept, *reduced)
    order = [i for i in range(a_unit.ndim) if i not in dims] + list(dims)
    inverse = [order.index(i) for i in range(a_unit.ndim)]
    return e.permute(*inverse)


def _stack(values: torch.Tensor, ndim: int) -> torch.Tensor:
    """Values of shape (T,) (fractions or angles) → (T, 1, 1, ...), broadcastable against inputs with ``ndim``
    axes."""
    return values.reshape(-1, *([1] * ndim))


# --------------------------------------------------------------------------------------------------
# point-to-point interpolation


def lerp(a: ArrayT, b: Array, frac: float | Sequence[float] | Array) -> ArrayT:
    """Linear interpolation ``(1 - λ)·a + λ·b`` at the fraction λ = ``frac``.

    Introduced in notebook 02_slerp_and_latent_geometry, where its midpoints of Gaussian latents are shown to
    shrink to about 0.71 of the typical norm. Same conventions as :func:`slerp`; ``frac`` outside [0, 1]
    extrapolates along the line through ``a`` and ``b``.
    """
    ta, tb = _prepare_pair(a, b)
    fr, scalar = _prepare_frac(frac, ta.device, ta.dtype)
    _check_result_size(len(fr), ta, "lerp")
    lam = _stack(fr, ta.ndim)
    out = (1 - lam) * ta + lam * tb
    return _restore(out[0] if scalar else out, a)


def slerp(
    a: ArrayT,
    b: Array,
    frac: float | Sequence[float] | Array,
    *,
    dim: int | Sequence[int] | None = None,
    dot_threshold: float = 0.9995,
) -> ArrayT:
    """Spherical linear interpolation from ``a`` (frac=0) to ``b`` (frac=1).

    Introduced in notebook 02_slerp_and_latent_geometry. The direction moves along the great circle through
    ``a`` and ``b`` at constant angular speed, and the norm moves linearly from ``|a|`` to ``|b|``; for inputs
    of equal norm this is the classical ``sin((1-λ)θ)/sin θ · a + sin(λθ)/sin θ · b`` (λ = ``frac``, θ the
    angle between ``a`` and ``b``) and the norm is preserved along the whole path.

    Args:
        a, b: tensors or arrays of the same shape (floating point, finite, non-zero).
        frac: the interpolation fraction λ: a float, or a 1-D sequence of floats (results are stacked on a new
            leading axis).
        dim: ``None`` treats each input as one big vector (the usual choice for latents). An axis (or axes)
            makes every slice along the other axes its own vector, e.g. ``dim=-1`` slerps each row of a batch
            of embeddings separately.
        dot_threshold: when the cosine between the inputs exceeds this, they are nearly parallel and plain
            linear interpolation is used (slerp and lerp agree there, and lerp is numerically safer).

    Exactly opposite inputs have no unique great circle: the path then turns towards a fixed, deterministic
    perpendicular direction (the coordinate axis along which ``a`` is smallest). ``frac`` must lie in [0, 1]:
    slerp does not extrapolate (past the ends the linearly moving norm would turn negative when the norms
    differ, flipping the vector); :func:`lerp` extrapolates linearly.
    """
    ta, tb = _prepare_pair(a, b)
    fr, scalar = _prepare_frac(frac, ta.device, ta.dtype)
    if bool(((fr < -1e-6) | (fr > 1 + 1e-6)).any()):
        raise ValueError(f"slerp interpolates: frac must lie in [0, 1], got values from {float(fr.min()):.4g} to "
                         f"{float(fr.max()):.4g}. To extrapolate along the line, use lerp.")
    fr = fr.clamp(0.0, 1.0)
    _check_result_size(len(fr), ta, "slerp")
    dims = _reduce_dims(ta, dim)
    na, nb = _norm(ta, dims), _norm(tb, dims)
    for name, n in (("a", na), ("b", nb)):
        if bool((n == 0).any()):
            where = "" if dim is None else " (in at least one slice)"
            raise ValueError(f"slerp needs non-zero vectors: `{name}` has zero norm{where}; a zero vector has "
                             "no direction. Use lerp, or check the encoder output.")
    ua, ub = ta / na, tb / nb
    cos = _sum(ua * ub, dims).clamp(-1.0, 1.0)
    # Orthonormal direction from a towards b in their common plane (stable even for small angles).
    residual = ub - cos * ua
    rnorm = _norm(residual, dims)
    degenerate = rnorm <= 1e-6  # parallel (handled by the lerp fallback below) or exactly opposite
    if bool((degenerate & (cos < 0)).any()):
        residual = torch.where(degenerate, _fallback_perpendicular(ua, dims), residual)
    rnorm = torch.where(degenerate, torch.ones_like(rnorm), rnorm)
    v = residual / rnorm
    theta = torch.arccos(cos)  # the angle between a and b

    lam = _stack(fr, ta.ndim)
    turned = lam * theta  # the angle from a reached at fraction λ
    direction = torch.cos(turned) * ua + torch.sin(turned) * v
    out = direction * ((1 - lam) * na + lam * nb)
    parallel = cos > dot_threshold
    if bool(parallel.any()):
        out = torch.where(parallel, (1 - lam) * ta + lam * tb, out)
    return _restore(out[0] if scalar else out, a)


def normalize(x: ArrayT, *, dim: int | Sequence[int] | None = None) -> ArrayT:
    """``x / |x|`` (whole tensor, or per slice along ``dim`` like :func:`slerp`).

    Introduced in notebook 03_unclip_image_interpolation (CLIP embeddings are compared as unit vectors).
    """
    tx = _as_tensor(x, "x")
    work = tx.to(_work_dtype(tx))
    n = _norm(work, _reduce_dims(work, dim))
    if bool((n == 0).any()) or not bool(torch.isfinite(work).all()):
        raise ValueError("normalize needs a finite, non-zero input.")
    return _restore(work / n, x)


# --------------------------------------------------------------------------------------------------
# easing schedules


def linear_schedule(num_frames: int) -> np.ndarray:
    """``num_frames`` evenly spaced fractions λ from 0 to 1 inclusive (float32)."""
    return np.linspace(0.0, 1.0, _check_count(num_frames, 2), dtype=np.float32)


def cosine_schedule(num_frames: int) -> np.ndarray:
    """Cosine ease-in-out: slow near both ends, fast in the middle; ``(1 - cos(πu)) / 2``."""
    return _ease_cosine(linear_schedule(num_frames))


def _ease_linear(u: np.ndarray) -> np.ndarray:
    return u


def _ease_cosine(u: np.ndarray) -> np.ndarray:
    return ((1.0 - np.cos(np.pi * np.asarray(u, dtype=np.float64))) / 2.0).astype(np.float32)


def _ease_in(u: np.ndarray) -> np.ndarray:
    return (np.asarray(u, dtype=np.float64) ** 2).astype(np.float32)


def _ease_out(u: np.ndarray) -> np.ndarray:
    return (1.0 - (1.0 - np.asarray(u, dtype=np.float64)) ** 2).astype(np.float32)


def _ease_cubic(u: np.ndarray) -> np.ndarray:
    u = np.asarray(u, dtype=np.float64)
    return np.where(u < 0.5, 4 * u**3, 1 - (2 - 2 * u) ** 3 / 2).astype(np.float32)


#: The one table of easing curves f(u), f(0) = 0 and f(1) = 1, monotone: walks' ``schedule`` and timelines'
#: per-segment ``easing`` both name them. "ease-in" starts slowly (u²), "ease-out" ends slowly, "cosine" is
#: the gentle ease-in-out (1 - cos πu)/2, "cubic" the stronger one (4u³ up to the middle, mirrored after).
_EASINGS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "linear": _ease_linear, "cosine": _ease_cosine, "ease-in": _ease_in, "ease-out": _ease_out,
    "cubic": _ease_cubic,
}
EASINGS: tuple[str, ...] = tuple(_EASINGS)


def ease(name: str, u: Any) -> np.ndarray:
    """The easing curve ``name`` (one of :data:`EASINGS`) at ``u`` in [0, 1], as float64."""
    if name not in _EASINGS:
        raise ValueError(f"unknown easing {name!r}; use one of {', '.join(EASINGS)}")
    return np.asarray(_EASINGS[name](np.asarray(u, dtype=np.float64)), dtype=np.float64)


def _check_count(n: int, minimum: int) -> int:
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)):
        raise TypeError(f"the number of frames must be an integer, got {n!r}.")
    if n < minimum:
        raise ValueError(f"need at least {minimum} frames, got {n}.")
    return int(n)


def _check_monotone(values: np.ndarray, what: str) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or not np.isfinite(values).all():
        raise ValueError(f"{what} must be a finite 1-D sequence of numbers.")
    if (np.diff(values) < 0).any():
        raise ValueError(f"{what} must be monotone non-decreasing, got {np.round(values, 4).tolist()}.")
    if values.min() < 0 or values.max() > 1:
        raise ValueError(f"{what} must lie in [0, 1], got a range of [{values.min():.4g}, {values.max():.4g}].")
    return values


def _easing(schedule: Schedule) -> Callable[[np.ndarray], np.ndarray]:
    if schedule is None:
        return _ease_linear
    if isinstance(schedule, str):
        try:
            return _EASINGS[schedule]
        except KeyError:
            raise ValueError(f"unknown schedule {schedule!r}; use one of {sorted(_EASINGS)}, a callable, "
                             "or an array of fractions in [0, 1].") from None
    if callable(schedule):
        ends = np.asarray(schedule(np.array([0.0, 1.0])), dtype=np.float64).reshape(-1)
        if ends.shape != (2,) or not np.allclose(ends, [0.0, 1.0], atol=1e-6):
            raise ValueError(f"a schedule function must map 0 to 0 and 1 to 1 (so every keypoint is a frame), "
                             f"got f(0), f(1) = {np.round(ends, 6).tolist()}.")
        return schedule
    raise TypeError(f"expected a schedule name or a callable, got {type(schedule).__name__}.")


def schedule_values(schedule: Schedule, num_frames: int, *, endpoint: bool = True) -> np.ndarray:
    """Resolve a schedule into ``num_frames`` monotone fractions λ in [0, 1] (float32).

    ``schedule`` is ``None``/``"linear"``, ``"cosine"`` (ease-in-out), a callable easing ``f(u)`` applied to
    evenly spaced ``u``, or an explicit monotone array of fractions (returned as is, after checks). With
    ``endpoint=False`` the spacing excludes 1, as a closed loop needs.
    """
    n = _check_count(num_frames, 1)
    if schedule is not None and not isinstance(schedule, str) and not callable(schedule):
        values = _check_monotone(np.asarray(schedule), "a custom schedule")
        if len(values) != n:
            raise ValueError(f"the custom schedule has {len(values)} values but {n} frames were asked for.")
        return values.astype(np.float32)
    u = np.linspace(0.0, 1.0, n, endpoint=endpoint) if n > 1 else np.zeros(1)
    values = np.asarray(_easing(schedule)(u), dtype=np.float64)
    return _check_monotone(values, "the eased schedule").astype(np.float32)


# --------------------------------------------------------------------------------------------------
# walks through several points


def _segment_lengths(points: list[torch.Tensor], method: str, closed: bool) -> np.ndarray:
    pairs = list(zip(points, points[1:] + points[:1] if closed else points[1:]))
    lengths = []
    for p, q in pairs:
        if method == "slerp":
            cos = float((p * q).sum() / (torch.linalg.vector_norm(p) * torch.linalg.vector_norm(q)))
            lengths.append(math.acos(min(1.0, max(-1.0, cos))))
        else:
            lengths.append(float(torch.linalg.vector_norm(q - p)))
    return np.asarray(lengths)


def _allocate(lengths: np.ndarray, frames: int) -> np.ndarray:
    """Split ``frames`` among segments in proportion to ``lengths`` (largest remainder), at least 1 each."""
    k = len(lengths)
    total = lengths.sum()
    share = lengths / total * frames if total > 0 else np.full(k, frames / k)
    counts = np.maximum(1, np.floor(share).astype(int))
    while counts.sum() > frames:  # the minimum of 1 may overshoot: take from the best-provided segment
        counts[np.argmax(counts - share)] -= 1
    remainder = share - counts
    while counts.sum() < frames:
        i = int(np.argmax(remainder))
        counts[i] += 1
        remainder[i] -= 1
    return counts


@overload
def interpolation_path(
    keypoints: Sequence[torch.Tensor] | torch.Tensor,
    num_frames: int,
    *,
    method: str = ...,
    closed: bool = ...,
    schedule: Schedule = ...,
) -> torch.Tensor: ...


@overload
def interpolation_path(
    keypoints: Sequence[np.ndarray] | np.ndarray,
    num_frames: int,
    *,
    method: str = ...,
    closed: bool = ...,
    schedule: Schedule = ...,
) -> np.ndarray: ...


def interpolation_path(
    keypoints: Sequence[Array] | Array,
    num_frames: int,
    *,
    method: str = "slerp",
    closed: bool = False,
    schedule: Schedule = None,
) -> Array:
    """A walk through 2..N keypoints, returned as one stacked tensor/array of ``num_frames`` frames.

    Introduced in notebook 04_prompt_walks. Every keypoint appears exactly once, as a frame; no frame is
    duplicated at the joins. Frames are shared among the segments in proportion to their length (the angle
    between the keypoints for ``method="slerp"``, the Euclidean distance for ``"lerp"``), at least one each.
    With ``closed=True`` the walk returns towards the first keypoint without repeating it, so an animation
    loops seamlessly.

    ``schedule`` eases the motion inside every segment (``"linear"``, ``"cosine"`` to linger at each keypoint,
    or a callable ``f(u)``). An explicit monotone array of ``num_frames`` positions in [0, 1] instead places
    the frames along the whole path by fraction of its length (for ``closed=True`` keep them below 1).
    """
    if method not in ("slerp", "lerp"):
        raise ValueError(f"method must be 'slerp' or 'lerp', got {method!r}.")
    points_in = list(keypoints)
    if len(points_in) < 2:
        raise ValueError(f"a path needs at least 2 keypoints, got {len(points_in)}.")
    like = points_in[0]
    shape = tuple(like.shape)
    points = []
    for i, p in enumerate(points_in):
        tp = _as_tensor(p, f"keypoints[{i}]")
        if tuple(tp.shape) != shape:
            raise ValueError(f"all keypoints must have the same shape: keypoints[0] is {shape}, "
                             f"keypoints[{i}] is {tuple(tp.shape)}.")
        if not bool(torch.isfinite(tp).all()):
            raise ValueError(f"keypoints[{i}] contains NaN or infinite values.")
        points.append(tp.to(_work_dtype(tp)))
    device = points[0].device
    points = [p.to(device) for p in points]
    interp = slerp if method == "slerp" else lerp
    k = len(points)
    n_segments = k if closed else k - 1
    min_frames = k if closed else k
    num_frames = _check_count(num_frames, min_frames)
    _check_result_size(num_frames, points[0], "interpolation_path")
    lengths = _segment_lengths(points, method, closed)
    ends = points[1:] + points[:1] if closed else points[1:]

    if schedule is not None and not isinstance(schedule, str) and not callable(schedule):
        # Global positions along the path, by fraction of its total length.
        pos = _check_monotone(np.asarray(schedule), "a custom schedule")
        if len(pos) != num_frames:
            raise ValueError(f"the custom schedule has {len(pos)} values but {num_frames} frames were asked for.")
        cum = np.concatenate([[0.0], np.cumsum(lengths)]) / max(lengths.sum(), 1e-12)
        frames = []
        for s in pos:
            seg = min(int(np.searchsorted(cum, s, side="right")) - 1, n_segments - 1)
            span = cum[seg + 1] - cum[seg]
            local = 0.0 if span <= 0 else (s - cum[seg]) / span
            frames.append(interp(points[seg], ends[seg], float(local)))
        return _restore(torch.stack(frames), like)

    ease = _easing(schedule)
    counts = _allocate(lengths, num_frames if closed else num_frames - 1)
    frames = []
    for seg in range(n_segments):
        u = np.arange(counts[seg]) / counts[seg]
        fracs = _check_monotone(np.asarray(ease(u), dtype=np.float64), "a schedule function's values")
        frames.append(interp(points[seg], ends[seg], fracs))
    if not closed:
        frames.append(points[-1][None])
    return _restore(torch.cat(frames), like)


def circular_walk(x: ArrayT, y: Array, num_frames: int) -> ArrayT:
    """A seamless loop ``cos(θ)·x + sin(θ)·y`` for θ over [0, 2π) with the endpoint excluded.

    Introduced in notebook 05_circular_noise_walks. For two independent Gaussian noises every frame is again a
    Gaussian noise of the same distribution (the norm stays near √d), and the last frame leads smoothly back
    into the first, so a looping GIF has no stutter.
    """
    tx, ty = _prepare_pair(x, y)
    n = _check_count(num_frames, 3)
    _check_result_size(n, tx, "circular_walk")
    dims = tuple(range(tx.ndim))
    nx, ny = _norm(tx, dims), _norm(ty, dims)
    if bool(nx == 0) or bool(ny == 0):
        raise ValueError("circular_walk needs two non-zero tensors; one is all zeros. Use two independent "
                         "noises, e.g. helpers.make_latents(pipe, [0, 1]).")
    if abs(float(_sum((tx / nx) * (ty / ny), dims))) > 0.9995:
        raise ValueError("circular_walk needs two different directions, but x and y are parallel (the loop "
                         "would pass through zero). Use two independent noises, e.g. helpers.make_latents(pipe, "
                         "[0, 1]).")
    theta = torch.arange(n, dtype=tx.dtype, device=tx.device) * (2 * math.pi / n)
    angle = _stack(theta, tx.ndim)
    return _restore(torch.cos(angle) * tx + torch.sin(angle) * ty, x)


def walk_around(
    center: ArrayT,
    num_frames: int,
    *,
    radius: float,
    generator: torch.Generator | None = None,
) -> ArrayT:
    """A small closed loop around one point: ``center + radius·|center|·(cos θ·u + sin θ·v)``.

    Introduced in notebook 04_prompt_walks ("walking around a prompt"). ``u`` and ``v`` are random unit
    directions, orthogonal to each other and to ``center``, drawn from ``generator`` on the CPU (so a seed
    gives the same loop on every device). ``radius`` is relative to the norm of ``center``; θ covers [0, 2π)
    without repeating the first frame.
    """
    tc = _as_tensor(center, "center")
    work = tc.to(_work_dtype(tc))
    if not bool(torch.isfinite(work).all()):
        raise ValueError("`center` contains NaN or infinite values.")
    radius = check_real("radius", radius, low=0.0, low_open=True, hint="it is relative to |center|, e.g. 0.1")
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator or None, got {type(generator).__name__}; "
                        "e.g. generator=helpers.make_generator(42)")
    n = _check_count(num_frames, 3)
    _check_result_size(n, work, "walk_around")
    c = work.detach().cpu().reshape(-1)
    cnorm = torch.linalg.vector_norm(c)
    if cnorm == 0:
        raise ValueError("walk_around needs a non-zero center: the radius is relative to its norm.")
    if c.numel() < 3:
        raise ValueError("walk_around needs at least 3 dimensions to circle around a point.")
    largest = torch.finfo(tc.dtype).max
    if (1 + radius) * float(cnorm) >= largest:
        raise ValueError(f"radius={radius:g} times |center| ({float(cnorm):.3g}) overflows {tc.dtype}, whose "
                         f"largest value is {largest:.3g}: the loop would be inf. Use a radius around 0.1.")
    basis = [c / cnorm]
    for _ in range(2):
        r = torch.randn(c.shape, generator=generator, dtype=c.dtype)
        for q in basis:
            r = r - (r @ q) * q
        basis.append(r / torch.linalg.vector_norm(r))
    u, v = basis[1], basis[2]
    theta = torch.arange(n, dtype=c.dtype) * (2 * math.pi / n)
    loop = c + radius * cnorm * (torch.cos(theta)[:, None] * u + torch.sin(theta)[:, None] * v)
    return _restore(loop.reshape(n, *work.shape).to(work.device), center)


def text_diff(image_embed: ArrayT, text_embed: Array, base_text_embed: Array, fracs) -> ArrayT:
    """DALL-E 2's text diff: ``slerp(z_i, z_d, λ)`` with ``z_d = normalize(z_t − z_t0)``, at the fractions
    λ = ``fracs``.

    Introduced in notebook 03_unclip_image_interpolation. ``z_i`` is a CLIP image embedding, ``z_t`` the
    text embedding of the change you want ("a big green apple") and ``z_t0`` of the current content
    ("a big red apple"). ``z_d`` is rescaled to the norm of ``z_i`` so the whole path stays on the sphere
    of the embeddings the decoder was trained on. Batched embeddings (N, D) are handled row by row; the DALL-E 2
    paper (which calls the fraction θ) uses fractions up to about 0.5.
    """
    ti = _as_tensor(image_embed, "image_embed")
    tt = _as_tensor(text_embed, "text_embed").to(device=ti.device, dtype=_work_dtype(ti))
    tb = _as_tensor(base_text_embed, "base_text_embed").to(device=ti.device, dtype=_work_dtype(ti))
    if tt.shape != tb.shape:
        raise ValueError(f"text_embed and base_text_embed must have the same shape, got {tuple(tt.shape)} and "
                         f"{tuple(tb.shape)}.")
    diff = torch.broadcast_to(tt - tb, ti.shape)
    if bool((torch.linalg.vector_norm(diff, dim=-1) == 0).any()):
        raise ValueError("text_embed equals base_text_embed: the text diff has no direction. Use two "
                         "different captions.")
    work = ti.to(_work_dtype(ti))
    z_d = normalize(diff, dim=-1) * torch.linalg.vector_norm(work, dim=-1, keepdim=True)
    return _restore(slerp(work, z_d, fracs, dim=-1), image_embed)
