"""The toy 2-D flow-matching model learns the S-curve, and DDIM is Euler on the same ODE in other coordinates."""

from __future__ import annotations

import math

import pytest
import torch

from helpers.teaching.toy2d import ToyDenoiser, fit_ratio, s_curve, sample_toy, train_toy
from helpers.teaching.toy_flow import (
    chamfer_ratio,
    ddim_as_flow,
    euler_sample,
    mean_straightness,
    reflow_pairs,
    straightness,
    train_toy_flow,
)

N = 1000
STEPS = 1000  # training steps: half of the notebooks' 2,000, enough for the checks below


@pytest.fixture(scope="module")
def flow():
    model, losses = train_toy_flow(STEPS, seed=0, progress=False)
    return model, losses


@pytest.fixture(scope="module")
def ddpm():
    model, scheduler, _ = train_toy(STEPS, seed=0, progress=False)
    return model, scheduler


def noise_and_generator(seed: int = 0, n: int = N) -> tuple[torch.Tensor, torch.Generator]:
    """The starting noise that ``sample_toy`` draws from a fresh generator of ``seed``, and such a generator."""
    return torch.randn((n, 2), generator=torch.Generator().manual_seed(seed)), torch.Generator().manual_seed(seed)


def test_training_lowers_the_loss(flow):
    _, losses = flow
    assert len(losses) == STEPS
    # the flow loss cannot go near 0: E|ε − x₀ − v(x_σ, σ)|² keeps the spread of ε − x₀ given x_σ
    assert sum(losses[-100:]) / 100 < 0.85 * sum(losses[:20]) / 20


