"""helpers.flow: the flow ODE written out, checked against diffusers' SD 3 pipeline and against the orders of
accuracy of its solvers (independent facts of numerical analysis: Euler's error halves when the steps double, the
midpoint method's and FireFlow's fall about four times), on an ODE with a closed-form solution and on the
models. FLUX is checked against its own pipeline the same way."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import encode_prompts, flow, make_latents, tiny_pipeline
from helpers.embeddings import pack_latents
from helpers.pipeline_info import output_size


@pytest.fixture(scope="module")
def sd3():
    return tiny_pipeline("sd3")


@pytest.fixture(scope="module")
def velocity(sd3):
    embeds, negative = encode_prompts(sd3, ["a big cat face on a white background"])
    return flow.velocity_fn(sd3, embeds, negative, guidance_scale=3.0)


def test_euler_downwards_is_what_the_pipeline_samples(sd3, velocity) -> None:
    x = make_latents(sd3, 0)
    mine = flow.integrate(velocity, x, flow.sigmas(sd3, 6), "euler")
    theirs = sd3(prompt="a big cat face on a white background", negative_prompt="", guidance_scale=3.0,
                 num_inference_steps=6, latents=x, output_type="latent").images
    assert torch.allclose(mine, theirs, atol=1e-5)
    pictures = sd3(prompt="a big cat face on a white background", negative_prompt="", guidance_scale=3.0,
                   num_inference_steps=6, latents=x, output_type="pt").images
    assert torch.allclose(flow.decode_latents(sd3, mine), pictures, atol=1e-5)


def test_the_grid_runs_from_noise_to_data(sd3) -> None:
    grid = flow.sigmas(sd3, 8)
    assert len(grid) == 9 and grid[0] == 1 and grid[-1] == 0 and bool((grid[1:] < grid[:-1]).all())


def _round_trip_error(sd3, velocity, steps: int, solver: str) -> float:
    x0 = flow.integrate(velocity, make_latents(sd3, 1), flow.sigmas(sd3, 24), "midpoint")  # a sample: on the data
    grid = flow.sigmas(sd3, steps)
    noise = flow.integrate(velocity, x0, grid.flip(0), solver)  # inversion: σ from 0 up to 1
    back = flow.integrate(velocity, noise, grid, solver)
    return float((back - x0).norm() / x0.norm())


def test_inversion_errors_fall_at_each_solvers_order(sd3, velocity) -> None:
    euler = [_round_trip_error(sd3, velocity, n, "euler") for n in (8, 16, 32)]
    midpoint = [_round_trip_error(sd3, velocity, n, "midpoint") for n in (8, 16, 32)]
    fireflow = [_round_trip_error(sd3, velocity, n, "fireflow") for n in (8, 16, 32)]
    ratios = np.array(euler[:-1]) / np.array(euler[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.6)), euler  # first order: doubling the steps halves the error
    assert midpoint[-1] < midpoint[0] / 6, midpoint  # second order: two doublings, about 16x
    assert all(m < e / 5 for m, e in zip(midpoint, euler)), (midpoint, euler)
    assert fireflow[-1] < fireflow[0] / 6 and all(f < e / 3 for f, e in zip(fireflow, euler)), (fireflow, euler)


def test_euler_downwards_is_what_the_flux_pipeline_samples() -> None:
    """FLUX: packed tokens, image and text ids, the resolution-dependent shift (mu) and the distilled guidance
    input, all as FluxPipeline sets them."""
    flux = tiny_pipeline("flux")
    height, width = output_size(flux)
    embeds, _ = encode_prompts(flux, ["a big cat face"])
    x = make_latents(flux, 0)
    mine = flow.integrate(flow.velocity_fn(flux, embeds, guidance_scale=3.5), x, flow.sigmas(flux, 6), "euler")
    theirs = flux(prompt="a big cat face", guidance_scale=3.5, num_inference_steps=6, latents=pack_latents(flux, x),
                  height=height, width=width, output_type="latent").images
    torch.testing.assert_close(pack_latents(flux, mine), theirs, rtol=1e-5, atol=1e-5)
    assert flow.image_tokens(flux) == theirs.shape[1]


def _exact(x0: torch.Tensor, s0: float, s1: float) -> torch.Tensor:
    return x0 * np.exp(np.sin(s1) - np.sin(s0))  # dx/dσ = cos(σ)·x


@pytest.mark.parametrize("solver, order", [("euler", 1), ("midpoint", 2), ("fireflow", 2)])
def test_each_solver_converges_at_its_order_on_a_known_ode(solver, order) -> None:
    calls = []

    def velocity(x, sigma):
        calls.append(sigma)
        return np.cos(sigma) * x

    x0 = torch.tensor([[1.0, -2.0]])
    errors = []
    for n in (8, 16, 32, 64):
        calls.clear()
        grid = torch.linspace(0, 1, n + 1, dtype=torch.float64)  # upwards, as an inversion runs
        got = flow.integrate(velocity, x0, grid, solver)
        assert len(calls) == flow.evaluations(solver, n)
        errors.append(float((got - _exact(x0, 0.0, 1.0)).abs().max()))
    ratios = np.array(errors[:-1]) / np.array(errors[1:])
    assert np.all(np.abs(np.log2(ratios) - order) < 0.3), (errors, ratios)


def test_other_pipelines_and_solvers_are_refused(velocity) -> None:
    with pytest.raises(TypeError, match="DDIM inversion"):
        flow.velocity_fn(tiny_pipeline("text2img"), torch.zeros(1, 16, 32))
    with pytest.raises(ValueError, match="solver must be one of"):
        flow.integrate(velocity, torch.zeros(1, 4, 16, 16), torch.tensor([1.0, 0.0]), "rk4")
    with pytest.raises(ValueError, match="through integrate"):
        flow.step(velocity, torch.zeros(1, 4, 16, 16), 1.0, 0.0, "fireflow")


def test_one_step_on_a_stretched_grid_is_refused_before_it_makes_nans() -> None:
    """The teaching flow model's scheduler stretches its σ grid to end at shift_terminal: one step cannot be
    stretched (diffusers divides by zero), so both doors refuse it, and two steps give a finite grid."""
    from helpers import load_pipeline, render_frames

    pipe = load_pipeline("teaching-flow")
    embeds, _ = encode_prompts(pipe, ["a red apple"])
    with pytest.raises(ValueError, match="at least two steps"):
        flow.sigmas(pipe, 1)
    with pytest.raises(ValueError, match="at least two steps"):
        render_frames(pipe, prompt_embeds=embeds, seed=0, num_inference_steps=1, progress=False)
    grid = flow.sigmas(pipe, 2)
    assert bool(torch.isfinite(grid).all()) and grid[0] == 1 and grid[-1] == 0
