"""``make demo`` (``python -m helpers.demo``) renders every walk the issue lists, on the teaching models, offline."""

from __future__ import annotations

import json
import re

import imageio.v3 as iio
import numpy as np
import pytest
import torch
from PIL import Image

import helpers.embeddings as embeddings
import helpers.teaching as teaching
import helpers.unclip as unclip
from helpers import demo
from helpers.pipelines import load_pipeline
from helpers.teaching import scenes

WALKS = ("two_prompt_walk", "family_walk", "circular_noise_loop", "unclip_interpolation", "text_diff", "prior_walk")
BIG_ON_WHITE = re.compile(r"a big (.+) on a white background")


@pytest.fixture(scope="module")
def variation():
    return load_pipeline("teaching-unclip", device="cpu")


@pytest.fixture(scope="module")
def text_unclip():
    return load_pipeline("teaching-unclip-text", device="cpu")


def _pixels(image) -> np.ndarray:
    return np.asarray(image.convert("RGB"), dtype=np.int16)


def test_demo_writes_gif_mp4_and_contact_sheet_for_every_walk(tmp_path, capsys, monkeypatch):
    asked: dict[str, list[list[str]]] = {"prompts": [], "text": [], "prior": []}

    def spy(key, real):
        def wrapper(pipe, prompts, *args, **kwargs):
            asked[key].append(list(prompts))
            return real(pipe, prompts, *args, **kwargs)
        return wrapper

    monkeypatch.setattr(demo, "encode_prompts", spy("prompts", embeddings.encode_prompts))
    monkeypatch.setattr(embeddings, "encode_text", spy("text", embeddings.encode_text))
    monkeypatch.setattr(unclip, "prior_embeddings", spy("prior", unclip.prior_embeddings))
    assert demo.main(["--out", str(tmp_path), "--frames", "6", "--steps", "8"]) == 0
    printed = capsys.readouterr().out
    for name in WALKS:
        for ext in ("gif", "mp4", "png"):
            path = tmp_path / f"{name}.{ext}"
            assert path.is_file() and path.stat().st_size > 0, path
            assert str(path) in printed  # the demo says what it wrote
        gif = iio.imread(tmp_path / f"{name}.gif", index=None)
        mp4 = iio.imread(tmp_path / f"{name}.mp4", plugin="FFMPEG")
        assert gif.ndim == 4 and len(gif) >= 4 and mp4.ndim == 4 and len(mp4) >= 4
        assert np.ptp(gif.astype(np.int16), axis=0).max() > 0  # an animation, not one still frame
        with Image.open(tmp_path / f"{name}.png") as sheet:
            assert sheet.width > sheet.height / 2 and sheet.width >= 6 * 32
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temporary files left behind
    assert len(list(tmp_path.iterdir())) == 3 * len(WALKS)

    # What the walks were asked to show: a colour walk, one big object of every family, the apple pair.
    colour, families, loop = asked["prompts"]
    assert colour == ["a big red heart on a white background", "a big blue heart on a white background"]
    assert loop == colour[:1]
    objects = [BIG_ON_WHITE.fullmatch(p).group(1) for p in families]
    assert sorted(scenes.OBJECTS[scenes.object_index(o)].family for o in objects) == sorted(scenes.FAMILIES)
    assert asked["text"] == [["a big red apple on a white background", "a big green apple on a white background"]]
    (prior_prompts,) = asked["prior"]
    assert len(set(prior_prompts)) == 2 and all(BIG_ON_WHITE.fullmatch(p) for p in prior_prompts)


def test_the_colour_walk_starts_from_the_backends_first_example_prompts():
    from helpers.backends import _defaults

    prompts = _defaults("teaching", "text2img", None)["prompts"]
    assert [demo.scene_prompt(name) for name in demo.COLOUR_PAIR] == list(prompts[:2])


