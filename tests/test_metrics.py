"""helpers.metrics: distances and walk summaries checked against sequences with known answers."""

from __future__ import annotations

import math

import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from helpers.metrics import (
    WalkReport,
    adjacent_distances,
    gini,
    latent_l2,
    one_minus_ssim,
    plot_distances,
    rmse,
    ssim,
    summary_table,
    walk_report,
)

matplotlib.use("Agg")

C1, C2 = 0.01**2, 0.03**2


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _image(seed: int, shape=(24, 20, 3)) -> np.ndarray:
    return _rng(seed).uniform(0.1, 0.9, size=shape)


def _ssim_reference(a: np.ndarray, b: np.ndarray) -> float:
    """Straight from the formula: explicit 11x11 Gaussian window, symmetric padding, per-pixel sums."""
    ax = np.arange(-5, 6)
    g = np.exp(-(ax[:, None] ** 2 + ax[None, :] ** 2) / (2 * 1.5**2))
    w = g / g.sum()
    vals = []
    for c in range(a.shape[2]):
        pa = np.pad(a[..., c], 5, mode="symmetric")
        pb = np.pad(b[..., c], 5, mode="symmetric")
        for i in range(a.shape[0]):
            for j in range(a.shape[1]):
                wa, wb = pa[i : i + 11, j : j + 11], pb[i : i + 11, j : j + 11]
                mx, my = (w * wa).sum(), (w * wb).sum()
                vx = (w * (wa - mx) ** 2).sum()
                vy = (w * (wb - my) ** 2).sum()
                cxy = (w * (wa - mx) * (wb - my)).sum()
                vals.append((2 * mx * my + C1) * (2 * cxy + C2) / ((mx**2 + my**2 + C1) * (vx + vy + C2)))
    return float(np.mean(vals))


# ------------------------------------------------------------------------------------------------ distances


def test_rmse_of_constant_images_is_their_difference():
    a, b = np.full((8, 8, 3), 0.2), np.full((8, 8, 3), 0.65)
    assert rmse(a, b) == pytest.approx(0.45)
    assert rmse(a, a) == 0.0


def test_frame_formats_agree():
    arr = (_image(1) * 255).round().astype(np.uint8)
    other = (_image(2) * 255).round().astype(np.uint8)
    expected = float(np.sqrt(np.mean((arr / 255.0 - other / 255.0) ** 2)))
    as_tensor = torch.from_numpy(arr).permute(2, 0, 1).float() / 255.0  # C x H x W in [0, 1]
    forms = [
        (arr, other),
        (Image.fromarray(arr), Image.fromarray(other)),
        (as_tensor, torch.from_numpy(other).permute(2, 0, 1).float() / 255.0),
        (arr.astype(np.float32) / 255.0, other),
    ]
    for a, b in forms:
        assert rmse(a, b) == pytest.approx(expected, rel=1e-6)


def test_ssim_identity_and_symmetry():
    a, b = _image(3), _image(4)
    assert ssim(a, a) == pytest.approx(1.0, abs=1e-12)
    assert one_minus_ssim(a, a) == pytest.approx(0.0, abs=1e-12)
    assert ssim(a, b) == pytest.approx(ssim(b, a), abs=1e-12)
    assert ssim(a, b) < 0.5  # independent noise images share little structure


def test_ssim_of_constant_offset_is_the_luminance_term():
    # Constant images have zero variance and covariance, so SSIM reduces to the luminance term.
    for level, offset in [(0.3, 0.1), (0.5, 0.4), (0.05, 0.02)]:
        x, y = np.full((16, 16), level), np.full((16, 16), level + offset)
        by_hand = (2 * level * (level + offset) + C1) / (level**2 + (level + offset) ** 2 + C1)
        assert ssim(x, y) == pytest.approx(by_hand, rel=1e-12)


def test_ssim_matches_the_formula_written_out():
    a = _image(5, (13, 12, 2))
    b = np.clip(a + _rng(6).normal(0, 0.1, a.shape), 0, 1)
    assert ssim(a, b) == pytest.approx(_ssim_reference(a, b), abs=1e-10)
    tiny_a, tiny_b = _image(7, (8, 8, 1)), _image(8, (8, 8, 1))  # smaller than the window
    assert ssim(tiny_a, tiny_b) == pytest.approx(_ssim_reference(tiny_a, tiny_b), abs=1e-10)


def test_ssim_decreases_with_noise():
    x = np.kron(_image(9, (8, 8, 1)), np.ones((4, 4, 1)))  # a blocky 32x32 image with structure
    noise = _rng(10).normal(size=x.shape)
    values = [ssim(x, np.clip(x + s * noise, 0, 1)) for s in (0.0, 0.02, 0.05, 0.1, 0.2)]
    assert values[0] == pytest.approx(1.0)
    assert all(later < earlier for earlier, later in zip(values, values[1:]))


