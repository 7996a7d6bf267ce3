"""choose_backend: the four backend names, the auto fallback and its reasons, per-backend settings."""

from __future__ import annotations

import pytest
import torch

from helpers import backends
from helpers.backends import Backend, choose_backend, ddim_invert, library_versions


@pytest.fixture(scope="module")
def tiny_text() -> Backend:
    return choose_backend("tiny-random", "text2img")


@pytest.fixture(scope="module")
def tiny_unclip() -> Backend:
    return choose_backend("tiny-random", "unclip")


@pytest.mark.parametrize("name", ["Auto", "gpu", "", None, 3])
def test_unknown_backend_names_are_refused(name) -> None:
    with pytest.raises(ValueError, match="tiny-random"):
        choose_backend(name)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ValueError, match="unclip"):
        choose_backend("tiny-random", "video")


def test_tiny_random_runs_the_real_pipeline_classes(tiny_text, tiny_unclip) -> None:
    from diffusers import StableDiffusionPipeline
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline

    assert isinstance(tiny_text.pipe, StableDiffusionPipeline)
    assert isinstance(tiny_unclip.pipe, UnCLIPImageVariationPipeline)
    for b in (tiny_text, tiny_unclip):
        assert b.name == "tiny-random" and b.device == torch.device("cpu") and b.dtype == torch.float32
        assert b.reason.endswith(".") and "StableDiffusion" in b.reason or "UnCLIP" in b.reason
        assert len(b.prompts) >= 4 and len(set(b.prompts)) == len(b.prompts)


def test_render_kwargs_match_the_pipeline_signatures(tiny_text, tiny_unclip) -> None:
    import inspect

    for b in (tiny_text, tiny_unclip):
        params = inspect.signature(b.pipe.__call__).parameters
        kwargs = b.render_kwargs()
        assert set(kwargs) <= set(params), set(kwargs) - set(params)
    assert tiny_text.render_kwargs(steps=7, guidance_scale=1.0)["num_inference_steps"] == 7
    assert tiny_text.render_kwargs(guidance_scale=1.0)["guidance_scale"] == 1.0
    assert tiny_unclip.render_kwargs(steps=5)["decoder_num_inference_steps"] == 5
    with pytest.raises(ValueError, match="steps"):
        tiny_text.render_kwargs(steps=0)


def test_tiny_prompts_use_only_known_tokens(tiny_text) -> None:
    tok = tiny_text.pipe.tokenizer
    vocab = tok.get_vocab()
    for prompt in tiny_text.prompts:
        assert all(f"{word}</w>" in vocab for word in prompt.split()), prompt


def test_example_images_are_distinct_scenes(tiny_unclip) -> None:
    images = tiny_unclip.example_images(3)
    assert len(images) == 3 and all(im.size == (32, 32) and im.mode == "RGB" for im in images)
    arrays = [torch.tensor(list(im.getdata()), dtype=torch.float32) for im in images]
    assert all((arrays[i] - arrays[j]).abs().mean() > 5 for i in range(3) for j in range(i))


def test_auto_without_cuda_picks_the_teaching_model_and_says_why(monkeypatch, tiny_text) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    loaded = []

    def fake_teaching(kind, device, dtype):
        loaded.append(kind)
        return tiny_text.pipe, torch.device("cpu"), torch.float32

    monkeypatch.setattr(backends, "_load_teaching", fake_teaching)
    monkeypatch.setattr(backends, "_load_real", lambda *a: pytest.fail("must not try the real model without a GPU"))
    b = choose_backend("auto", "text2img")
    assert b.name == "teaching" and loaded == ["text2img"]
    assert "No CUDA GPU" in b.reason and "'teaching'" in b.reason and "emoji scenes" in b.reason