def test_unclip_walk_endpoints_are_the_reconstructions_of_the_example_scenes(variation):
    from helpers.backends import EXAMPLE_OBJECTS, choose_backend

    settings = demo.Settings(model="teaching", out=None, frames=5)
    images = demo._endpoint_images(settings, prompt_frames=[])
    # the notebooks' example pair: a big red and a big green apple on white, as Backend.example_images draws it
    shown = choose_backend("tiny-random", "unclip").example_images(objects=EXAMPLE_OBJECTS)
    for image, pil in zip(images, shown, strict=True):
        assert image.shape == (3, 32, 32)
        assert np.array_equal((image.permute(1, 2, 0).numpy() * 255).round().astype(np.int16), _pixels(pil))
    walks = demo.image_walks(variation, images, settings)
    frames = walks["unclip_interpolation"]
    assert len(frames) == 5 and all(f.size == (32, 32) for f in frames)
    inv = unclip.invert(variation, images)
    for k, frame in ((0, frames[0]), (1, frames[-1])):
        alone = unclip.decode(variation, inv.image_embeddings[k:k + 1], inv.decoder_latents[k:k + 1],
                              inv.super_res_latents[k:k + 1], output_type="pil")[0]
        assert np.abs(_pixels(frame) - _pixels(alone)).max() <= 1  # uint8 rounding of float batching noise
    diff = walks["text_diff"]
    assert len(diff) >= 4
    assert np.abs(_pixels(diff[0]) - _pixels(frames[0])).max() <= 1  # λ = 0: image A's own reconstruction
    assert np.abs(_pixels(diff[0]) - _pixels(diff[-1])).max() > 0  # the text diff moves


def test_unclip_walk_endpoints_reconstruct_the_example_scenes_with_trained_weights(variation):
    info = json.loads((teaching.WEIGHTS_DIR / "teaching-unclip" / "training.json").read_text(encoding="utf-8"))
    assert info.get("smoke") is False, "the shipped teaching-unclip weights must be the trained ones, not smoke weights"
    settings = demo.Settings(model="teaching", out=None, frames=3)
    images = demo._endpoint_images(settings, prompt_frames=[])
    frames = demo.image_walks(variation, images, settings)["unclip_interpolation"]
    for frame, image in ((frames[0], images[0]), (frames[-1], images[1])):
        got = torch.from_numpy(np.asarray(frame, dtype=np.float32) / 255).permute(2, 0, 1)
        assert float(((got - image) ** 2).mean()) <= 0.01  # the reconstruction bound


def test_prior_walk_runs_from_one_prompts_sample_to_the_others(variation, text_unclip):
    settings = demo.Settings(model="teaching", out=None, frames=4)
    frames = demo.prior_walk(text_unclip, variation, settings)
    assert len(frames) == 4 and all(f.size == (32, 32) and f.mode == "RGB" for f in frames)
    assert len({f.tobytes() for f in frames}) > 1
    again = demo.prior_walk(text_unclip, variation, settings)
    assert [f.tobytes() for f in again] == [f.tobytes() for f in frames]  # fixed noise: deterministic
    ends = demo.prior_walk(text_unclip, variation, demo.Settings(model="teaching", out=None, frames=2))
    for a, b in ((ends[0], frames[0]), (ends[1], frames[-1])):  # endpoints do not depend on the frame count
        assert np.abs(_pixels(a) - _pixels(b)).max() <= 1


def test_prior_embeddings_with_a_prior_that_knows_the_answer(text_unclip, monkeypatch):
    """Independent fact: the prior predicts the clean embedding, and the last DDPM step (t = 0) returns that
    prediction with no noise; so a prior that always predicts ``c`` (in its standardised coordinates) yields
    ``c * clip_std + clip_mean`` whatever the prompt, the guidance or the number of steps."""
    from diffusers.models.transformers.prior_transformer import PriorTransformerOutput

    prior = text_unclip.prior
    c = torch.linspace(-2, 2, prior.config.embedding_dim)[None]

    def knows(hidden_states, *args, **kwargs):
        return PriorTransformerOutput(predicted_image_embedding=c.expand(hidden_states.shape[0], -1))

    monkeypatch.setattr(prior, "forward", knows)
    expected = (c * prior.clip_std + prior.clip_mean).expand(2, -1)
    for steps, guidance in ((5, 4.0), (12, 1.0)):
        got = unclip.prior_embeddings(text_unclip, ["a cat face", "a big rocket on a blue background"],
                                      num_inference_steps=steps, guidance_scale=guidance, seed=3)
        # float32 scheduler coefficients: the last step's x0 weight is beta_0 / (1 - alpha_bar_0), 1 up to ~1e-3
        torch.testing.assert_close(got, expected.float(), rtol=1e-2, atol=1e-3)


