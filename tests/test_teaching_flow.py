"""The shipped teaching flow model against the text-to-image gates of the DDPM teaching model
(tests/test_teaching_quality.py), judged the same way (a classifier fitted on ground-truth scenes), with the same
functions and thresholds, at the flow model's card settings; and against the few-step goal of issue 32: 85% object
accuracy with at most a quarter of the DDPM model's network evaluations (20 steps with guidance: 40). A gate the flow
model does not reach is an expected failure (strict) whose reason gives the figure measured."""

from __future__ import annotations

import pytest
import torch

from helpers.teaching import quality as Q

pytestmark = pytest.mark.slow  # left out of `make test-fast`

DDPM_EVALUATIONS = 20 * 2  # the DDPM teaching model's card: 20 DDIM steps, two branches with guidance


@pytest.fixture(scope="module")
def pipe():
    from helpers.pipelines import load_pipeline

    p = load_pipeline("teaching-flow", device="cpu", dtype=torch.float32)
    p.set_progress_bar_config(disable=True)
    return p


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


#: Gates the flow model meets by the fewest samples that pass. Kernels of other CPUs can flip a sample or two (the
#: judge is fitted in the test), so such a gate is counted as not held: the test asks for a few samples of margin and
#: is an expected failure that reports the figure; it fails (strict) once the model clears the gate with margin.
NO_MARGIN = pytest.mark.xfail(strict=True, reason="met without margin (issue 32), see the test's comment")


@NO_MARGIN
def test_guidance_changes_what_comes_out(pipe, card, at_card):
    plain = Q.text2img_accuracy(pipe, guidance=1.0, steps=card["steps"])
    gap = at_card["object"] - plain["object"]
    print(f"\nflow model, {card['steps']} steps: object accuracy at guidance 1: {plain['object']:.3f}, at "
          f"{card['guidance_scale']}: {at_card['object']:.3f} (+{100 * gap:.1f} points)")
    # measured +15.1 points (2026-12): 58 more of 384 samples right, the fewest that reach 15 points
    assert gap >= 0.15 + 4 / 384  # the gate, with four samples of margin


def test_negative_prompt_pushes_the_named_attribute_away(pipe, card):
    r = Q.negative_prompt_effect(pipe, guidance=card["guidance_scale"], steps=card["steps"])
    print(f"\n'a red apple': box area {r['box_area_plain']:.0f} px, with negative 'a big red apple' "
          f"{r['box_area_negative']:.0f} px ({100 * r['size_shift']:.0f}% of the small-big range "
          f"{r['size_range'][0]:.0f}-{r['size_range'][1]:.0f}); white backgrounds {r['white_share_plain']:.2f} → "
          f"{r['white_share_negative']:.2f} with negative '... on a white background'")
    assert r["size_shift"] >= 0.30


@pytest.fixture(scope="module")
def walks(pipe, card):
    """The prompt-walk gates (red → blue heart, cat → dog face, ten seeds) at the card's settings, once."""
    r = Q.prompt_walks(pipe, guidance=card["guidance_scale"], steps=card["steps"])
    print(f"\nred → blue heart: colour position rises monotonically for {r['colour_monotone_seeds']}/{r['seeds']} "
          f"seeds; cat → dog face: P(dog) < 0.2 → > 0.8 for {r['object_walk_seeds_ok']}/{r['seeds']} seeds (P(dog) "
          f"at the dog end: {', '.join(f'{p1:.2f}' for _, p1 in r['object_ends'])})")
    return r


def test_prompt_walk_moves_the_colour(walks):
    assert walks["colour_monotone_seeds"] >= 8


@pytest.mark.xfail(strict=True, reason="not reached (issue 32): cat → dog face goes from P(dog) < 0.2 to > 0.8 for "
                   "2/10 seeds, gate 8; the dog end itself reads P(dog) 0.46-0.84")
def test_prompt_walk_moves_the_object(walks):
    assert walks["object_walk_seeds_ok"] >= 8


@pytest.fixture(scope="module")
def around(pipe, card):
    """A loop around one prompt at notebook 04's radius, at the card's settings, once."""
    r = Q.walk_around_effect(pipe, guidance=card["guidance_scale"], steps=card["steps"])
    print(f"\nloop at radius {r['radius']}: mean RMSE between consecutive frames {r['mean_step_rmse']:.3f}, "
          f"to the loop's mean {r['spread_rmse']:.3f}; object kept in {r['object_kept']:.2f} of frames")
    return r


@NO_MARGIN
def test_walk_around_one_prompt_keeps_the_object(around):
    # measured 0.81 (2026-12): 13 of 16 frames, the fewest that reach 0.80
    assert around["object_kept"] >= 0.80 + 1 / 16  # the gate, with one frame of margin


@pytest.mark.xfail(strict=True, reason="not reached (issue 32): the loop's frames lie 0.015 RMSE from their mean, "
                   "gate 0.02 (visibly different frames)")
def test_walk_around_one_prompt_changes_the_frames(around):
    assert around["spread_rmse"] >= 0.02


def test_lerp_and_slerp_midpoints_measured(pipe, card):
    r = Q.lerp_vs_slerp_noise(pipe, guidance=card["guidance_scale"], steps=card["steps"])
    print("\nmidpoints of two noises (16 pairs): " + "; ".join(
        f"{k}: contrast {v['contrast']:.3f}, saturation {v['saturation']:.3f}, |z| {v['latent_norm']:.1f}"
        for k, v in r.items()))
    d = pipe.transformer.config.in_channels * (card["height"] // pipe.vae_scale_factor) ** 2
    assert abs(r["endpoint"]["latent_norm"] / d**0.5 - 1) < 0.05  # noise lives on the shell of radius √d
    assert abs(r["slerp"]["latent_norm"] / r["endpoint"]["latent_norm"] - 1) < 0.05
    assert abs(r["lerp"]["latent_norm"] / r["endpoint"]["latent_norm"] - 0.5**0.5) < 0.08  # |a+b|/2 ≈ √½ |a|


def test_the_card_is_what_the_backend_uses(card):
    from helpers.backends import choose_backend

    backend = choose_backend("teaching", "flow", device="cpu")
    assert backend.model == "teaching-flow" and type(backend.pipe).__name__ == "StableDiffusion3Pipeline"
    assert backend.steps == card["steps"] and backend.guidance_scale == card["guidance_scale"]
