"""helpers.flow: the flow ODE written out, checked against diffusers' SD 3 pipeline and against the orders of
accuracy of its two solvers (independent facts of numerical analysis: Euler's error halves when the steps
double, the midpoint method's falls about four times)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import encode_prompts, flow, make_latents, tiny_pipeline


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
    ratios = np.array(euler[:-1]) / np.array(euler[1:])
    assert np.all((ratios > 1.6) & (ratios < 2.6)), euler  # first order: doubling the steps halves the error
    assert midpoint[-1] < midpoint[0] / 6, midpoint  # second order: two doublings, about 16x
    assert all(m < e / 5 for m, e in zip(midpoint, euler)), (midpoint, euler)


def test_other_pipelines_and_solvers_are_refused(velocity) -> None:
    with pytest.raises(TypeError, match="FLUX's packed latent tokens"):
        flow.velocity_fn(tiny_pipeline("flux"), torch.zeros(1, 513, 32))
    with pytest.raises(TypeError, match="DDIM inversion"):
        flow.velocity_fn(tiny_pipeline("text2img"), torch.zeros(1, 16, 32))
    with pytest.raises(ValueError, match="solver must be one of"):
        flow.integrate(velocity, torch.zeros(1, 4, 16, 16), torch.tensor([1.0, 0.0]), "rk4")
