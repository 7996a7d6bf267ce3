"""helpers.exercises: the course's ``check`` and the experiments behind the exercises.

Independent facts: an experiment that raises (``check`` must not call it without a prediction), floats that
differ only by rounding, exact geometry (orthogonal noises of equal norm: circles, great-circle arcs and the
normalised lerp's angle in closed form), ground-truth scenes read by the shipped scene judge, the documented
meaning of ``smooth`` and ``attention_steps``, and renders counted by hand; renders come from the tiny random
pipelines. Not tested here, for time (they render or train for seconds each, and run in the notebooks' check cells
once a prediction is set): notebook 03's decoder seeds, 04's cosine walk, 06's seed walks, 07's noise loop, 08's
guided endpoints and re-timed naive morph, and both of notebook 10's.
"""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import encode_images, encode_prompts, linear_schedule, make_latents, render_frames, slerp
from helpers.backends import choose_backend
from helpers.exercises import (
    check,
    diffusion_basics,
    explorer,
    morph,
    noise_walks,
    prompt_walks,
    smooth,
    timelines,
    unclip,
)
from helpers.exercises import slerp as slerp_exercises
from helpers.teaching import scenes


@pytest.fixture(scope="module")
def tiny():
    """The tiny random text-to-image backend: 32x32 frames in 3 steps, pictures of nothing."""
    return choose_backend("tiny-random", "text2img")