def test_latent_l2_is_the_euclidean_norm():
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(4, 8, 8, generator=g), torch.randn(4, 8, 8, generator=g)
    assert latent_l2(a, b) == pytest.approx(torch.linalg.vector_norm(a - b).item(), rel=1e-6)
    assert latent_l2(a.numpy(), b.numpy()) == pytest.approx(latent_l2(a, b))


def test_bad_inputs_give_clear_errors():
    with pytest.raises(ValueError, match="same shape"):
        rmse(np.zeros((8, 8)), np.zeros((8, 9)))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rmse(np.full((4, 4), -0.8), np.zeros((4, 4)))
    with pytest.raises(TypeError, match="PIL image"):
        rmse("a.png", np.zeros((4, 4)))
    with pytest.raises(ValueError, match="unknown metric"):
        adjacent_distances([np.zeros((4, 4))] * 3, metric="lpips")
    with pytest.raises(ValueError, match="at least 2 frames"):
        walk_report([np.zeros((4, 4))])
    with pytest.raises(ValueError, match="non-negative"):
        WalkReport.from_distances([0.1, -0.2])


# ------------------------------------------------------------------------------------------------ gini


def _gini_brute(d: np.ndarray) -> float:
    n = d.size
    return float(np.abs(d[:, None] - d[None, :]).sum() / (2 * n * n * d.mean()))


@pytest.mark.parametrize("seed", range(5))
def test_gini_matches_brute_force(seed):
    rng = _rng(seed)
    d = rng.exponential(size=rng.integers(1, 60))
    assert gini(d) == pytest.approx(_gini_brute(d), rel=1e-12)


def test_gini_extremes():
    assert gini(np.full(9, 0.3)) == pytest.approx(0.0, abs=1e-15)
    n = 10  # all the change in one step: Gini = (n - 1) / n
    assert gini([0.0] * (n - 1) + [1.0]) == pytest.approx((n - 1) / n)
    assert math.isnan(gini([0.0, 0.0]))


# ------------------------------------------------------------------------------------------------ walks


def test_linear_cross_fade_is_perfectly_even_and_direct():
    a, b = _image(11), _image(12)
    n = 12
    frames = [(1 - k / n) * a + (k / n) * b for k in range(n + 1)]
    report = walk_report(frames, name="cross-fade")
    assert np.allclose(report.distances, rmse(a, b) / n, rtol=1e-9)
    assert report.path_length == pytest.approx(rmse(a, b), rel=1e-9)
    assert report.cv == pytest.approx(0.0, abs=1e-9)
    assert report.gini == pytest.approx(0.0, abs=1e-9)
    assert report.smoothness == pytest.approx(1.0, abs=1e-9)
    assert report.jump_ratio == pytest.approx(1.0, abs=1e-9)
    assert report.directness == pytest.approx(1.0, abs=1e-9)  # a straight line in pixel space
    assert report.pdv == pytest.approx(0.0, abs=1e-18)
    assert math.isnan(report.closure_gap)
    assert report.num_frames == n + 1


def test_one_jump_has_the_closed_form_numbers():
    n, small, jump = 8, 0.02, 0.3  # n steps: n - 1 of size `small`, one of size `jump`
    levels = np.concatenate([[0.1], 0.1 + np.cumsum([small] * 3 + [jump] + [small] * (n - 4))])
    frames = [np.full((6, 6, 3), v) for v in levels]
    report = walk_report(frames)
    mean = ((n - 1) * small + jump) / n
    assert report.mean == pytest.approx(mean)
    assert report.jump_ratio == pytest.approx(jump / mean)
    assert report.gini == pytest.approx((n - 1) * (jump - small) / (n * ((n - 1) * small + jump)))
    assert report.pdv == pytest.approx(((n - 1) * (small - mean) ** 2 + (jump - mean) ** 2) / n)
    assert report.directness == pytest.approx(1.0)  # monotone brightening: no detour


def _circle_frames(thetas, size=8, radius=0.3):
    i, j = np.indices((size, size))
    u, v = (-1.0) ** (i + j), (-1.0) ** i  # orthogonal patterns, mean square 1
    return [0.5 + radius * (np.cos(t) * u + np.sin(t) * v) for t in thetas]


def test_loop_closure_gap():
    n, radius = 10, 0.3
    step = 2 * np.pi / n
    even = walk_report(_circle_frames(step * np.arange(n), radius=radius), closed=True)
    assert np.allclose(even.distances, 2 * radius * np.sin(step / 2))  # chord of the circle
    assert even.closure_gap == pytest.approx(1.0)
    assert math.isnan(even.directness)
    stutter = walk_report(_circle_frames(step * np.arange(n + 1)), closed=True)  # end frame repeats the start
    assert stutter.closure_gap == pytest.approx(0.0, abs=1e-12)
    missing = walk_report(_circle_frames(step * np.arange(n - 1)), closed=True)  # one frame short
    assert missing.closure_gap == pytest.approx(2 * np.cos(step / 2))


