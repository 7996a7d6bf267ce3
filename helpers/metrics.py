"""Weight-free interpolation metrics: how far apart consecutive frames are, and how evenly a walk moves.

For frames ``x_0 .. x_N`` the adjacent distances are ``d_i = D(x_{i-1}, x_i)`` with ``D`` one of

* ``"rmse"`` — root-mean-square pixel difference, pixels in [0, 1];
* ``"ssim"`` — ``1 - SSIM`` (Gaussian-window SSIM of Wang et al. 2004: 11x11 window, sigma 1.5,
  K1 = 0.01, K2 = 0.03, data range 1, colour channels averaged);
* ``"latent_l2"`` — Euclidean norm of the difference of two latent (or embedding) tensors;
* or any callable ``D(a, b) -> float``.

:func:`walk_report` turns ``d`` into the summary numbers used in the papers (DiffMorpher's path length and
PDV, AID's smoothness = 1 - Gini) plus a few plain ones (coefficient of variation, jump ratio, directness,
loop closure gap). None of them needs downloaded network weights.

Introduced in notebook 07_smooth_interpolation.
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

__all__ = [
    "SummaryTable",
    "WalkReport",
    "adjacent_distances",
    "gini",
    "latent_l2",
    "one_minus_ssim",
    "plot_distances",
    "rmse",
    "ssim",
    "summary_table",
    "walk_report",
]

MetricLike = str | Callable[[Any, Any], float]

# SSIM constants of Wang et al. (2004).
_SSIM_SIGMA = 1.5
_SSIM_RADIUS = 5  # 11x11 window
_SSIM_K1 = 0.01
_SSIM_K2 = 0.03
_RANGE_TOL = 1e-3


# ----------------------------------------------------------------------------------------------------------
# Frame conversion (full float precision: no round trip through 8-bit PIL images)
# ----------------------------------------------------------------------------------------------------------


def _channels_last(arr: np.ndarray, prefer_first: bool) -> np.ndarray:
    """A 3-D image array in HxWxC order; channels-first is detected from an axis of 1, 3 or 4 entries."""
    first, last = arr.shape[0] in (1, 3, 4), arr.shape[-1] in (1, 3, 4)
    if first and (prefer_first or not last):
        return np.moveaxis(arr, 0, -1)
    return arr


def _image_array(frame: Any) -> np.ndarray:
    """One frame as a float64 HxWxC array in [0, 1]."""
    pil_image: type | None
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        pil_image = None
    else:
        pil_image = Image.Image
    if pil_image is not None and isinstance(frame, pil_image):
        mode = "L" if frame.mode in ("1", "L", "LA", "I", "I;16", "F") else "RGB"
        arr = np.asarray(frame.convert(mode), dtype=np.float64) / 255.0
        return arr[..., None] if arr.ndim == 2 else arr
    prefer_first = isinstance(frame, torch.Tensor)
    if isinstance(frame, torch.Tensor):
        frame = frame.detach().to("cpu")
        frame = frame.numpy() if frame.dtype in (torch.uint8, torch.bool) else frame.double().numpy()
    if not isinstance(frame, np.ndarray):
        raise TypeError(
            f"a frame must be a PIL image, a numpy array or a torch tensor, got {type(frame).__name__}"
        )
    if np.issubdtype(frame.dtype, np.integer):
        if frame.size and (frame.min() < 0 or frame.max() > 255):
            raise ValueError("integer image frames must hold values in 0..255 (8-bit pixels)")
        arr = frame.astype(np.float64) / 255.0
    elif frame.dtype == np.bool_ or np.issubdtype(frame.dtype, np.floating):
        arr = frame.astype(np.float64)
    else:
        raise TypeError(f"image frames must be integer (0..255), bool or float arrays, got dtype {frame.dtype}")
    if arr.ndim == 2:
        arr = arr[..., None]
    elif arr.ndim == 3:
        arr = _channels_last(arr, prefer_first)
    else:
        raise ValueError(
            f"an image frame must have 2 (HxW) or 3 (HxWxC or CxHxW) dimensions, got shape {tuple(arr.shape)}"
        )
    if not np.all(np.isfinite(arr)):
        raise ValueError("image frame contains NaN or infinite values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -_RANGE_TOL or hi > 1 + _RANGE_TOL:
        raise ValueError(
            f"float image frames must have pixels in [0, 1], got values in [{lo:.3g}, {hi:.3g}]. "
            "Rescale [-1, 1] images with (x + 1) / 2, or use metric='latent_l2' for latents."
        )
    return np.clip(arr, 0.0, 1.0)


def _latent_array(x: Any) -> np.ndarray:
    if isinstance(x, torch.Tensor):
        x = x.detach().to("cpu").double().numpy()
    arr = np.asarray(x, dtype=np.float64)
    if not np.all(np.isfinite(arr)):
        raise ValueError("latent contains NaN or infinite values")
    return arr


def split_frames(frames: Any, images: bool = False) -> list[Any]:
    """A walk as a list of single frames: a list/tuple, a batch (leading frame axis), or a pipeline output.

    For images (``images=True``) the conventions of :mod:`helpers.media` apply: a batch is 4-D (``NxHxWxC``
    array, ``NxCxHxW`` tensor), a 2-D/3-D array is one frame, and list items that are batches are concatenated.
    Otherwise (latents, embeddings) the leading axis of an array or tensor always indexes frames.
    """
    if hasattr(frames, "images") and not isinstance(frames, (np.ndarray, torch.Tensor, list, tuple)):
        frames = frames.images
    if isinstance(frames, (np.ndarray, torch.Tensor)):
        if images and frames.ndim in (2, 3):
            return [frames]
        if frames.ndim < 2 or (images and frames.ndim != 4):
            want = "a 4-D batch of images" if images else "a leading frame axis"
            raise ValueError(f"a batch of frames needs {want}, got shape {tuple(frames.shape)}")
        return list(frames)
    if isinstance(frames, (str, bytes)) or not isinstance(frames, Iterable):
        raise TypeError(f"frames must be a list or a batch of frames, got {type(frames).__name__}")
    out: list[Any] = []
    for item in frames:
        if images and isinstance(item, (np.ndarray, torch.Tensor)) and item.ndim == 4:
            out.extend(item)
        else:
            out.append(item)
    return out


def _check_same_shape(a: np.ndarray, b: np.ndarray, what: str) -> None:
    if a.shape != b.shape:
        raise ValueError(
            f"{what} must have the same shape, got {tuple(a.shape)} and {tuple(b.shape)}; "
            "resize the frames to one size first"
        )


# ----------------------------------------------------------------------------------------------------------
# Distances
# ----------------------------------------------------------------------------------------------------------


def _gauss(x: np.ndarray) -> np.ndarray:
    from scipy.ndimage import gaussian_filter

    return gaussian_filter(
        x, sigma=(_SSIM_SIGMA, _SSIM_SIGMA, 0.0), mode="reflect", truncate=_SSIM_RADIUS / _SSIM_SIGMA
    )


def _ssim_prepare(frame: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    arr = _image_array(frame)
    mu = _gauss(arr)
    return arr, mu, _gauss(arr * arr) - mu * mu


def _ssim_pair(sa: tuple, sb: tuple) -> float:
    (a, mu_a, var_a), (b, mu_b, var_b) = sa, sb
    _check_same_shape(a, b, "frames")
    cov = _gauss(a * b) - mu_a * mu_b
    c1, c2 = _SSIM_K1**2, _SSIM_K2**2
    num = (2 * mu_a * mu_b + c1) * (2 * cov + c2)
    den = (mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2)
    return float(np.mean(num / den))


def _rmse_pair(a: np.ndarray, b: np.ndarray) -> float:
    _check_same_shape(a, b, "frames")
    return float(np.sqrt(np.mean((a - b) ** 2)))


def _l2_pair(a: np.ndarray, b: np.ndarray) -> float:
    _check_same_shape(a, b, "latents")
    return float(np.linalg.norm((a - b).ravel()))


def ssim(a: Any, b: Any) -> float:
    """Mean SSIM of two images (1 for identical images). Pixels in [0, 1]; colour channels averaged.

    Gaussian 11x11 window with sigma 1.5, K1 = 0.01, K2 = 0.03 (Wang et al. 2004); borders are reflected,
    so images smaller than the window (8x8 thumbnails) work too.

    Introduced in notebook 07_smooth_interpolation.
    """
    return _ssim_pair(_ssim_prepare(a), _ssim_prepare(b))


def one_minus_ssim(a: Any, b: Any) -> float:
    """Structural distance ``1 - SSIM(a, b)``: 0 for identical images. Introduced in notebook 07_smooth_interpolation."""
    return 1.0 - ssim(a, b)


def rmse(a: Any, b: Any) -> float:
    """Root-mean-square pixel difference of two images, pixels in [0, 1].

    Frames may be PIL images, uint8 or float arrays (HxW, HxWxC) or torch tensors (CxHxW, floats in [0, 1]).

    Introduced in notebook 07_smooth_interpolation.
    """
    return _rmse_pair(_image_array(a), _image_array(b))


def latent_l2(a: Any, b: Any) -> float:
    """Euclidean norm ``||a - b||`` of two latents or embeddings (torch tensors or arrays of one shape).

    Introduced in notebook 07_smooth_interpolation.
    """
    return _l2_pair(_latent_array(a), _latent_array(b))


_METRICS: dict[str, tuple[Callable[[Any], Any], Callable[[Any, Any], float]]] = {
    "rmse": (_image_array, _rmse_pair),
    "ssim": (_ssim_prepare, lambda sa, sb: 1.0 - _ssim_pair(sa, sb)),
    "latent_l2": (_latent_array, _l2_pair),
}


def resolve_metric(metric: MetricLike) -> tuple[str, Callable[[Any], Any], Callable[[Any, Any], float]]:
    """(name, prepare, pair): ``prepare`` runs once per frame, ``pair`` once per pair of prepared frames."""
    if callable(metric):
        return getattr(metric, "__name__", "custom"), (lambda x: x), (lambda a, b: float(metric(a, b)))
    if isinstance(metric, str) and metric in _METRICS:
        prepare, pair = _METRICS[metric]
        return metric, prepare, pair
    raise ValueError(f"unknown metric {metric!r}; use one of {sorted(_METRICS)} or a callable D(a, b) -> float")


def _prepared_frames(frames: Any, metric: MetricLike) -> tuple[str, Callable[[Any, Any], float], list[Any]]:
    """(the metric's name, its pair distance, every frame prepared once): at least 2 frames, else one error."""
    name, prepare, pair = resolve_metric(metric)
    items = split_frames(frames, images=metric in ("rmse", "ssim"))
    if len(items) < 2:
        raise ValueError(f"need at least 2 frames to measure a walk, got {len(items)}")
    return name, pair, [prepare(x) for x in items]


def adjacent_distances(frames: Any, metric: MetricLike = "rmse") -> np.ndarray:
    """Distances ``d_i = D(x_{i-1}, x_i)`` between consecutive frames, as a float64 array of length N.

    ``frames`` is a list or a batch (leading frame axis) of N + 1 >= 2 frames; ``metric`` is ``"rmse"``,
    ``"ssim"`` (meaning 1 - SSIM), ``"latent_l2"`` or a callable ``D(a, b) -> float``.

    Introduced in notebook 07_smooth_interpolation.
    """
    _, pair, prepared = _prepared_frames(frames, metric)
    return np.array([pair(prepared[i - 1], prepared[i]) for i in range(1, len(prepared))], dtype=np.float64)


# ----------------------------------------------------------------------------------------------------------
# Summary statistics
# ----------------------------------------------------------------------------------------------------------


def gini(d: Sequence[float] | np.ndarray) -> float:
    """Gini coefficient ``sum_i sum_j |d_i - d_j| / (2 n^2 mean(d))``: 0 when all d are equal.

    Computed in O(n log n) from the sorted values; NaN when ``mean(d) == 0``.

    Introduced in notebook 07_smooth_interpolation.
    """
    x = np.sort(np.asarray(d, dtype=np.float64).ravel())
    n = x.size
    if n == 0:
        raise ValueError("gini needs at least one value")
    if np.any(x < 0) or not np.all(np.isfinite(x)):
        raise ValueError("gini needs finite, non-negative values (distances)")
    mean = x.mean()
    if mean == 0:
        return math.nan
    # sum_i sum_j |x_i - x_j| = 2 * sum_k (2k - n - 1) x_(k) for sorted x, k = 1..n
    k = np.arange(1, n + 1)
    return float(2.0 * np.sum((2 * k - n - 1) * x) / (2.0 * n * n * mean))


def _ratio(num: float, den: float) -> float:
    if den == 0:
        return math.nan if num == 0 else math.inf
    return num / den


@dataclass(frozen=True, eq=False)
class WalkReport:
    """Summary numbers of one walk (see :func:`walk_report`). Introduced in notebook 07_smooth_interpolation."""

    name: str
    metric: str
    closed: bool
    num_frames: int
    distances: np.ndarray = field(repr=False)
    path_length: float  # sum of d
    mean: float  # mean of d ("consistency" in AID)
    pdv: float  # variance of d (DiffMorpher's perceptual distance variance, here with a weight-free D)
    cv: float  # std / mean: 0 for a perfectly even walk
    gini: float
    smoothness: float  # 1 - Gini (AID): 1 for a perfectly even walk
    jump_ratio: float  # max / mean: the biggest jump in units of an average step
    directness: float  # sum of d / D(x_0, x_N) (open walks; 1 for a straight line under a true metric)
    closure_gap: float  # D(x_N, x_0) / mean(d) (closed walks; 1 = the wrap-around step is an average step)

    @classmethod
    def from_distances(
        cls,
        distances: Sequence[float] | np.ndarray,
        *,
        end_to_end: float | None = None,
        closed: bool = False,
        name: str | None = None,
        metric: str = "custom",
    ) -> WalkReport:
        """Build a report from adjacent distances; ``end_to_end`` is ``D(x_0, x_N)`` (equal to ``D(x_N, x_0)``)."""
        d = np.asarray(distances, dtype=np.float64).ravel()
        if d.size == 0:
            raise ValueError("need at least one distance (two frames)")
        if np.any(d < 0) or not np.all(np.isfinite(d)):
            raise ValueError("distances must be finite and non-negative")
        mean = float(d.mean())
        total = float(d.sum())
        g = gini(d)
        directness = closure = math.nan
        if end_to_end is not None:
            if closed:
                closure = _ratio(float(end_to_end), mean)
            else:
                directness = _ratio(total, float(end_to_end))
        return cls(
            name=name or "walk",
            metric=metric,
            closed=closed,
            num_frames=int(d.size + 1),
            distances=d,
            path_length=total,
            mean=mean,
            pdv=float(d.var()),
            cv=_ratio(float(d.std()), mean),
            gini=g,
            smoothness=1.0 - g,
            jump_ratio=_ratio(float(d.max()), mean),
            directness=directness,
            closure_gap=closure,
        )

    def as_dict(self) -> dict[str, Any]:
        """All fields as a plain dict (distances as a list)."""
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["distances"] = self.distances.tolist()
        return out


def walk_report(
    frames: Any, *, metric: MetricLike = "rmse", closed: bool = False, name: str | None = None
) -> WalkReport:
    """Measure how evenly a walk moves: adjacent distances and their summary numbers.

    ``closed=True`` means the animation loops (frame N is followed by frame 0, not repeated in ``frames``):
    the report then gives the loop closure gap ``D(x_N, x_0) / mean(d)`` (1 is ideal, 0 means a duplicated end
    frame, i.e. a stutter) instead of the directness.

    Introduced in notebook 07_smooth_interpolation.
    """
    metric_name, pair, prepared = _prepared_frames(frames, metric)
    d = [pair(prepared[i - 1], prepared[i]) for i in range(1, len(prepared))]
    end = pair(prepared[-1], prepared[0]) if closed else pair(prepared[0], prepared[-1])
    return WalkReport.from_distances(d, end_to_end=end, closed=closed, name=name, metric=metric_name)


# ----------------------------------------------------------------------------------------------------------
# Presentation
# ----------------------------------------------------------------------------------------------------------

_COLUMNS: list[tuple[str, str]] = [
    ("walk", "name"),
    ("metric", "metric"),
    ("frames", "num_frames"),
    ("path length", "path_length"),
    ("mean d", "mean"),
    ("PDV", "pdv"),
    ("CV", "cv"),
    ("smoothness", "smoothness"),
    ("jump", "jump_ratio"),
    ("directness", "directness"),
    ("closure", "closure_gap"),
]


#: Table values smaller than this print as 0: float rounding (a PDV of 3.6e-34 on an even walk), not a measurement.
FLOAT_NOISE = 1e-9


def _fmt(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        x = float(value)
        if math.isnan(x):
            return "–"
        return "0" if abs(x) < FLOAT_NOISE else f"{x:.4g}"
    return str(value)


class SummaryTable:
    """One line per walk. Prints as plain text; displays as an HTML table in Jupyter.

    Introduced in notebook 07_smooth_interpolation.
    """

    def __init__(self, reports: Sequence[WalkReport], extra: Mapping[str, Sequence[Any]] | None = None):
        self.reports = list(reports)
        extra = dict(extra or {})
        for title, values in extra.items():
            if len(values) != len(self.reports):
                raise ValueError(f"extra column {title!r} has {len(values)} values for {len(self.reports)} walks")
        self.header = [title for title, _ in _COLUMNS] + list(extra)
        self.rows = [[_fmt(getattr(r, key)) for _, key in _COLUMNS] + [_fmt(v[i]) for v in extra.values()]
                     for i, r in enumerate(self.reports)]

    def __str__(self) -> str:
        widths = [max(len(h), *(len(row[i]) for row in self.rows)) for i, h in enumerate(self.header)]

        def line(cells: list[str]) -> str:
            first = cells[0].ljust(widths[0])
            rest = [c.rjust(w) for c, w in zip(cells[1:], widths[1:])]
            return "  ".join([first, *rest]).rstrip()

        rule = "  ".join("-" * w for w in widths)
        return "\n".join([line(self.header), rule, *(line(r) for r in self.rows)])

    __repr__ = __str__

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.header)
        body = "".join(
            "<tr>"
            + f'<td style="text-align:left">{html.escape(row[0])}</td>'
            + "".join(f'<td style="text-align:right">{html.escape(c)}</td>' for c in row[1:])
            + "</tr>"
            for row in self.rows
        )
        return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _as_reports(reports: Any) -> list[WalkReport]:
    if isinstance(reports, WalkReport):
        return [reports]
    if isinstance(reports, Mapping):
        out = []
        for key, value in reports.items():
            if isinstance(value, WalkReport):
                out.append(value if value.name == str(key) else _renamed(value, str(key)))
            else:
                out.append(WalkReport.from_distances(value, name=str(key)))
        return out
    out = list(reports)
    if not all(isinstance(r, WalkReport) for r in out):
        raise TypeError("summary_table takes WalkReport objects (from helpers.walk_report), a list or a dict of them")
    return out


def _renamed(report: WalkReport, name: str) -> WalkReport:
    from dataclasses import replace

    return replace(report, name=name)


def summary_table(
    reports: WalkReport | Sequence[WalkReport] | Mapping[str, Any], *, extra: Mapping[str, Sequence[Any]] | None = None
) -> SummaryTable:
    """A one-line-per-walk comparison table of :class:`WalkReport` objects (a list, or a dict name → report).

    ``extra`` adds columns, title → one value per walk (notebook 08 adds the endpoint error). ``print(table)``
    gives plain text; a notebook cell ending in ``table`` shows an HTML table.

    Introduced in notebook 07_smooth_interpolation.
    """
    items = _as_reports(reports)
    if not items:
        raise ValueError("summary_table needs at least one report")
    return SummaryTable(items, extra)


def plot_distances(reports_or_d: Any, ax: Any = None, *, x: str = "step", title: str | None = None) -> Any:
    """Plot the adjacent distances ``d_i`` along one or more walks; returns the matplotlib axes.

    ``reports_or_d``: a :class:`WalkReport`, a 1-D array of distances, a list of those, or a dict label → either.
    ``x="step"`` plots against the step index i (frames i-1 → i); ``x="progress"`` against i / N, which lines
    up walks with different frame counts. A flat line means an even walk; a spike is a jump.

    Introduced in notebook 07_smooth_interpolation.
    """
    if x not in ("step", "progress"):
        raise ValueError(f"x must be 'step' or 'progress', got {x!r}")
    if isinstance(reports_or_d, Mapping):
        series = list(reports_or_d.items())
    elif isinstance(reports_or_d, WalkReport) or (
        isinstance(reports_or_d, (np.ndarray, torch.Tensor)) and reports_or_d.ndim == 1
    ):
        series = [(None, reports_or_d)]
    elif isinstance(reports_or_d, Sequence) and reports_or_d and all(
        isinstance(v, (int, float, np.floating)) for v in reports_or_d
    ):
        series = [(None, reports_or_d)]
    else:
        series = [(None, v) for v in reports_or_d]
    if not series:
        raise ValueError("nothing to plot")
    if ax is None:
        import matplotlib.pyplot as plt

        _, ax = plt.subplots(figsize=(6, 3))
    metrics = set()
    for k, (label, item) in enumerate(series):
        if isinstance(item, WalkReport):
            report = item
        else:
            values = item.detach().cpu().numpy() if isinstance(item, torch.Tensor) else item
            report = WalkReport.from_distances(values, name=f"walk {k + 1}" if label is None else str(label))
        metrics.add(report.metric)
        d = report.distances
        steps = np.arange(1, d.size + 1)
        xs = steps / d.size if x == "progress" else steps
        name = report.name if label is None else str(label)
        ax.plot(xs, d, marker="o", markersize=3, label=f"{name} (CV {_fmt(report.cv)})")
    ax.set_xlabel("step i (frame i-1 → i)" if x == "step" else "progress i / N")
    metric = metrics.pop() if len(metrics) == 1 else None
    ax.set_ylabel("d_i" if metric in (None, "custom") else f"d_i ({metric})")  # raw arrays: no known metric
    ax.set_ylim(bottom=0)
    if title:
        ax.set_title(title)
    ax.legend()
    return ax