def test_prior_embeddings_are_seeded_per_prompt_and_need_a_prior(text_unclip, variation):
    prompts = ["a big cat face on a white background", "a big dog face on a white background"]
    both = unclip.prior_embeddings(text_unclip, prompts, num_inference_steps=5, seed=1)
    assert both.shape == (2, text_unclip.prior.config.embedding_dim) and both.dtype == torch.float32
    alone = unclip.prior_embeddings(text_unclip, prompts[1], num_inference_steps=5, seed=1)
    assert torch.equal(alone[0], both[1])  # a prompt's embedding does not depend on the rest of the batch
    other = unclip.prior_embeddings(text_unclip, prompts[1], num_inference_steps=5, seed=2)
    assert not torch.equal(other, alone)
    with pytest.raises(TypeError, match="teaching-unclip-text"):
        unclip.prior_embeddings(variation, prompts)
    with pytest.raises(ValueError, match="num_inference_steps"):
        unclip.prior_embeddings(text_unclip, prompts, num_inference_steps=1)


def test_prior_text_walk_interpolates_the_conditioning_with_the_union_mask(text_unclip, monkeypatch):
    a, b = "a big cat face on a white background", "a big dog face on a white background"  # same length
    walk = unclip.prior_text_walk(text_unclip, a, b, [0.0, 0.5, 1.0], num_inference_steps=5, seed=1)
    ends = unclip.prior_embeddings(text_unclip, [a, b], num_inference_steps=5, seed=1)
    assert walk.shape == (3, text_unclip.prior.config.embedding_dim)
    torch.testing.assert_close(walk[[0, 2]], ends, rtol=1e-5, atol=1e-5)  # equal masks: the endpoints are the prompts'
    assert not torch.allclose(walk[1], walk[0]) and not torch.allclose(walk[1], walk[2])

    masks = []
    real = unclip._prior_sample
    monkeypatch.setattr(unclip, "_prior_sample", lambda pipe, e, h, m, *rest: (masks.append(m), real(pipe, e, h, m, *rest))[1])
    short, long = "a cat face", "a big dog face on a blue background"
    unclip.prior_text_walk(text_unclip, short, long, [0.0, 1.0], num_inference_steps=3)
    tokens = text_unclip.tokenizer([short, long], padding="max_length", max_length=text_unclip.tokenizer.model_max_length,
                                   return_tensors="pt").attention_mask.bool()
    assert all(torch.equal(m[1], tokens[0] | tokens[1]) for m in masks)  # the guided row sees every token of either
    assert all(m[0].sum() == 2 for m in masks)  # the unconditional row: the empty prompt's start and end tokens


def test_missing_teaching_weights_are_one_clear_line(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(teaching, "WEIGHTS_DIR", tmp_path / "nothing-here")
    assert demo.main(["--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error:") and "make teaching-models" in err and "Traceback" not in err


def test_bad_frame_count_is_a_clear_error(tmp_path):
    with pytest.raises(SystemExit):
        demo.main(["--out", str(tmp_path), "--frames", "1"])


@pytest.mark.parametrize(("model", "tiny"), [("sd15", "text2img"), ("sd35-medium", "sd3"), ("flux-dev", "flux")])
def test_real_demo_code_paths_run_on_tiny_real_pipelines(model, tiny, tmp_path, monkeypatch, capsys):
    # `make demo MODEL=sd15` (or an SD 3.5 or FLUX.1 model) needs a GPU and the hub; its code path runs here on
    # tiny random components of the same pipeline classes (Karlo -> tiny "unclip").
    import helpers.pipelines as pipelines

    loaded = []

    def fake_load(name, *args, **kwargs):
        loaded.append(name)
        return pipelines.tiny_pipeline({model: tiny, "karlo": "unclip"}[name])

    monkeypatch.setattr(pipelines, "load_pipeline", fake_load)
    written = demo.run(demo.Settings(model=model, out=tmp_path, frames=4, steps=2))
    assert loaded == [model, "karlo"]
    names = {p.stem for p in written}
    assert names == {"two_prompt_walk", "multi_prompt_walk", "circular_noise_loop", "unclip_interpolation",
                     "text_diff"}
    assert all(p.is_file() and p.stat().st_size > 0 for p in written) and len(written) == 15
    assert "prior walk: skipped" in capsys.readouterr().out  # Karlo's variation checkpoint has no prior
