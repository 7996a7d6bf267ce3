"""SD 3 and FLUX.1 through the same API: tiny random components of the real classes, offline.

Independent references: the pipelines called directly (their own prompt encoding, latent preparation and
generator), diffusers' own FLUX latent packing, what the transformer receives (captured at its forward), and
rendering one frame at a time against rendering in one batch.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from helpers import encode_prompts, interpolation, lerp, make_latents, render_frames, slerp, tiny_pipeline
from helpers.embeddings import pack_latents, unpack_pooled
from helpers.pipeline_info import family, latent_shape, pipeline_info, pooled_width, text_tokens

KW = {"num_inference_steps": 3, "output_type": "np", "progress": False}


@pytest.fixture(scope="module")
def sd3():
    return tiny_pipeline("sd3")


@pytest.fixture(scope="module")
def flux():
    return tiny_pipeline("flux")


@pytest.fixture(params=["sd3", "flux"])
def pipe(request, sd3, flux):
    return {"sd3": sd3, "flux": flux}[request.param]


def test_the_families_and_their_shapes_are_read_off_the_pipelines(sd3, flux) -> None:
    assert family(sd3) == "sd3" and family(flux) == "flux"
    info = pipeline_info(flux)
    assert info.size == (32, 32) and info.latent_shape == (4, 16, 16)  # before packing: 16 channels a token / 4
    assert latent_shape(sd3) == (sd3.transformer.config.in_channels, 16, 16)
    with pytest.raises(ValueError, match="multiple of 4"):  # FLUX packs 2x2 latent cells: sides in steps of 4 px
        latent_shape(flux, height=34)


def test_flux_latents_are_packed_as_diffusers_packs_them(flux) -> None:
    from diffusers import FluxPipeline

    latents = torch.randn(3, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    reference = FluxPipeline._pack_latents(latents, 3, 4, 16, 16)
    assert torch.equal(pack_latents(flux, latents), reference)
    assert pack_latents(tiny_pipeline("text2img"), latents) is latents  # other families: unchanged


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_prompts_carry_every_conditioning_part(kind, sd3, flux) -> None:
    pipe = {"sd3": sd3, "flux": flux}[kind]
    prompts = ["a big red heart on a white background", "a cat face"]
    embeds, negative = encode_prompts(pipe, prompts, negative_prompt="blurry")
    width, tokens = pooled_width(pipe), text_tokens(pipe)
    assert embeds.shape == (2, tokens + 1, pipe.transformer.config.joint_attention_dim)
    got = (*unpack_pooled(embeds, width, tokens), *unpack_pooled(negative, width, tokens))
    if kind == "sd3":
        pe, ne, pp, npp = pipe.encode_prompt(prompts, None, None, device="cpu", negative_prompt=["blurry"] * 2)
    else:
        pe, pp, _ = pipe.encode_prompt(prompts, None, device="cpu")
        ne, npp, _ = pipe.encode_prompt(["blurry"] * 2, None, device="cpu")
    for mine, theirs in zip(got, (pe, pp, ne, npp)):
        torch.testing.assert_close(mine, theirs, atol=1e-4, rtol=1e-4)  # float rounding of the T5 pass
    assert not torch.equal(got[1][0], got[1][1])  # the pooled part differs from prompt to prompt


@pytest.mark.parametrize("kind", ["sd3", "flux"])
def test_a_seed_means_what_it_means_to_the_pipeline_itself(kind, sd3, flux) -> None:
    """render_frames from encode_prompts and a seed = the pipeline called with the prompt and a generator in that
    seed: same prompt encoding, same noise (for FLUX drawn before packing, as its prepare_latents draws it)."""
    pipe = {"sd3": sd3, "flux": flux}[kind]
    prompt, guidance = "a big cat face on a white background", 4.0
    embeds, negative = encode_prompts(pipe, [prompt])
    mine = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=7,
                         guidance_scale=guidance, **KW)
    theirs = pipe(prompt=prompt, negative_prompt="" if kind == "sd3" else None, guidance_scale=guidance,
                  generator=torch.Generator().manual_seed(7), num_inference_steps=3, output_type="np").images
    assert np.abs(mine - theirs).max() < 1e-4
    other = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=8,
                          guidance_scale=guidance, **KW)
    assert np.abs(mine - other).max() > 1e-3


def _capture_transformer_inputs(pipe, monkeypatch) -> list[dict]:
    seen: list[dict] = []
    forward = pipe.transformer.forward

    def spy(*args, **kwargs):
        seen.append({k: v.detach().clone() for k, v in kwargs.items() if isinstance(v, torch.Tensor)})
        return forward(*args, **kwargs)

    monkeypatch.setattr(pipe.transformer, "forward", spy)
    return seen


def test_a_prompt_walk_moves_the_pooled_and_the_token_embeddings_with_one_fraction(pipe, monkeypatch) -> None:
    """At λ = 0.25 of a lerp walk the transformer must receive 0.75·A + 0.25·B of the tokens *and* of the pooled
    embedding (diffusers takes them as two inputs: a walk that forgot one would hold it at an endpoint)."""
    embeds, negative = encode_prompts(pipe, ["a big red heart on a white background", "a big cat face"])
    walk = lerp(embeds[0], embeds[1], [0.0, 0.25, 1.0])
    seen = _capture_transformer_inputs(pipe, monkeypatch)
    render_frames(pipe, prompt_embeds=walk[1:2], negative_prompt_embeds=negative[:1], seed=0, batch_size=1,
                  guidance_scale=1.0, **KW)
    tokens, pooled = unpack_pooled(embeds, pooled_width(pipe), text_tokens(pipe))
    first = seen[0]
    torch.testing.assert_close(first["pooled_projections"][0], 0.75 * pooled[0] + 0.25 * pooled[1])
    torch.testing.assert_close(first["encoder_hidden_states"][0], 0.75 * tokens[0] + 0.25 * tokens[1])


def test_prompt_walks_and_noise_loops_do_not_depend_on_chunking(pipe) -> None:
    embeds, negative = encode_prompts(pipe, ["a big red heart on a white background", "a big cat face"])
    prompt_walk = slerp(embeds[0], embeds[1], np.linspace(0, 1, 5).tolist())
    loop = interpolation.circular_walk(make_latents(pipe, 1)[0], make_latents(pipe, 2)[0], 5)
    for inputs in ({"prompt_embeds": prompt_walk}, {"prompt_embeds": embeds[:1].expand(5, -1, -1), "latents": loop}):
        common = {"negative_prompt_embeds": negative[:1], "seed": 0, "guidance_scale": 3.0, **inputs, **KW}
        together = render_frames(pipe, batch_size=5, **common)
        one_by_one = render_frames(pipe, batch_size=1, **common)
        again = render_frames(pipe, batch_size=5, **common)
        assert together.shape == (5, 32, 32, 3)
        assert np.abs(together - one_by_one).max() < 1e-4
        assert np.array_equal(together, again)
        assert np.abs(together[0] - together[2]).max() > 1e-3  # the walk moves


def test_the_noise_loop_starts_at_its_seed_and_keeps_the_gaussian_norm(pipe) -> None:
    a, b = make_latents(pipe, 1)[0], make_latents(pipe, 2)[0]
    loop = interpolation.circular_walk(a, b, 6)
    norms = loop.flatten(1).norm(dim=1)
    assert torch.allclose(norms, norms[0], rtol=0.05)  # on the shell, like the endpoints
    embeds, negative = encode_prompts(pipe, ["a cat face"])
    frames = render_frames(pipe, prompt_embeds=embeds.expand(6, -1, -1), negative_prompt_embeds=negative,
                           latents=loop, guidance_scale=3.0, **KW)
    alone = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative, latents=a[None],
                          guidance_scale=3.0, **KW)
    assert np.abs(frames[0] - alone[0]).max() < 1e-4


def test_flux_negatives_act_only_through_true_cfg(flux) -> None:
    embeds, _ = encode_prompts(flux, ["a big cat face"])
    _, neg_a = encode_prompts(flux, ["a big cat face"], negative_prompt="a red heart")
    _, neg_b = encode_prompts(flux, ["a big cat face"], negative_prompt="a blue rocket")

    def frames(negative, **kwargs):
        return render_frames(flux, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=0, **KW, **kwargs)

    assert np.array_equal(frames(neg_a), frames(neg_b))  # guidance-distilled: no negative branch by default
    assert np.abs(frames(neg_a, true_cfg_scale=4.0) - frames(neg_b, true_cfg_scale=4.0)).max() > 1e-3


def test_embeddings_of_another_model_or_without_the_pooled_token_are_refused(sd3, flux) -> None:
    sd3_embeds, _ = encode_prompts(sd3, ["a cat face"])
    with pytest.raises(ValueError, match="made by another model"):
        render_frames(flux, prompt_embeds=sd3_embeds, **KW)
    flux_embeds, _ = encode_prompts(flux, ["a cat face"])
    with pytest.raises(ValueError, match="pooled embedding as their last token"):
        render_frames(flux, prompt_embeds=flux_embeds[:, :-1], **KW)


def test_walks_render_resumably_into_a_folder(pipe, tmp_path) -> None:
    from helpers.walks import render_walk

    embeds, negative = encode_prompts(pipe, ["a big red heart on a white background", "a big cat face"])
    kwargs = {"prompt_embeds": slerp(embeds[0], embeds[1], [0.0, 0.5, 1.0]), "negative_prompt_embeds": negative[:1],
              "seed": 0, "progress": False, "num_inference_steps": 2, "guidance_scale": 3.0}
    first = render_walk(pipe, tmp_path / "walk", **kwargs)
    second = render_walk(pipe, tmp_path / "walk", **kwargs)
    assert first.rendered == [0, 1, 2] and second.rendered == [] and len(second.frames) == 3


def test_a_saved_flow_pipeline_folder_loads_and_walks(sd3, tmp_path) -> None:
    from helpers.pipelines import load_pipeline

    sd3.save_pretrained(tmp_path / "sd3")
    pipe = load_pipeline(str(tmp_path / "sd3"), device="cpu", dtype=torch.float32)
    assert family(pipe) == "sd3"
    embeds, negative = encode_prompts(pipe, ["a cat face"])
    again = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=0, **KW)
    original = render_frames(sd3, prompt_embeds=embeds, negative_prompt_embeds=negative, seed=0, **KW)
    assert np.abs(again - original).max() < 1e-4


@pytest.mark.parametrize(("name", "cls", "repo"), [
    ("sd35-medium", "StableDiffusion3Pipeline", "stabilityai/stable-diffusion-3.5-medium"),
    ("flux-schnell", "FluxPipeline", "black-forest-labs/FLUX.1-schnell"),
])
def test_the_registry_names_load_through_their_own_class(name, cls, repo, monkeypatch, sd3, flux) -> None:
    import diffusers

    from helpers.models import MODELS
    from helpers.pipelines import load_pipeline, resolve_model

    seen = {}
    stand_in = sd3 if cls.startswith("StableDiffusion3") else flux

    def fake(source, **kwargs):
        seen.update(kwargs, source=source)
        return stand_in

    monkeypatch.setattr(getattr(diffusers, cls), "from_pretrained", fake)
    assert resolve_model(name) == (MODELS[name].family, repo, False)
    assert load_pipeline(name, device="cpu", dtype=torch.float32) is stand_in and seen["source"] == repo
    entry = MODELS[name]
    assert entry.licence and entry.download_gb and entry.steps and entry.size == 1024


def test_single_flow_files_go_to_diffusers_from_single_file(tmp_path, monkeypatch, flux) -> None:
    import diffusers
    from safetensors.torch import save_file

    from helpers.pipelines import load_pipeline

    path = tmp_path / "flux1-schnell.safetensors"  # keys diffusers reads as FLUX.1 schnell (no guidance input)
    save_file({"double_blocks.0.img_attn.norm.key_norm.scale": torch.zeros(4)}, str(path))
    seen = {}

    def fake(source, **kwargs):
        seen.update(kwargs, source=source)
        return flux

    monkeypatch.setattr(diffusers.FluxPipeline, "from_single_file", fake)
    assert load_pipeline(str(path), device="cpu", dtype=torch.float32) is flux and seen["source"] == str(path)


def test_the_memory_plan_for_flow_models_on_a_24_gb_card_and_a_t4() -> None:
    from helpers.models import FLOW_FOOTPRINTS, GIB
    from helpers.pipelines import memory_plan

    card_24, t4 = int(22.5 * GIB), int(14.5 * GIB)  # free once CUDA has its context
    for name, (weights, largest, frame) in FLOW_FOOTPRINTS.items():
        assert largest < weights  # T5, the CLIPs and the VAE come on top of the transformer
        for free in (card_24, t4):
            plan = memory_plan(free, "cuda", name)
            if free >= weights + 4 * frame:
                assert "model_cpu_offload" not in plan and "sequential_cpu_offload" not in plan
            elif free >= largest + frame:
                assert "model_cpu_offload" in plan
            else:
                assert "sequential_cpu_offload" in plan
    assert "model_cpu_offload" in memory_plan(t4, "cuda", "sd35-medium")  # T5-XXL (9.5 GB) fits on its own
    assert "sequential_cpu_offload" in memory_plan(card_24, "cuda", "flux-dev")  # 23.8 GB of transformer


def test_tiny_flow_backends_name_the_model_they_stand_in_for() -> None:
    from helpers.backends import choose_backend

    for model, name in (("tiny-sd3", "Stable Diffusion 3"), ("tiny-flux", "FLUX.1")):
        backend = choose_backend("tiny-random", "text2img", model=model)
        assert backend.model == model and name in backend.reason


def test_a_flux_walk_file_with_a_negative_prompt_turns_true_cfg_on(tmp_path) -> None:
    """A walk file's negative prompt must act on FLUX too: with it the frames differ from the same walk without."""
    from helpers.walks.spec import load_model, load_walk_spec, walk_inputs

    frames = {}
    for name, negative in (("plain", ""), ("negative", "negative_prompt: a blue rocket\n")):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"model: tiny-flux\nprompts: [a big red heart, a big cat face]\n{negative}frames: 3\n"
                        "steps: 2\nformats: [contact_sheet]\n")
        spec = load_walk_spec(path)
        pipe, kwargs = walk_inputs(spec, load_model(spec, device="cpu"))
        assert ("true_cfg_scale" in kwargs) == bool(negative)
        kwargs.pop("model")
        frames[name] = render_frames(pipe, output_type="np", progress=False, **kwargs)
    assert np.abs(frames["plain"] - frames["negative"]).max() > 1e-3
