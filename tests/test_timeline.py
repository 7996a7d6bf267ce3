"""Timelines (helpers.timeline): keyframes with per-segment lengths and easing, exact loops, rendered on a tiny
random Stable Diffusion pipeline. Checked against what each keyframe gives when rendered on its own, and against
the geometry of the noise path (equal angular steps, the closing step included)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers.embeddings import encode_prompts, make_latents
from helpers.interpolation import EASINGS, schedule_values
from helpers.pipelines import tiny_pipeline
from helpers.render import render_frames
from helpers.timeline import (
    Keyframe,
    Timeline,
    duration_seconds,
    keyframe_times,
    plan_frames,
    render_timeline,
    timeline_inputs,
    timeline_pipe,
)


@pytest.fixture(scope="module")
def pipe():
    return tiny_pipeline("text2img")


def _angle(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.flatten().double(), b.flatten().double()
    return float(torch.arccos((a @ b / (a.norm() * b.norm())).clamp(-1, 1)))


def test_an_open_timeline_shows_every_keyframe_once_at_its_place():
    tl = Timeline([Keyframe("a", frames=4), Keyframe("b", frames=6), Keyframe("c")])
    plan = plan_frames(tl)
    assert len(plan) == 4 + 6 + 1
    on_keyframe = [i for i in range(len(plan)) if plan.frac[i] in (0.0, 1.0)]
    assert on_keyframe == [0, 4, 10]
    assert plan.segment.tolist() == [0] * 4 + [1] * 6 + [1] and plan.frac[-1] == 1.0
    assert keyframe_times(tl) == [0.0, 4 / 12, 10 / 12]


def test_a_loop_closes_exactly_with_equal_steps_and_no_repeated_frame(pipe):
    tl = Timeline([Keyframe("a red heart", seed=0, frames=5), Keyframe("a red heart", seed=1, frames=5),
                   Keyframe("a red heart", seed=2, frames=5)], loop=True)
    latents = timeline_inputs(pipe, tl)["latents"]
    assert len(latents) == 15
    # three independent noises are nearly orthogonal: each segment is a slerp of about 90 degrees in 5 steps
    keys = make_latents(pipe, [0, 1, 2])
    steps = [_angle(latents[i], latents[(i + 1) % 15]) for i in range(15)]
    per_segment = [_angle(keys[i], keys[(i + 1) % 3]) / 5 for i in range(3)]
    np.testing.assert_allclose(steps, np.repeat(per_segment, 5), rtol=1e-4)  # the closing step like the others
    assert min(steps) > 0.1  # no frame repeated, the seam included
    for i in range(3):
        torch.testing.assert_close(latents[5 * i], keys[i])


def test_easing_shapes_each_segment_and_segments_keep_their_own_curves():
    tl = Timeline([Keyframe("a", frames=8, easing="ease-in"), Keyframe("b", frames=8, easing="ease-out"),
                   Keyframe("c")])
    plan = plan_frames(tl)
    u = np.arange(8) / 8
    np.testing.assert_allclose(plan.frac[:8], u**2, atol=1e-6)
    np.testing.assert_allclose(plan.frac[8:16], 1 - (1 - u) ** 2, atol=1e-6)
    assert (np.diff(plan.frac[:8]) > 0).all() and (np.diff(np.diff(plan.frac[:8])) > 0).all()  # speeding up
    assert (np.diff(np.diff(plan.frac[8:16])) < 0).all()  # slowing down


@pytest.mark.parametrize("name", EASINGS)
def test_every_easing_runs_from_0_to_1_and_never_back(name):
    values = schedule_values(name, 101)
    assert values[0] == pytest.approx(0, abs=1e-7) and values[-1] == pytest.approx(1, abs=1e-6)
    assert (np.diff(values) >= 0).all()


def test_seconds_count_at_the_timeline_fps():
    tl = Timeline([Keyframe("a", seconds=0.5), Keyframe("b", seconds=1.0), Keyframe("c", frames=3)], fps=24,
                  loop=True)
    assert len(plan_frames(tl)) == 12 + 24 + 3
    assert duration_seconds(tl) == pytest.approx(39 / 24)


def test_keyframes_render_as_they_would_alone(pipe):
    tl = Timeline([Keyframe("a red heart", seed=3, frames=3, negative_prompt="blue"),
                   Keyframe("a blue car", seed=7)])
    kw = dict(num_inference_steps=2, guidance_scale=3.0, output_type="np", progress=False)
    frames = render_timeline(pipe, tl, **kw)
    assert len(frames) == 4
    for index, prompt, negative, seed in ((0, "a red heart", "blue", 3), (3, "a blue car", "", 7)):
        embeds, neg = encode_prompts(pipe, [prompt], negative_prompt=negative)
        alone = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=neg, latents=make_latents(pipe, seed),
                              seed=0, **kw)
        np.testing.assert_allclose(frames[index], alone[0], atol=1e-5)
    assert np.abs(frames[1] - frames[0]).mean() > 1e-4  # the frames between move


@pytest.mark.parametrize(("timeline", "message"), [
    (Timeline([Keyframe("a", frames=3)]), "at least two keyframes"),
    (Timeline([Keyframe("a", frames=3, seconds=1.0), Keyframe("b")]), "exactly one of them"),
    (Timeline([Keyframe("a"), Keyframe("b")]), "exactly one of them"),
    (Timeline([Keyframe("a", frames=3), Keyframe("b")], loop=True), "keyframe 1"),
    (Timeline([Keyframe("a", frames=3, easing="bounce"), Keyframe("b")]), "unknown easing 'bounce'"),
    (Timeline([Keyframe("a", frames=0), Keyframe("b")]), "frames must be a whole number from 1"),
    (Timeline([Keyframe("a", seconds=0.01), Keyframe("b")]), "less than one frame"),
    (Timeline([Keyframe("a", seed=-1, frames=2), Keyframe("b")]), "seed must be a whole number"),
    (Timeline([Keyframe(" ", frames=2), Keyframe("b")]), "neither a prompt nor an image"),
    (Timeline([Keyframe("a", frames=2), Keyframe("b")], fps=0), "fps must be"),
])
def test_a_timeline_that_cannot_render_is_one_clear_error(timeline, message):
    with pytest.raises(ValueError, match=message):
        plan_frames(timeline)


def test_a_timeline_of_the_wrong_things_is_a_type_error():
    with pytest.raises(TypeError, match="Keyframe"):
        plan_frames(Timeline(["a", "b"]))
    with pytest.raises(TypeError, match="Timeline"):
        plan_frames([Keyframe("a", frames=2), Keyframe("b")])


def test_sdxl_timelines_walk_both_encoders_and_the_pooled_embedding():
    """On SDXL every conditioning part travels: the packed pooled embedding is the last token of each row."""
    sdxl = tiny_pipeline("sdxl")
    tl = Timeline([Keyframe("a cat", seed=1, frames=4), Keyframe("a dog", seed=2, frames=4)], loop=True)
    embeds = timeline_inputs(sdxl, tl)["prompt_embeds"]
    keys, _ = encode_prompts(sdxl, ["a cat", "a dog"])
    pooled, key_pooled = embeds[:, -1], keys[:, -1]  # helpers.embeddings.pack_pooled's last token
    middle = _angle(pooled[2], key_pooled[0]), _angle(pooled[2], key_pooled[1])
    assert min(middle) > 0.01 and abs(middle[0] - middle[1]) < 0.2 * _angle(key_pooled[0], key_pooled[1])
    frames = render_timeline(sdxl, tl, num_inference_steps=2, output_type="np", progress=False)
    assert len(frames) == 8


# --- image keyframes, per-segment re-timing (issue 34)


def test_an_image_keyframe_walks_from_its_inverted_noise_to_the_next_prompt(pipe):
    """Image → prompt: the noise runs from the image's DDIM inversion to the prompt's seed in equal angular
    steps, and the conditioning from the empty caption to the prompt."""
    from PIL import Image

    from helpers.morph import invert_images

    photo = Image.new("RGB", (32, 32), (220, 40, 40))
    tl = Timeline([Keyframe(image=photo, frames=4), Keyframe("a blue car", seed=5)])
    inputs = timeline_inputs(pipe, tl, num_inference_steps=3)
    with pytest.raises(TypeError, match="did you mean 'num_inference_steps'"):
        timeline_inputs(pipe, tl, num_inference_step=3)
    inverted = invert_images(pipe, [photo], num_inference_steps=3).latents[0]
    torch.testing.assert_close(inputs["latents"][0], inverted)
    torch.testing.assert_close(inputs["latents"][4], make_latents(pipe, 5)[0])
    steps = [_angle(inputs["latents"][i], inputs["latents"][i + 1]) for i in range(4)]
    np.testing.assert_allclose(steps, _angle(inverted, make_latents(pipe, 5)[0]) / 4, rtol=1e-4)
    empty, _ = encode_prompts(pipe, [""])
    car, _ = encode_prompts(pipe, ["a blue car"])
    torch.testing.assert_close(inputs["prompt_embeds"][0], empty[0])
    torch.testing.assert_close(inputs["prompt_embeds"][4], car[0])


@pytest.fixture(scope="module")
def teaching():
    from helpers.backends import choose_backend

    return choose_backend("teaching", "text2img")


def _mse(a: np.ndarray, b: np.ndarray) -> float:
    return float(((np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)) ** 2).mean())


def test_an_image_keyframe_comes_back_in_its_frame_on_the_teaching_model(teaching):
    """The frame on an image keyframe is the image (DDIM inversion round trip, at the model card's guidance:
    the empty caption is also the negative prompt, so guidance leaves it alone); the prompt keyframes around
    it are other pictures."""
    from helpers.morph import images_to_array

    apple = teaching.example_images(objects=["green apple"])[0]
    tl = Timeline([Keyframe("a big red heart on a white background", seed=0, frames=3),
                   Keyframe(image="scene:green apple", frames=3), Keyframe("a big cat face on a pink background")])
    frames = render_timeline(teaching.pipe, tl, output_type="np", progress=False, **teaching.render_kwargs())
    truth = images_to_array([apple])[0]
    rebuilt, others = _mse(frames[3], truth), min(_mse(frames[0], truth), _mse(frames[6], truth))
    print(f"image keyframe: MSE {rebuilt:.4f} to its image; the prompt keyframes: {others:.4f}")
    assert rebuilt < 0.01 and others > 5 * rebuilt


def test_an_unclip_timeline_walks_between_inverted_images():
    from helpers.backends import choose_backend
    from helpers.morph import images_to_array

    unclip = choose_backend("teaching", "unclip")
    images = unclip.example_images(objects=["red apple", "bus"])
    tl = Timeline([Keyframe(image=images[0], frames=4), Keyframe(image=images[1])])
    kw = {**unclip.render_kwargs(), "decoder_guidance_scale": 1.0}
    frames = render_timeline(unclip.pipe, tl, output_type="np", progress=False, **kw)
    truth = images_to_array(images)
    errors = _mse(frames[0], truth[0]), _mse(frames[4], truth[1])
    print("unCLIP image keyframes come back at MSE", np.round(errors, 4))
    assert max(errors) < 0.015 and _mse(frames[2], truth[0]) > max(errors)
    # timeline_inputs reads the render's keyword arguments as render_timeline does (both unCLIP stages' steps)
    inputs = timeline_inputs(unclip.pipe, tl, **kw)
    again = render_frames(timeline_pipe(unclip.pipe, tl), seed=0, progress=False, output_type="np", **inputs, **kw)
    np.testing.assert_allclose(again, frames, atol=1e-5)
    with pytest.raises(ValueError, match="walks between images"):
        timeline_inputs(unclip.pipe, Timeline([Keyframe("a red apple", frames=2), Keyframe(image=images[1])]))


def test_a_retimed_segment_is_more_even_than_the_linear_one(teaching):
    """retime=True on a segment: its frames' steps, measured with notebook 07's walk_report (RMSE), are more
    even than the same segment spaced evenly in λ."""
    from helpers.metrics import walk_report
    from helpers.timeline import retimed_plan

    keys = [Keyframe("a big red heart on a white background", seed=0, frames=8),
            Keyframe("a big cat face on a pink background", seed=0)]
    kw = teaching.render_kwargs()
    reports = {}
    for retimed in (False, True):
        tl = Timeline([Keyframe(**{**keys[0].__dict__, "retime": retimed}), keys[1]])
        frames = render_timeline(teaching.pipe, tl, output_type="np", progress=False, **kw)
        reports[retimed] = walk_report(frames, metric="rmse")
    print("jump ratio linear → retimed:", round(reports[False].jump_ratio, 2), "→", round(reports[True].jump_ratio, 2),
          "; smoothness:", round(reports[False].smoothness, 3), "→", round(reports[True].smoothness, 3))
    assert reports[True].smoothness > reports[False].smoothness
    plan = retimed_plan(teaching.pipe, Timeline([Keyframe(**{**keys[0].__dict__, "retime": True}), keys[1]]), **kw)
    assert plan.frac[0] == 0.0 and plan.frac[-1] == 1.0 and (np.diff(plan.frac) >= 0).all()
