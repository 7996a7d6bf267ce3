"""The toy 2-D DDPM learns the S-curve: samples lie as close to the data as independent data does."""

from __future__ import annotations

import pytest
import torch

from helpers.teaching.toy2d import (
    ToyDenoiser,
    fit_ratio,
    load_toy,
    make_scheduler,
    nearest_neighbour_distance,
    s_curve,
    sample_toy,
    save_toy,
    train_toy,
)

N = 1000


@pytest.fixture(scope="module")
def trained():
    torch.set_flush_denormal(True)  # as training does; off again afterwards (hypothesis needs subnormals)
    model, scheduler, losses = train_toy(2000, seed=0, progress=False)
    yield model, scheduler, losses
    torch.set_flush_denormal(False)


def test_s_curve_is_reproducible_and_normalised():
    a, b = s_curve(500, seed=3), s_curve(500, seed=3)
    assert a.shape == (500, 2) and a.dtype == torch.float32
    assert torch.equal(a, b) and not torch.equal(a, s_curve(500, seed=4))
    assert float(a.abs().max()) < 1.5 and 0.4 < float(a.std()) < 1.0


def test_nearest_neighbour_distance_against_brute_force():
    g = torch.Generator().manual_seed(0)
    p, r = torch.randn(7, 2, generator=g), torch.randn(11, 2, generator=g)
    brute = sum(min(float(((pi - rj) ** 2).sum().sqrt()) for rj in r) for pi in p) / len(p)
    assert nearest_neighbour_distance(p, r) == pytest.approx(brute, rel=1e-5)


def test_training_lowers_the_loss(trained):
    _, _, losses = trained
    assert len(losses) == 2000
    assert sum(losses[-100:]) / 100 < 0.75 * sum(losses[:20]) / 20


def test_ddpm_samples_fit_the_data(trained):
    model, scheduler, _ = trained
    samples = sample_toy(model, scheduler, N, generator=torch.Generator().manual_seed(0))
    assert samples.shape == (N, 2)
    assert fit_ratio(samples) <= 1.5


def test_ddim_samples_fit_the_data(trained):
    model, scheduler, _ = trained
    samples = sample_toy(model, scheduler, N, generator=torch.Generator().manual_seed(0), scheduler_kind="ddim")
    # 50 deterministic steps instead of 1,000 stochastic ones: a little less sharp
    assert fit_ratio(samples) <= 1.75


def test_untrained_model_fails_the_fit_check():
    torch.manual_seed(0)
    samples = sample_toy(ToyDenoiser(), make_scheduler(), N, generator=torch.Generator().manual_seed(0),
                         scheduler_kind="ddim")
    assert fit_ratio(samples) > 1.5


def test_trajectory_and_determinism(trained):
    model, scheduler, _ = trained
    x, path = sample_toy(model, scheduler, 64, generator=torch.Generator().manual_seed(5),
                         scheduler_kind="ddim", num_inference_steps=10, return_trajectory=True)
    assert path.shape == (11, 64, 2) and torch.equal(path[-1], x)
    # the reverse process starts from the generator's Gaussian noise
    assert torch.equal(path[0], torch.randn((64, 2), generator=torch.Generator().manual_seed(5)))
    y = sample_toy(model, scheduler, 64, generator=torch.Generator().manual_seed(5),
                   scheduler_kind="ddim", num_inference_steps=10)
    assert torch.equal(x, y)


def test_save_load_round_trip(trained, tmp_path):
    model, scheduler, _ = trained
    save_toy(model, scheduler, tmp_path / "toy")
    model2, scheduler2 = load_toy(tmp_path / "toy")
    x, t = torch.randn(16, 2), torch.full((16,), 500)
    assert torch.equal(model(x, t), model2(x, t))
    assert scheduler2.config.clip_sample is False
    assert not [p.name for p in (tmp_path / "toy").iterdir() if p.name.startswith(".")]


def test_bad_arguments_are_clear_errors(trained):
    model, scheduler, _ = trained
    with pytest.raises(ValueError, match="scheduler_kind"):
        sample_toy(model, scheduler, 4, scheduler_kind="euler")
    with pytest.raises(ValueError, match="n must be"):
        s_curve(0)
    with pytest.raises(ValueError, match="steps"):
        train_toy(0)