def test_auto_with_cuda_but_no_weights_falls_back(monkeypatch, tiny_text) -> None:
    from helpers.pipelines import ModelUnavailableError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def no_weights(kind, device, dtype, model):
        raise ModelUnavailableError("offline", model="sd15", reason="OSError: not in the cache")

    monkeypatch.setattr(backends, "_load_real", no_weights)
    monkeypatch.setattr(backends, "_load_teaching",
                        lambda kind, device, dtype: (tiny_text.pipe, torch.device("cpu"), torch.float32))
    b = choose_backend("auto", "unclip")
    assert b.name == "teaching" and b.model == "teaching-unclip"
    assert "CUDA GPU is here" in b.reason and "not in the cache" in b.reason


@pytest.mark.parametrize("failure", [
    ValueError("You are trying to load model files of the `variant=fp16`, but no such modeling files are available."),
    ModuleNotFoundError("No module named 'diffusers.pipelines.deprecated'"),
    TypeError("CLIPVisionModelWithProjection.__init__() got an unexpected keyword argument 'dtype'"),
])
def test_auto_falls_back_whatever_stops_the_real_model(monkeypatch, tiny_text, failure) -> None:
    # Regression (issue 16, item 4): only "weights unavailable" fell back; other load errors crashed the notebook.
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)

    def broken(kind, device, dtype, model):
        raise failure

    monkeypatch.setattr(backends, "_load_real", broken)
    monkeypatch.setattr(backends, "_load_teaching",
                        lambda kind, device, dtype: (tiny_text.pipe, torch.device("cpu"), torch.float32))
    b = choose_backend("auto", "text2img")
    assert b.name == "teaching" and "could not be loaded" in b.reason
    assert type(failure).__name__ in b.reason and "\n" not in b.reason.split(" runs instead")[0]


def test_auto_with_cuda_and_weights_runs_the_real_model(monkeypatch, tiny_text) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(backends, "_load_real",
                        lambda kind, device, dtype, model: (tiny_text.pipe, torch.device("cuda"), torch.float16))
    b = choose_backend("auto", "text2img")
    assert b.name == "real" and b.model == "sd15" and b.height == 512 and b.guidance_scale > 1
    assert "Fake GPU" in b.reason


def test_real_without_weights_raises_one_clear_error(monkeypatch) -> None:
    from helpers.pipelines import ModelUnavailableError

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", "/nonexistent-hf-home")
    with pytest.raises(ModelUnavailableError, match="teaching"):
        choose_backend("real", "text2img", device="cpu")


def _clean_latents(pipe, images, size):
    import numpy as np

    pixels = [np.asarray(im.convert("RGB").resize((size, size)), np.float32) / 127.5 - 1 for im in images]
    x = torch.from_numpy(np.stack(pixels)).permute(0, 3, 1, 2)
    with torch.no_grad():
        return pipe.vae.encode(x).latent_dist.mean * pipe.vae.config.scaling_factor


def test_ddim_inversion_with_a_zero_noise_model_is_exactly_undone(tiny_text, monkeypatch) -> None:
    """Independent fact: if the model predicts zero noise, a DDIM step only rescales the latent by
    sqrt(ᾱ_next / ᾱ_now), so inverting and then sampling with the same steps is the identity, and the
    inverted latent is the clean one times sqrt(ᾱ_T / ᾱ_start)."""
    from diffusers.models.unets.unet_2d_condition import UNet2DConditionOutput

    pipe = tiny_text.pipe

    def zero_noise(sample, *args, return_dict=True, **kwargs):
        out = torch.zeros_like(sample)
        return UNet2DConditionOutput(sample=out) if return_dict else (out,)

    monkeypatch.setattr(pipe.unet, "forward", zero_noise)
    images = tiny_text.example_images(2)
    steps = 10
    inverted = ddim_invert(pipe, images, num_inference_steps=steps, height=32, width=32)
    clean = _clean_latents(pipe, images, 32)
    empty = pipe.encode_prompt([""] * 2, "cpu", 1, False)[0]
    out = pipe(prompt_embeds=empty, latents=inverted, num_inference_steps=steps, guidance_scale=1.0,
               output_type="latent").images
    torch.testing.assert_close(out, clean, rtol=1e-4, atol=1e-5)
    ac = pipe.scheduler.alphas_cumprod
    pipe.scheduler.set_timesteps(steps)
    ratio = (ac[pipe.scheduler.timesteps[0]] / ac[0]).sqrt()
    torch.testing.assert_close(inverted, clean * ratio, rtol=1e-4, atol=1e-5)


