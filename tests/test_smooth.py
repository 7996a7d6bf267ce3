"""helpers.smooth: re-timing, AdaIN and Beta schedules against walks whose perceptual speed is known."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.metrics import rmse, walk_report
from helpers.smooth import adain_interpolate, beta_schedule, invert_cumulative, retime

# ------------------------------------------------------------------------------------------------ synthetic walks

_RNG = np.random.default_rng(0)
A = _RNG.uniform(0.05, 0.95, size=(12, 12, 3))
B = _RNG.uniform(0.05, 0.95, size=(12, 12, 3))
K = 14.0  # steepness: most of the change happens in the middle fifth of t


def sigmoid_speed(t):
    """A monotone map [0, 1] → [0, 1] with exact ends: a steep sigmoid."""
    lo, hi = 1 / (1 + np.exp(K / 2)), 1 / (1 + np.exp(-K / 2))
    return (1 / (1 + np.exp(-K * (np.asarray(t) - 0.5))) - lo) / (hi - lo)


def sigmoid_inverse(s):
    lo, hi = 1 / (1 + np.exp(K / 2)), 1 / (1 + np.exp(-K / 2))
    y = lo + np.asarray(s) * (hi - lo)
    return 0.5 + np.log(y / (1 - y)) / K


class CountingRender:
    """A cross-fade of A and B with t mapped through ``speed``: a straight line in pixel space whose speed
    along t is known, so the ideal re-timing is ``speed^-1`` of equally spaced values."""

    def __init__(self, speed):
        self.speed = speed
        self.calls = 0
        self.seen: list[float] = []

    def __call__(self, ts: np.ndarray):
        assert ts.ndim == 1 and ts.dtype == np.float64
        self.calls += 1
        self.seen.extend(ts.tolist())
        s = self.speed(ts)
        return [(1 - v) * A + v * B for v in s]


def cv_of(frames, closed=False):
    r = walk_report(frames, closed=closed)
    d = np.append(r.distances, r.closure_gap * r.mean) if closed else r.distances
    return float(d.std() / d.mean())


# ------------------------------------------------------------------------------------------------ invert_cumulative


def test_invert_cumulative_by_hand():
    # samples at 0, .25, .5, .75, 1 with step distances 3, 1, 1, 1: cumulative 0, 3, 4, 5, 6
    ts = invert_cumulative([0, 0.25, 0.5, 0.75, 1.0], [3, 1, 1, 1], 4)
    assert np.allclose(ts, [0.0, 0.25 * 2 / 3, 0.5, 1.0], atol=1e-8)  # targets 0, 2, 4, 6
    assert ts[0] == 0.0 and ts[-1] == 1.0


def test_invert_cumulative_closed_and_flat():
    loop = invert_cumulative([0, 0.25, 0.5, 0.75], [1, 1, 1, 1], 2, closed=True, t_end=1.0)
    assert np.allclose(loop, [0.0, 0.5])
    skewed = invert_cumulative([0, 0.5], [3, 1], 4, closed=True, t_end=1.0)  # loop length 4: steps of 1
    assert np.allclose(skewed, [0.0, 0.5 / 3, 1 / 3, 0.5], atol=1e-8)
    flat = invert_cumulative([0, 0.5, 1.0], [0, 0], 5)  # nothing changes: stay uniform
    assert np.allclose(flat, np.linspace(0, 1, 5))
    with pytest.raises(ValueError, match="distances"):
        invert_cumulative([0, 0.5, 1.0], [1.0], 3)
    with pytest.raises(ValueError, match="t_end"):
        invert_cumulative([0, 0.5], [1, 1], 3, closed=True)


# ------------------------------------------------------------------------------------------------ retime


@pytest.mark.parametrize("method", ["invert", "bisect"])
@pytest.mark.parametrize("speed", [sigmoid_speed, lambda t: np.asarray(t) ** 4], ids=["sigmoid", "t^4"])
def test_retime_evens_out_a_walk_with_known_speed(method, speed):
    n, coarse, budget = 12, 16, 60
    before = cv_of(CountingRender(speed)(np.linspace(0, 1, n)))
    render = CountingRender(speed)
    out = retime(render, n, coarse=coarse, budget=budget, method=method)
    after = cv_of(out.frames)
    assert before > 0.5  # the uniform walk really is uneven
    assert after < before / 10  # and re-timing nearly removes it
    assert out.report.cv == pytest.approx(after)
    # budget: counted independently of retime's own bookkeeping
    assert len(render.seen) == out.renders <= budget
    assert len(set(render.seen)) == len(render.seen)  # nothing rendered twice
    # exact endpoints, strictly increasing, frames match their t values
    assert out.ts[0] == 0.0 and out.ts[-1] == 1.0 and len(out.ts) == n
    assert np.all(np.diff(out.ts) > 0)
    for t, frame in zip(out.ts, out.frames):
        s = speed(t)
        assert rmse(frame, (1 - s) * A + s * B) < 1e-12


def test_retime_finds_the_analytic_inverse():
    n = 9
    out = retime(CountingRender(sigmoid_speed), n, coarse=16, budget=80, method="invert")
    ideal = sigmoid_inverse(np.linspace(0, 1, n))  # equal pixel steps on a straight line
    assert np.allclose(out.ts, ideal, atol=2e-3)
    assert out.report.cv < 0.01


def test_retime_respects_a_tight_budget():
    n, coarse = 10, 12
    render = CountingRender(sigmoid_speed)
    out = retime(render, n, coarse=coarse, budget=coarse + n - 2, method="bisect")
    assert len(render.seen) <= coarse + n - 2
    assert out.report.cv < out.coarse_report.cv
    with pytest.raises(ValueError, match="budget"):
        retime(CountingRender(sigmoid_speed), n, coarse=coarse, budget=coarse + n - 3)


def test_retime_closed_walk_stays_a_loop():
    # a circle in pixel space travelled at a non-uniform, periodic angular speed
    i, j = np.indices((8, 8))
    u, v = (-1.0) ** (i + j), (-1.0) ** i
    wobble = 0.8

    def angle(t):
        return 2 * np.pi * t + wobble * np.sin(2 * np.pi * t)

    seen: list[float] = []

    def render(ts):
        seen.extend(ts.tolist())
        return np.stack([0.5 + 0.3 * (np.cos(angle(t)) * u + np.sin(angle(t)) * v) for t in ts])[..., None]

    n = 12
    uniform = render(np.arange(n) / n)
    seen.clear()
    out = retime(render, n, closed=True, coarse=16, budget=64)
    assert out.ts[0] == 0.0 and len(out.ts) == n and np.all(np.diff(out.ts) > 0) and out.ts[-1] < 1.0
    assert max(seen) < 1.0  # the loop's end is its start: never rendered
    assert out.report.closed and out.report.closure_gap == pytest.approx(1.0, abs=0.02)  # no stutter
    assert cv_of(out.frames, closed=True) < cv_of(uniform, closed=True) / 10
    # ideal: equal angle steps; angle(ts) should be 2πk/n
    assert np.allclose(angle(out.ts), 2 * np.pi * np.arange(n) / n, atol=0.02)


def test_retime_validates_its_inputs():
    render = CountingRender(sigmoid_speed)
    with pytest.raises(ValueError, match="method"):
        retime(render, 5, method="magic")
    with pytest.raises(ValueError, match="num_frames"):
        retime(render, 1)
    with pytest.raises(ValueError, match="t0 < t1"):
        retime(render, 5, t0=1.0, t1=0.0)
    with pytest.raises(ValueError, match="returned 1 frames"):
        retime(lambda ts: [A], 5)


def test_retime_accepts_other_ranges_and_metrics():
    render = CountingRender(lambda t: sigmoid_speed((np.asarray(t) - 2.0) / 2.0))
    out = retime(render, 8, t0=2.0, t1=4.0, metric="ssim", coarse=12, budget=40)
    assert out.ts[0] == 2.0 and out.ts[-1] == 4.0
    assert out.report.metric == "ssim" and out.report.cv < out.coarse_report.cv / 3


# ------------------------------------------------------------------------------------------------ AdaIN


def _channel_stats(x: np.ndarray):
    flat = x.reshape(*x.shape[:-2], -1)
    return flat.mean(-1), flat.std(-1)


def test_adain_matches_interpolated_channel_stats():
    g = torch.Generator().manual_seed(0)
    a = 0.4 * torch.randn(4, 16, 16, generator=g) + torch.tensor([0.1, -0.2, 0.0, 0.3])[:, None, None]
    b = 0.9 * torch.randn(4, 16, 16, generator=g) - 0.1
    ts = [0.0, 0.25, 0.5, 0.9, 1.0]
    out = adain_interpolate(a, b, ts)
    assert out.shape == (5, 4, 16, 16) and out.dtype == torch.float32
    mu_a, sd_a = _channel_stats(a.numpy().astype(np.float64))
    mu_b, sd_b = _channel_stats(b.numpy().astype(np.float64))
    for k, t in enumerate(ts):
        mu, sd = _channel_stats(out[k].numpy().astype(np.float64))
        assert np.allclose(mu, (1 - t) * mu_a + t * mu_b, atol=1e-5)
        assert np.allclose(sd, (1 - t) * sd_a + t * sd_b, atol=1e-5)
    assert torch.allclose(out[0], a, atol=1e-5) and torch.allclose(out[-1], b, atol=1e-5)


def test_adain_batch_numpy_and_errors():
    rng = np.random.default_rng(1)
    a = rng.normal(0.2, 0.5, size=(2, 3, 8, 8)).astype(np.float32)
    b = rng.normal(-0.1, 1.5, size=(2, 3, 8, 8)).astype(np.float32)
    mid = adain_interpolate(a, b, 0.5, dim=1)
    assert isinstance(mid, np.ndarray) and mid.dtype == np.float32 and mid.shape == a.shape
    mu, sd = _channel_stats(mid.astype(np.float64))
    mu_a, sd_a = _channel_stats(a.astype(np.float64))
    mu_b, sd_b = _channel_stats(b.astype(np.float64))
    assert np.allclose(mu, (mu_a + mu_b) / 2, atol=1e-5) and np.allclose(sd, (sd_a + sd_b) / 2, atol=1e-5)
    with pytest.raises(ValueError, match="spatial axes"):
        adain_interpolate(a, b, 0.5, dim=-1)
    with pytest.raises(ValueError, match="same shape"):
        adain_interpolate(a, b[:1], 0.5)


# ------------------------------------------------------------------------------------------------ Beta schedules


def test_beta_schedule_is_aids_inverse_cdf():
    u = np.linspace(0, 1, 11)
    assert np.allclose(beta_schedule(11, 1, 1), u)  # uniform distribution: linear
    assert np.allclose(beta_schedule(11, 2, 1), np.sqrt(u))  # Beta(2, 1): F(t) = t^2, so F^-1(u) = sqrt(u)
    assert np.allclose(beta_schedule(11, 1, 2), 1 - np.sqrt(1 - u))  # Beta(1, 2): F(t) = 1 - (1 - t)^2
    for alpha, beta in [(0.5, 0.5), (3, 3), (5, 1.5), (0.2, 4)]:
        t = beta_schedule(17, alpha, beta)
        assert t[0] == 0.0 and t[-1] == 1.0 and np.all(np.diff(t) >= 0)
    # AID's placement: Beta(3, 3) packs the frames in the middle, where its density peaks.
    sym = beta_schedule(9, 3, 3)
    assert np.allclose(sym + sym[::-1], 1.0)  # symmetric parameters: symmetric schedule
    steps = np.diff(sym)
    assert steps[3] < steps[0] / 3 and steps[4] < steps[-1] / 3
    assert np.sum((sym > 0.25) & (sym < 0.75)) == 7  # 7 of 9 frames in the middle half (uniform: 3)
    ends = beta_schedule(9, 0.5, 0.5)
    assert np.diff(ends)[3] > np.diff(ends)[0]  # alpha = beta < 1: dense near the ends instead
    with pytest.raises(ValueError, match="alpha"):
        beta_schedule(5, 0, 1)
    with pytest.raises(ValueError, match="num_frames"):
        beta_schedule(1, 1, 1)


# ------------------------------------------------------------------------------------------------ teaching models





def test_retime_evens_a_teaching_prompt_walk_cat_to_dog():
    from helpers import encode_prompts, load_pipeline, render_frames, slerp
    from helpers.teaching.text2img import defaults

    pipe = load_pipeline("teaching", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    prompt_embeds, negative = encode_prompts(pipe, ["a big cat face on a white background",
                                                    "a big dog face on a white background"])

    def render(ts: np.ndarray) -> np.ndarray:
        path = slerp(prompt_embeds[0], prompt_embeds[1], ts.tolist())
        return render_frames(
            pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1], seed=0, progress=False,
            output_type="np", num_inference_steps=10, guidance_scale=defaults()["guidance_scale"],
        )

    n = 9
    before = walk_report(render(np.linspace(0, 1, n)))
    out = retime(render, n, coarse=10, budget=24)
    assert out.renders <= 24
    assert out.report.cv <= before.cv / 2, (before.cv, out.report.cv)




def test_retime_evens_a_teaching_unclip_morph_with_inverted_latents():
    from helpers import load_pipeline, slerp, unclip
    from helpers.teaching.scenes import example_scenes

    pipe = load_pipeline("teaching-unclip", device="cpu")
    pipe.set_progress_bar_config(disable=True)
    steps = {"num_inference_steps": 8, "super_res_num_inference_steps": 4}
    inv = unclip.invert(pipe, example_scenes(["red apple", "green apple"]).images, **steps)

    def render(ts: np.ndarray) -> torch.Tensor:
        t = ts.tolist()
        return unclip.decode(
            pipe,
            slerp(inv.image_embeddings[0], inv.image_embeddings[1], t, dim=-1),
            slerp(inv.decoder_latents[0], inv.decoder_latents[1], t),
            slerp(inv.super_res_latents[0], inv.super_res_latents[1], t),
            **steps,
        )

    n = 9
    before = walk_report(render(np.linspace(0, 1, n)))
    out = retime(render, n, coarse=10, budget=24)
    assert out.renders <= 24
    assert out.report.cv <= before.cv / 2, (before.cv, out.report.cv)
