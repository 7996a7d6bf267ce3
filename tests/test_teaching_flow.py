"""The shipped teaching flow model against the text-to-image gates of the DDPM teaching model, judged the same
way (a classifier fitted on ground-truth scenes), and against the few-step goal of issue 32: 85% object accuracy
with at most a quarter of the DDPM model's network evaluations (20 steps with guidance: 40)."""

from __future__ import annotations

import pytest
import torch

from helpers.teaching import quality as Q

pytestmark = pytest.mark.slow  # left out of `make test-fast`

DDPM_EVALUATIONS = 20 * 2  # the DDPM teaching model's card: 20 DDIM steps, two branches with guidance


@pytest.fixture(scope="module")
def pipe():
    from helpers.pipelines import load_pipeline

    return load_pipeline("teaching-flow", device="cpu", dtype=torch.float32)


@pytest.fixture(scope="module")
def card():
    from helpers.teaching.flow_model import defaults

    return defaults()


@pytest.fixture(scope="module")
def at_card(pipe, card):
    """The gate measurement at the card's settings, once for the tests below."""
    return Q.text2img_accuracy(pipe, guidance=card["guidance_scale"], steps=card["steps"])


def test_the_flow_model_draws_what_the_prompt_says(at_card, card):
    r = at_card
    worst = min(r["object_per_prompt"].items(), key=lambda kv: kv[1])
    print(f"\nflow model, {card['steps']} steps, guidance {card['guidance_scale']}: object {r['object']:.3f}, size "
          f"{r['size']:.3f}, background {r['background']:.3f}, unseen pairs {r['unseen_pairs']:.3f}; worst prompt "
          f"{worst[0]!r} {worst[1]:.2f}")
    assert r["object"] >= 0.85
    assert r["size"] >= 0.90 and r["background"] >= 0.90
    assert r["unseen_pairs"] >= 0.70


@pytest.mark.xfail(strict=True, reason="not reached yet (issue 32): the weakest prompt scores 0.375-0.50, gate 0.60")
def test_the_flow_models_weakest_prompt_reaches_the_ddpm_models_gate(at_card):
    assert min(at_card["object_per_prompt"].values()) >= 0.60


def test_a_quarter_of_the_evaluations_reach_85_percent(pipe, card, at_card):
    evaluations = card["steps"] * (2 if card["guidance_scale"] > 1 else 1)
    assert evaluations <= DDPM_EVALUATIONS // 4  # the card's own setting is the few-step one
    print(f"\n{card['steps']} steps at guidance {card['guidance_scale']} ({evaluations} evaluations): object "
          f"{at_card['object']:.3f}")
    assert at_card["object"] >= 0.85


def test_the_card_is_what_the_backend_uses(card):
    from helpers.backends import choose_backend

    backend = choose_backend("teaching", "flow", device="cpu")
    assert backend.model == "teaching-flow" and type(backend.pipe).__name__ == "StableDiffusion3Pipeline"
    assert backend.steps == card["steps"] and backend.guidance_scale == card["guidance_scale"]