def test_ddim_inversion_reconstructs_scenes_with_the_teaching_model() -> None:
    teaching = choose_backend("teaching", "text2img", device="cpu")  # shipped weights: missing ones fail
    images = teaching.example_images(2)
    inverted = teaching.invert(images)
    empty = teaching.pipe.encode_prompt([""] * 2, "cpu", 1, False)[0]
    out = teaching.pipe(prompt_embeds=empty, latents=inverted.to(teaching.pipe.unet.dtype), guidance_scale=1.0,
                        num_inference_steps=teaching.steps, output_type="latent").images
    clean = _clean_latents(teaching.pipe, images, teaching.height)
    assert float((out - clean).norm() / clean.norm()) < 0.5


def test_ddim_invert_needs_a_vae_pipeline(tiny_unclip) -> None:
    with pytest.raises(TypeError, match="VAE"):
        ddim_invert(tiny_unclip.pipe, tiny_unclip.example_images(1))
    with pytest.raises(ValueError, match="text-to-image"):
        tiny_unclip.invert(tiny_unclip.example_images(1))


def test_library_versions_lists_the_stack() -> None:
    v = library_versions()
    import diffusers

    assert v["torch"].startswith(torch.__version__.split("+")[0]) and v["diffusers"] == diffusers.__version__
    assert "python" in v and "cuda" in v


def test_example_images_by_name_are_those_objects_big_on_white(tiny_unclip) -> None:
    from helpers.teaching import judge
    from helpers.teaching.scenes import BACKGROUND_NAMES

    images = tiny_unclip.example_images(objects=("red apple", "green apple", "red apple"))
    assert len(images) == 3 and all(im.size == (32, 32) and im.mode == "RGB" for im in images)
    assert images[0].tobytes() != images[2].tobytes()  # two red apples, drawn at two positions
    assert [BACKGROUND_NAMES[i] for i in judge.background_of(images)] == ["white"] * 3
    assert (judge.object_extent(images) >= 18).all()  # big (24 px glyphs), not small (14 px)
    red, green, red_again = judge.foreground_colour(images)
    assert red[0] > red[1] and green[1] > green[0] and red_again[0] > red_again[1]
    with pytest.raises(ValueError, match="green apple"):  # an unknown name lists the valid ones
        tiny_unclip.example_images(objects=("purple apple",))
    with pytest.raises(ValueError, match="list of object names"):
        tiny_unclip.example_images(objects="red apple")


def test_a_chosen_real_model_brings_its_model_cards_settings(monkeypatch, tiny_text) -> None:
    seen = []

    def fake(kind, device, dtype, model):
        seen.append(model)
        return tiny_text.pipe, torch.device("cuda"), torch.float16

    monkeypatch.setattr(torch.cuda, "get_device_name", lambda *a: "Fake GPU")
    monkeypatch.setattr(backends, "_load_real", fake)
    turbo = choose_backend("real", "text2img", model="sdxl-turbo")
    assert seen == ["sdxl-turbo"] and turbo.model == "sdxl-turbo" and "SDXL-Turbo" in turbo.reason
    assert (turbo.height, turbo.steps, turbo.guidance_scale) == (512, 4, 0.0)  # the registry's card values
    folder = choose_backend("real", "text2img", model="/somewhere/my-finetune")
    # not in the registry: the pipeline's own native size (the tiny one's 32 px) and the usual 25 steps
    assert folder.height == 32 and folder.steps == 25 and "'/somewhere/my-finetune'" in folder.reason