def _orthogonal_pair(shape: tuple[int, ...], seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Two noises of equal norm, exactly perpendicular (Gram-Schmidt)."""
    gen = torch.Generator().manual_seed(seed)
    a, b = torch.randn(shape, generator=gen, dtype=torch.float64), torch.randn(shape, generator=gen, dtype=torch.float64)
    b = b - (a * b).sum() / (a * a).sum() * a
    return a.float(), (b * a.norm() / b.norm()).float()


# --------------------------------------------------------------------------------------------------
# check
# --------------------------------------------------------------------------------------------------


def test_check_never_runs_the_experiment_without_a_prediction(capsys) -> None:
    def expensive():
        raise AssertionError("the experiment ran")

    assert check(2, None, expensive) is None
    assert capsys.readouterr().out == "exercise 2: set prediction_2 first, then run this cell again\n"


def test_check_says_right_or_not_quite_with_the_explanation(capsys) -> None:
    assert check(1, "up", lambda: ("up", "it went up by 3")) is True
    assert check(3, "down", lambda: ("up", "it went up by 3")) is False
    assert capsys.readouterr().out == ("exercise 1: right — it went up by 3\n"
                                       "exercise 3: not quite — it went up by 3\n")


def test_check_compares_floats_up_to_rounding_but_not_across_types() -> None:
    def answer(truth):
        return lambda: (truth, "")

    assert check(1, 1e-3, answer(0.1**3))  # 0.0010000000000000002
    assert check(1, 0.3, answer(0.1 + 0.2)) and check(1, 10.0, answer(10)) and check(1, 10, answer(10))
    assert not check(1, 1e-3, answer(1e-2)) and not check(1, 1.2, answer(1.25))
    assert check(1, True, answer(np.float64(0.5) < 0.7))  # a NumPy bool is a bool
    assert not check(1, True, answer(1)) and not check(1, 1, answer(True))
    assert check(1, {4, 8}, answer({8, 4})) and not check(1, "none", answer(0.6))


def test_check_refuses_what_is_not_an_exercise() -> None:
    with pytest.raises(ValueError, match="number"):
        check(0, "up", lambda: ("up", ""))
    with pytest.raises(TypeError, match="function of no arguments"):
        check(1, "up", ("up", ""))
    with pytest.raises(TypeError, match=r"\(truth, explanation\)"):
        check(1, "up", lambda: "up")


# --------------------------------------------------------------------------------------------------
# 01: an under-trained model
# --------------------------------------------------------------------------------------------------


def test_a_model_trained_for_200_steps_fits_worse_than_the_shipped_toy_model() -> None:
    from helpers.teaching import toy2d
    from helpers.teaching.common import WEIGHTS_DIR

    model, _ = toy2d.load_toy(WEIGHTS_DIR / "toy-s-curve")
    truth, explanation = diffusion_basics.short_training(model, trained_steps=2000, num_points=300, seed=0)
    assert truth == "higher"
    assert re.match(r"DDIM 50 fit ratio [\d.]+ after 200 training steps, [\d.]+ after 2000$", explanation)


def test_the_step_count_answer_is_the_fewest_within_005_of_the_best_printed() -> None:
    from helpers.teaching import toy2d
    from helpers.teaching.common import WEIGHTS_DIR

    model, _ = toy2d.load_toy(WEIGHTS_DIR / "toy-s-curve")
    truth, explanation = diffusion_basics.ddim_steps(model, num_points=300, seed=0)
    fits = {int(n): float(f) for n, f in re.findall(r"(\d+) steps ([\d.]+)", explanation)}
    assert list(fits) == list(diffusion_basics.STEP_COUNTS)
    best = min(fits.values())  # the printed fit ratios are rounded to 0.01
    assert fits[truth] <= best + 0.05 + 0.01
    assert all(f > best + 0.05 - 0.01 for n, f in fits.items() if n < truth)


def test_pixel_noise_changes_neighbouring_pixels_independently(tiny) -> None:
    image = np.asarray(tiny.example_images(1)[0].resize((tiny.width, tiny.height)), np.float32)
    pixels = torch.from_numpy(image / 127.5 - 1).permute(2, 0, 1)[None]
    truth, explanation = diffusion_basics.noise_texture(tiny.pipe, pixels, seed=0)
    latent, pixel = (float(x) for x in re.findall(r"(-?[\d.]+) for (?:latent|pixel) noise", explanation))
    assert abs(pixel) < 0.1  # fresh Gaussian noise per pixel: neighbours are independent
    assert truth == (latent > pixel)


# --------------------------------------------------------------------------------------------------
# 02: slerp
# --------------------------------------------------------------------------------------------------


def test_the_fallback_starts_where_the_small_angle_formula_puts_it() -> None:
    a = torch.randn(4, 16, 16, generator=torch.Generator().manual_seed(0))
    truth, explanation = slerp_exercises.nudged_noise(a, seed=1)
    # b = a + εn with n independent noise of a's size: 1 − cos ≈ ε²/2, and slerp falls back below 5e-4
    assert truth == max(eps for eps in slerp_exercises.NUDGES if eps**2 / 2 < 5e-4) == 0.01
    assert "ε=0.1: 5." in explanation  # 1 − cos ≈ 0.1² / 2


def test_the_normalised_lerp_is_farthest_from_slerp_where_the_closed_form_says(tiny) -> None:
    a, b = _orthogonal_pair(tuple(make_latents(tiny.pipe, 0, height=tiny.height, width=tiny.width).shape[1:]))
    fine = np.linspace(0, 1, 101)
    # perpendicular, equal norms: slerp is at the angle 90°·λ from a, the normalised lerp at atan(λ / (1 − λ))
    gap = np.abs(90 * fine - np.degrees(np.arctan2(fine, 1 - fine)))
    far = fine[int(np.argmax(gap))]
    embeds, negative = encode_prompts(tiny.pipe, [tiny.prompts[0]])
    frames = render_frames(tiny.pipe, prompt_embeds=embeds.expand(3, -1, -1), negative_prompt_embeds=negative,
                           latents=slerp(a, b, linear_schedule(3)), seed=0, progress=False, **tiny.render_kwargs())
    truth, explanation = slerp_exercises.normalised_lerp(tiny, a, b, embeds, negative, frames, frames, seed=0)
    assert truth == ("middle" if 0.375 <= far <= 0.625 else "quarters") == "quarters"
    found = re.search(r"farthest from slerp at λ = ([\d.]+) \(([\d.]+)°; ([\d.]+)° at λ = 0.5\)", explanation)
    assert found.group(1) in (f"{far:.2f}", f"{1 - far:.2f}")  # |gap| is symmetric about λ = 0.5
    assert float(found.group(2)) == pytest.approx(gap.max(), abs=0.02)
    assert float(found.group(3)) < 0.05  # the two paths meet in the middle (up to float32's arccos near 1)


def test_inverting_with_twice_the_steps_is_reported_for_both_step_counts(tiny) -> None:
    images = tiny.example_images(2)
    inverted = tiny.invert(images)
    empty, _ = encode_prompts(tiny.pipe, [""])
    recon = render_frames(tiny.pipe, prompt_embeds=empty.expand(2, -1, -1), latents=inverted, seed=0, progress=False,
                          **tiny.render_kwargs(guidance_scale=1.0))
    truth, explanation = slerp_exercises.inversion_steps(tiny, images, inverted, recon, seed=0)
    assert truth in ("up", "down")
    assert f"with {tiny.steps} steps" in explanation and f"with {2 * tiny.steps};" in explanation
    assert f"the latents' std {float(inverted.std()):.3f} → " in explanation


# --------------------------------------------------------------------------------------------------
# 03: the scene judge on ground truth
# --------------------------------------------------------------------------------------------------


def test_the_text_diff_crossing_is_read_off_ground_truth_scenes() -> None:
    from helpers.teaching.judge import scene_judge

    shown = ["red apple", "red apple", "red apple", "green apple", "green apple"]
    frames = scenes.example_scenes(shown, seed=0).images
    truth, explanation = unclip.text_diff_judged(frames, [0.0, 0.25, 0.5, 0.75, 1.0], scene_judge(),
                                                 image_object="red apple")
    assert truth == "after 0.5"
    assert "first falls below 0.5 at λ = 0.750" in explanation and "'green apple'" in explanation
    truth, _ = unclip.text_diff_judged(frames[:3], [0.0, 0.5, 1.0], scene_judge(), image_object="red apple")
    assert truth == "never"


def test_lerp_switch_reports_the_midpoint_norm_of_the_two_embeddings() -> None:
    from helpers.teaching.judge import scene_judge

    backend = choose_backend("tiny-random", "unclip")
    embeds = encode_images(backend.pipe, backend.example_images(2))
    kwargs = backend.render_kwargs()
    slerp_frames = render_frames(backend.pipe, image_embeddings=slerp(embeds[0], embeds[1], linear_schedule(3), dim=-1),
                                 seed=0, progress=False, **kwargs)
    truth, explanation = unclip.lerp_switch(backend.pipe, embeds, slerp_frames, scene_judge(),
                                            objects=("red apple", "green apple"), seed=0, render_kwargs=kwargs)
    assert truth in ("sharper", "smoother")
    middle = float(((embeds[0] + embeds[1]) / 2).norm() / embeds[0].norm())
    assert f"lerp's midpoint has {middle:.2f} of A's norm" in explanation


# --------------------------------------------------------------------------------------------------
# 04: prompt walks
# --------------------------------------------------------------------------------------------------


def test_a_closed_walk_is_exported_with_every_frame_once(tiny, tmp_path) -> None:
    keys, negative = encode_prompts(tiny.pipe, list(tiny.prompts[:3]))
    latent = make_latents(tiny.pipe, 0, height=tiny.height, width=tiny.width)
    truth, explanation = prompt_walks.closed_walk(tiny.pipe, keys, negative, latent, num_frames=6, seed=0,
                                                  render_kwargs=tiny.render_kwargs(), out_dir=tmp_path)
    assert isinstance(truth, bool)
    with Image.open(tmp_path / "three_prompt_loop.gif") as gif:
        assert gif.n_frames == 6
    assert explanation.endswith("three_prompt_loop.gif holds 6 frames for the 6 of the walk")


def test_the_loop_radius_answer_is_the_first_radius_past_halfway(tiny) -> None:
    embeds, negative = encode_prompts(tiny.pipe, list(tiny.prompts[:2]))
    latent = make_latents(tiny.pipe, 0, height=tiny.height, width=tiny.width)
    kwargs = tiny.render_kwargs()
    frames = render_frames(tiny.pipe, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], latents=latent,
                           seed=0, progress=False, **kwargs)
    truth, explanation = prompt_walks.loop_radius(tiny.pipe, embeds, negative, latent, frames, seed=0,
                                                  render_kwargs=kwargs)
    away = {float(r): float(d) for r, d in re.findall(r"radius ([\d.]+): ([\d.]+)", explanation)}
    halfway = float(re.search(r"halfway to prompt B's picture is ([\d.]+)", explanation).group(1))
    assert list(away) == list(prompt_walks.RADII)
    past = [r for r, d in away.items() if d >= halfway]
    assert truth == (past[0] if past else "none")


# --------------------------------------------------------------------------------------------------
# 05: noise loops, on exact geometry
# --------------------------------------------------------------------------------------------------


def test_a_loop_through_three_perpendicular_seeds_turns_at_the_seeds() -> None:
    gen = torch.Generator().manual_seed(0)
    q, _ = torch.linalg.qr(torch.randn(48, 3, generator=gen, dtype=torch.float64))  # orthonormal columns
    noises = (q.T * math.sqrt(48)).reshape(3, 3, 4, 4).float()
    truth, explanation = noise_walks.three_seed_loop(noises, 12)
    # three 90° arcs of four 22.5° steps: equal steps, turns of 22.5° along the arcs and sharper ones at the
    # seeds; the circle through two of them: equal steps and a turn of 360°/12 = 30° at every frame
    assert truth == "turns"
    assert "the sharpest turns are at frames [0, 4, 8], the seeds are frames [0, 4, 8]" in explanation
    assert "circular_walk by 30° to 30° (turn CV 0.00)" in explanation


def test_a_loop_with_half_of_one_noise_shrinks_to_half_the_norm(tiny) -> None:
    shape = tuple(make_latents(tiny.pipe, 0, height=tiny.height, width=tiny.width).shape[1:])
    a, b = _orthogonal_pair(shape)
    noises = torch.stack([a, b]) * math.sqrt(a.numel()) / a.norm()  # |x| = √d exactly
    embeds, negative = encode_prompts(tiny.pipe, [tiny.prompts[0]])
    truth, explanation = noise_walks.half_norm(tiny.pipe, noises, embeds, negative, num_frames=8, seed=0,
                                               render_kwargs=tiny.render_kwargs())
    assert truth in ("lower", "higher")
    # cos θ·x₀ + sin θ·½x₁ with x₀ ⊥ x₁: |x|/√d = √(cos²θ + ¼ sin²θ), from ½ (θ = 90°, a frame of 8) to 1
    assert explanation.startswith("|latent|/√d runs from 0.50 to 1.00 along the loop")


def test_the_loop_step_against_the_seed_walk_is_the_chord_ratio() -> None:
    a, b = _orthogonal_pair((4, 8, 8))
    noises = torch.stack([a, b])
    rng = np.random.default_rng(0)
    for n in (12, 4):
        frames = [Image.fromarray(rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)) for _ in range(n)]
        truth, explanation = noise_walks.loop_step(noises, frames, frames)
        # chords of a circle of radius √d: 2 sin(180°/n) per loop step, 2 sin(45°/(n − 1)) per seed-walk step
        ratio = math.sin(math.pi / n) / math.sin(math.pi / 4 / (n - 1))
        assert truth == min(noise_walks.STEP_RATIOS, key=lambda r: abs(math.log(ratio / r)))
        assert f"{ratio:.2f} times as large" in explanation
    assert truth == 2  # four frames: 2.73 times, nearer 2 than 4 on a log scale
    with pytest.raises(ValueError, match="same length"):
        noise_walks.loop_step(noises, frames[:3], frames)


# --------------------------------------------------------------------------------------------------
# 06: explorers
# --------------------------------------------------------------------------------------------------


def test_object_named_finds_whole_names_only() -> None:
    assert explorer.object_named("a big red heart on a white background") == "red heart"
    assert explorer.object_named("A small Orange Heart") == "orange heart"  # not "orange", the fruit
    with pytest.raises(ValueError, match="names no object"):
        explorer.object_named("a sunny start of the card game")  # sun, star and car only inside words


def test_the_schedule_toggle_picks_the_frame_the_slider_rounds_to(tiny, tmp_path) -> None:
    truth, explanation = explorer.schedule_toggle(tiny, *tiny.prompts[:2], num_frames=6, seed=0, steps=None,
                                                  out_dir=tmp_path)
    assert truth in ("less", "more")
    # λ = 0.2 of 6 frames is frame round(0.2 · 5) = 1, rendered at (1 − cos(π/5)) / 2 = 0.095 instead of 0.2
    assert "shows frame 1, rendered at the fraction 0.10 instead of 0.20" in explanation


def test_the_guidance_explorer_reads_every_frame_at_three_settings(tiny, tmp_path) -> None:
    with pytest.raises(ValueError, match="names no object"):
        explorer.guidance_walks(tiny, *tiny.prompts[:2], seed=0, steps=None, out_dir=tmp_path)
    hearts = scenes.caption("red heart"), scenes.caption("blue heart")
    truth, explanation = explorer.guidance_walks(tiny, *hearts, seed=0, steps=None, out_dir=tmp_path, num_frames=5)
    assert isinstance(truth, bool)
    g0 = tiny.guidance_scale
    assert [float(g) for g in re.findall(r"guidance ([\d.]+):", explanation)] == [1.0, g0, 2 * g0]
    assert explanation.startswith("the judge reads the 5 frames at λ = 0, 0.25, …, 1")


# --------------------------------------------------------------------------------------------------
# 07: re-timing
# --------------------------------------------------------------------------------------------------


def _cross_fade(fracs) -> np.ndarray:
    """A walk that lingers, then hurries: a cross-fade between two pictures by λ³."""
    ends = np.random.default_rng(0).random((2, 8, 8, 3))
    return np.stack([(1 - x**3) * ends[0] + x**3 * ends[1] for x in np.asarray(fracs, dtype=np.float64)])


def test_reusing_renders_each_fraction_once() -> None:
    asked = []

    def render(fracs):
        asked.append([float(x) for x in fracs])
        return _cross_fade(fracs)

    walk_at = smooth.reusing(render)
    first = walk_at([0.0, 0.5, 1.0])
    second = walk_at([0.5, 0.25, 1.0])
    assert asked == [[0.0, 0.5, 1.0], [0.25]]
    np.testing.assert_allclose(second, _cross_fade([0.5, 0.25, 1.0]))
    np.testing.assert_allclose(first, _cross_fade([0.0, 0.5, 1.0]))


def test_retiming_a_smooth_uneven_walk_keeps_its_gain_at_the_tightest_budget() -> None:
    from helpers import retime, walk_report

    walk = _cross_fade(linear_schedule(8))
    before = walk_report(list(walk))
    retimed = retime(_cross_fade, 8, coarse=8, budget=24)
    assert retimed.report.cv < before.cv / 4  # the λ³ fade is smooth: inverting its cumulative distance evens it
    truth, explanation = smooth.budgets(smooth.reusing(_cross_fade), 8, before, retimed, coarse=8, budget=24)
    assert truth is True and "at budget 14:" in explanation  # the tightest budget: coarse + frames − 2
    truth, _ = smooth.ssim_metric(_cross_fade, 8, list(walk), before, retimed, coarse=8, budget=24)
    assert truth is True  # evened out under SSIM, the fade is more even under RMSE too


def test_the_adain_exercise_renders_the_retimed_fractions_with_adain_noise() -> None:
    from helpers import adain_interpolate, retime, walk_report

    calls = []

    def render_morph(fracs, noise=None):
        calls.append((np.asarray(fracs), noise))
        return _cross_fade(fracs)

    retimed = retime(_cross_fade, 8, coarse=8, budget=24)
    truth, _ = smooth.adain_retimed(render_morph, retimed, list(_cross_fade(linear_schedule(8))),
                                    walk_report(list(_cross_fade(linear_schedule(8)))))
    assert len(calls) == 1 and calls[0][1] is adain_interpolate
    np.testing.assert_array_equal(calls[0][0], retimed.ts)
    assert truth is True  # the re-timed fractions even out the same fade


# --------------------------------------------------------------------------------------------------
# 08: morphs
# --------------------------------------------------------------------------------------------------


def test_attention_switched_off_from_the_first_step_changes_nothing(tiny) -> None:
    from helpers import morph as morphing

    images = morphing.prepare_images(tiny.example_images(2), (32, 32))
    inversion = morphing.invert_images(tiny.pipe, images, ["a cat", "a dog"], num_inference_steps=3)
    fracs = linear_schedule(3)
    adain = morphing.render_morph(tiny.pipe, inversion, fracs, noise="adain", progress=False)
    truth, explanation = morph.attention_steps_zero(tiny.pipe, inversion, fracs, adain, attention="inner")
    assert truth is True and explanation.startswith("the largest pixel difference is ")


# --------------------------------------------------------------------------------------------------
# 09: timelines planned to a click track
# --------------------------------------------------------------------------------------------------


def test_timelines_to_music_even_out_with_smooth_one_and_thin_out_at_twice_the_rate(tmp_path) -> None:
    from helpers.audio import click_track, onset_envelope, write_audio
    from helpers.timeline import Keyframe

    beat = 60 / 100
    song = write_audio(tmp_path / "beat.wav", click_track(100, 12 * beat))
    keyframes = [Keyframe(f"prompt {i}", seed=i, at=3 * beat * i) for i in range(4)]
    truth, explanation = timelines.full_smoothing(keyframes, onset_envelope(song, 8), 8)
    assert truth == "zero"  # smooth = 1: evenly spaced, whatever the music
    truth, explanation = timelines.double_fps(keyframes, song, 8)
    assert truth == "down" and " at 8 fps, " in explanation and " at 16 fps:" in explanation