def test_batches_lists_and_metrics_agree():
    g = torch.Generator().manual_seed(1)
    batch = torch.rand(5, 3, 10, 10, generator=g)
    as_list = [x.permute(1, 2, 0).numpy() for x in batch]
    d_batch = adjacent_distances(batch)
    assert np.allclose(d_batch, adjacent_distances(as_list))
    assert np.allclose(d_batch, adjacent_distances(np.stack(as_list)))
    assert np.allclose(d_batch, [rmse(as_list[i], as_list[i + 1]) for i in range(4)])
    d_ssim = adjacent_distances(batch, metric="ssim")
    assert np.allclose(d_ssim, [one_minus_ssim(as_list[i], as_list[i + 1]) for i in range(4)])
    latents = torch.randn(6, 4, 8, 8, generator=g)
    d_lat = adjacent_distances(latents, metric="latent_l2")
    assert np.allclose(d_lat, [torch.linalg.vector_norm(latents[i + 1] - latents[i]).item() for i in range(5)])
    custom = adjacent_distances(latents, metric=lambda a, b: float((a - b).abs().max()))
    assert np.allclose(custom, [(latents[i + 1] - latents[i]).abs().max().item() for i in range(5)])


# ------------------------------------------------------------------------------------------------ presentation


def test_summary_table_text_and_html():
    r1 = WalkReport.from_distances([0.1, 0.1, 0.1], end_to_end=0.3, name="even")
    r2 = WalkReport.from_distances([0.01, 0.5, 0.01], end_to_end=0.4, name="<jumpy>")
    table = summary_table([r1, r2])
    lines = str(table).splitlines()
    assert len(lines) == 4  # header, rule, two walks
    assert "CV" in lines[0] and "smoothness" in lines[0]
    assert lines[2].startswith("even") and lines[3].startswith("<jumpy>")
    html = table._repr_html_()
    assert html.count("<tr>") == 3 and "&lt;jumpy&gt;" in html and "<jumpy>" not in html
    named = summary_table({"A": r1, "B": [0.2, 0.2]})
    assert [r.name for r in named.reports] == ["A", "B"]
    with pytest.raises(TypeError):
        summary_table(["not a report"])
    extra = summary_table([r1, r2], extra={"endpoint MSE": [0.0012, 0.25]})
    assert str(extra).splitlines()[0].endswith("endpoint MSE")
    assert str(extra).splitlines()[2].endswith("0.0012") and extra._repr_html_().count("<th>") == 12
    with pytest.raises(ValueError, match="2 walks"):
        summary_table([r1, r2], extra={"endpoint MSE": [0.1]})


def test_summary_table_prints_float_rounding_as_zero():
    # Equal steps that differ in their last bit: the variance is rounding (~1e-35), not unevenness.
    step = 0.1
    rounded = WalkReport.from_distances([step, float(np.nextafter(step, 1.0)), step], name="even")
    assert 0 < rounded.pdv < 1e-30 and 0 < rounded.cv < 1e-12
    uneven = WalkReport.from_distances([0.1, 0.1002, 0.1], name="uneven")  # PDV ≈ 8.9e-9: a real difference
    table = summary_table([rounded, uneven])
    header = table.header
    even_row, uneven_row = table.rows
    assert even_row[header.index("PDV")] == "0" and even_row[header.index("CV")] == "0"
    assert float(uneven_row[header.index("PDV")]) == pytest.approx(8.9e-9, rel=0.01)
    assert float(uneven_row[header.index("CV")]) > 0


def test_plot_distances_draws_one_labelled_line_per_walk():
    import matplotlib.pyplot as plt

    r1 = WalkReport.from_distances([0.1, 0.2, 0.1], name="first", metric="rmse")
    r2 = WalkReport.from_distances([0.1, 0.1, 0.1, 0.1], name="second", metric="rmse")
    ax = plot_distances([r1, r2])
    assert len(ax.get_lines()) == 2
    assert list(ax.get_lines()[1].get_ydata()) == [0.1] * 4
    assert "rmse" in ax.get_ylabel() and ax.get_xlabel()
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[0].startswith("first") and labels[1].startswith("second")
    ax2 = plot_distances({"raw": np.array([1.0, 2.0])}, x="progress")
    assert list(ax2.get_lines()[0].get_xdata()) == [0.5, 1.0]
    plt.close("all")


def test_image_walks_follow_the_media_conventions():
    g = torch.Generator().manual_seed(2)
    chunks = [torch.rand(3, 3, 6, 6, generator=g), torch.rand(2, 3, 6, 6, generator=g)]  # rendered in chunks
    joined = torch.cat(chunks)
    assert np.allclose(adjacent_distances(chunks), adjacent_distances(joined))
    with pytest.raises(ValueError, match="at least 2 frames"):
        walk_report(np.zeros((6, 6, 3)))  # one HxWxC frame is not a walk