def test_flow_samples_fit_the_data(flow):
    model, _ = flow
    samples = euler_sample(model, N, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (N, 2)
    # the bound of the toy DDPM's 50-step DDIM test (≤ 1.75), a little tighter; an untrained net scores > 10
    assert fit_ratio(samples) <= 1.6


def test_untrained_flow_model_fails_the_fit_check():
    torch.manual_seed(0)
    samples = euler_sample(ToyDenoiser(), N, generator=torch.Generator().manual_seed(0))
    assert fit_ratio(samples) > 1.6


def test_one_euler_step_lands_on_the_data_mean(flow):
    # At σ = 1, x = ε, so the best velocity is E[ε − x₀ | ε] = ε − E[x₀]: one step of size −1 gives E[x₀]
    # for every start. Checks the time input (σ = 1 ↔ 1000) and the sign of v = ε − x₀ together.
    model, _ = flow
    x = euler_sample(model, N, generator=torch.Generator().manual_seed(0), num_inference_steps=1)
    mean = s_curve(20_000, seed=5).mean(dim=0)
    assert float((x - mean).norm(dim=1).mean()) < 0.2  # data points lie ~0.9 from their mean


@pytest.mark.parametrize("steps", [10, 50])
def test_ddim_is_euler_in_flow_coordinates(ddpm, steps):
    model, scheduler = ddpm
    noise, gen = noise_and_generator(1)
    ddim = sample_toy(model, scheduler, N, generator=gen, scheduler_kind="ddim", num_inference_steps=steps)
    euler, path = ddim_as_flow(model, scheduler, noise, steps, return_trajectory=True)
    assert path.shape == (steps + 1, N, 2)
    assert float((euler - ddim).abs().max()) <= 1e-4


def test_flow_and_ddpm_models_map_the_same_noise_to_the_same_point(flow, ddpm):
    # x / (α_t + s_t) has the law of (1 − σ)·x₀ + σ·ε, the flow model's interpolation: both nets learn the
    # same velocity field, so from the same noise they end near the same point (random pairs: ~1.2 apart).
    noise, _ = noise_and_generator(2)
    x_flow = euler_sample(flow[0], N, noise=noise)
    x_ddim = ddim_as_flow(*ddpm, noise, 50)
    shuffled = x_ddim[torch.randperm(N, generator=torch.Generator().manual_seed(0))]
    together, apart = (x_flow - x_ddim).norm(dim=1).mean(), (x_flow - shuffled).norm(dim=1).mean()
    assert float(together) < 0.25 * float(apart)


def test_straightness_of_the_two_samplers(flow, ddpm):
    """Compared in the same (flow) coordinates the paths are equally straight; DDIM's own x looks straighter.

    Same coordinates is the fair comparison: there both samplers integrate one ODE (the test above), so only
    the learned nets and the σ grids differ. The learned flow paths are far from straight (~0.5): only the
    conditional paths (1 − σ)·x₀ + σ·ε are lines. The cloud shrinks from rms 1.41 to ~0.8 mid-way and grows
    back to the data's ~1.0, so a point walks in, then out. DDIM's own x keeps unit variance (α² + s² = 1)
    and does not walk back, hence its higher chord / length (for Gaussian data the VP paths are exact lines).
    """
    noise, gen = noise_and_generator(3)
    _, flow_path = euler_sample(flow[0], N, noise=noise, return_trajectory=True)
    _, ddim_flow_path = ddim_as_flow(*ddpm, noise, 50, return_trajectory=True)
    _, ddim_own_path = sample_toy(*ddpm, N, generator=gen, scheduler_kind="ddim", return_trajectory=True)
    s_flow, s_ddim_flow, s_ddim_own = map(mean_straightness, (flow_path, ddim_flow_path, ddim_own_path))
    assert 0.3 < s_flow < 0.7
    assert abs(s_flow - s_ddim_flow) < 0.06
    assert s_ddim_own > s_flow + 0.1


def test_euler_converges_at_first_order(flow):
    model, _ = flow
    noise, _ = noise_and_generator(4)
    ref = euler_sample(model, N, noise=noise, num_inference_steps=200)

    def error(steps: int) -> float:
        return float((euler_sample(model, N, noise=noise, num_inference_steps=steps) - ref).norm(dim=1).mean())

    assert error(4) > error(50)
    # first order: error ≈ C / steps, so vs the 200-step answer (1/50 − 1/200) / (1/100 − 1/200) = 3
    # (a second-order method would give 5)
    assert 2.0 < error(50) / error(100) < 4.0


def test_straightness_of_hand_made_paths():
    g = torch.Generator().manual_seed(0)
    x0, eps = torch.randn(5, 2, generator=g), torch.randn(5, 2, generator=g)
    sigma = torch.tensor([1.0, 0.9, 0.5, 0.45, 0.1, 0.0]).view(-1, 1, 1)  # uneven steps along the line
    line = (1 - sigma) * x0 + sigma * eps
    assert torch.allclose(straightness(line), torch.ones(5), atol=1e-6)
    # the VP path α·x₀ + s·ε with α = cos, s = sin and x₀ ⟂ ε of equal length is a quarter circle:
    # chord √2 r over arc π r / 2
    theta = torch.linspace(0, math.pi / 2, 2001).view(-1, 1, 1)
    arc = torch.cos(theta) * torch.tensor([[1.0, 0.0]]) + torch.sin(theta) * torch.tensor([[0.0, 1.0]])
    assert float(straightness(arc)[0]) == pytest.approx(2 * math.sqrt(2) / math.pi, rel=1e-5)
    there_and_back = torch.tensor([[[0.0, 0.0]], [[2.0, 0.0]], [[1.0, 0.0]]])  # chord 1, length 3
    assert float(straightness(there_and_back)[0]) == pytest.approx(1 / 3)
    straight_and_back = torch.cat([torch.tensor([[[0.0, 0.0]], [[1.0, 1.0]], [[2.0, 2.0]]]), there_and_back], dim=1)
    assert mean_straightness(straight_and_back) == pytest.approx((1 + 1 / 3) / 2)
    assert float(straightness(torch.zeros(4, 1, 2))[0]) == 1.0  # a point that never moves: nothing bends
    with pytest.raises(ValueError, match="trajectory"):
        straightness(line[:1])


def test_same_seed_same_model_and_samples():
    a, la = train_toy_flow(30, seed=3, progress=False)
    b, lb = train_toy_flow(30, seed=3, progress=False)
    c, _ = train_toy_flow(30, seed=4, progress=False)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert la == lb and all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    x, path = euler_sample(a, 64, generator=torch.Generator().manual_seed(5), num_inference_steps=8,
                           return_trajectory=True)
    assert path.shape == (9, 64, 2) and torch.equal(path[-1], x)
    assert torch.equal(path[0], torch.randn((64, 2), generator=torch.Generator().manual_seed(5)))
    assert torch.equal(x, euler_sample(b, 64, generator=torch.Generator().manual_seed(5), num_inference_steps=8))


@pytest.mark.parametrize("steps", [0, -1])
def test_bad_arguments_are_clear_errors(steps):
    with pytest.raises(ValueError, match="steps"):
        train_toy_flow(steps, progress=False)
    model = ToyDenoiser()
    with pytest.raises(ValueError, match="num_inference_steps"):
        euler_sample(model, 4, num_inference_steps=steps)
    with pytest.raises(ValueError, match="noise"):
        euler_sample(model, 4, noise=torch.zeros(3, 2))


def test_the_two_way_fit_sees_collapse_that_the_one_way_fit_misses():
    data = s_curve(N, seed=7)
    assert chamfer_ratio(data) < 1.2  # a fresh draw of the data fits
    collapsed = data[:20].repeat(N // 20, 1)  # every point on the curve, but only 20 places of it
    assert fit_ratio(collapsed) < 1.2 and chamfer_ratio(collapsed) > 2


def test_reflow_straightens_the_paths_and_rescues_few_step_sampling(flow):
    """Liu et al.'s claim, measured: trained on its own (noise, sample) couples, the model's ODE paths are nearly
    straight, so one or two Euler steps land where fifty do."""
    model, _ = flow
    pairs = reflow_pairs(model, 10_000, seed=1)
    reflowed, _ = train_toy_flow(STEPS, seed=1, progress=False, pairs=pairs)
    noise, _ = noise_and_generator(3)
    before = mean_straightness(euler_sample(model, N, noise=noise, return_trajectory=True)[1])
    after = mean_straightness(euler_sample(reflowed, N, noise=noise, return_trajectory=True)[1])
    assert before < 0.7 and after > 0.9, (before, after)
    two_steps = {name: chamfer_ratio(euler_sample(m, N, noise=noise, num_inference_steps=2))
                 for name, m in (("before", model), ("after", reflowed))}
    assert two_steps["after"] < two_steps["before"] / 3, two_steps
    with pytest.raises(ValueError, match="reflow_pairs"):
        train_toy_flow(2, pairs=(torch.zeros(4, 2), torch.zeros(5, 2)))
