"""Pipeline loading, memory options, the offline error and the tiny pipelines (helpers.pipelines)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import helpers.teaching
from helpers.devices import make_generator
from helpers.models import GIB
from helpers.pipelines import (
    KARLO_ID,
    MEMORY_OPTIONS,
    SD15_ID,
    ModelUnavailableError,
    apply_memory_options,
    load_pipeline,
    memory_plan,
    resolve_memory_options,
    tiny_pipeline,
)


def _state(pipe) -> dict[str, torch.Tensor]:
    out = {}
    for name, component in pipe.components.items():
        if isinstance(component, torch.nn.Module):
            out.update({f"{name}.{k}": v for k, v in component.state_dict().items()})
    return out


def _same_weights(p1, p2) -> bool:
    s1, s2 = _state(p1), _state(p2)
    return s1.keys() == s2.keys() and all(torch.equal(s1[k], s2[k]) for k in s1)


# ---------------------------------------------------------------------------------------------- memory plan


@pytest.mark.parametrize(
    ("free_gib", "kind", "expected"),
    [
        (80, "text2img", []),
        (14.5, "text2img", []),  # a T4's free memory
        (6.2, "text2img", []),  # 2.1 GB of fp16 SD weights and four 1-GiB frames fit a 6-8 GB card
        (5.0, "text2img", ["vae_slicing"]),
        (2.5, "text2img", ["vae_slicing", "vae_tiling", "model_cpu_offload"]),  # weights + one frame do not fit
        (0, "text2img", ["vae_slicing", "vae_tiling", "model_cpu_offload"]),
        (14.5, "unclip", []),  # Karlo: 5.04 GiB of fp16 weights + 4 x 0.59 GiB
        (6.0, "unclip", []),  # no VAE to slice
        (5.5, "unclip", ["model_cpu_offload"]),
    ],
)
def test_memory_plan_follows_the_measured_footprints(free_gib, kind, expected):
    # Regression (issue 16, item 5): under 6 GiB, attention slicing replaced SDPA and SD 1.5 was offloaded
    # although its weights fit.
    assert memory_plan(int(free_gib * GIB), "cuda", kind) == expected
    assert "attention_slicing" not in memory_plan(int(free_gib * GIB), "cuda", kind)


@pytest.mark.parametrize("kind", ["text2img", "unclip"])
def test_memory_plan_is_monotone_in_free_memory(kind):
    sizes = [memory_plan(int(g * GIB), torch.device("cuda"), kind) for g in np.linspace(0, 40, 81)]
    for more_free, less_free in zip(sizes[1:], sizes[:-1]):
        assert set(more_free) <= set(less_free)


def test_memory_plan_other_devices():
    assert memory_plan(None, "cpu") == []
    assert memory_plan(10**12, "cpu") == []
    assert memory_plan(None, "mps") == ["attention_slicing"]
    assert memory_plan(None, "cuda") == ["vae_slicing"]
    assert memory_plan(None, "cuda", "unclip") == []
    with pytest.raises(ValueError):
        memory_plan(-1, "cuda")
    with pytest.raises(ValueError, match="kind"):
        memory_plan(10, "cuda", "flux")


def test_resolve_memory_options():
    assert resolve_memory_options("none", "cuda") == []
    assert resolve_memory_options(None, "cuda") == []
    assert resolve_memory_options("auto", "cpu") == []
    assert resolve_memory_options(["attention_slicing", "vae_slicing"], "cuda") == [
        "vae_slicing",
        "attention_slicing",
    ]
    with pytest.raises(ValueError, match="unknown memory option"):
        resolve_memory_options(["vae_slising"], "cuda")


def test_apply_memory_options_on_tiny_sd_keeps_the_output():
    pipe = tiny_pipeline("text2img")
    kwargs = dict(prompt=["a red cat", "a blue house"], num_inference_steps=2, output_type="np")
    before = pipe(**kwargs, generator=make_generator(0)).images
    applied = apply_memory_options(pipe, list(MEMORY_OPTIONS), "cpu")
    # CPU offload needs CUDA: skipped on the CPU; everything else is applied.
    assert applied == ["vae_slicing", "vae_tiling", "attention_slicing"]
    assert pipe.vae.use_slicing and pipe.vae.use_tiling
    after = pipe(**kwargs, generator=make_generator(0)).images
    np.testing.assert_allclose(after, before, atol=1e-4)


def test_apply_memory_options_skips_what_unclip_lacks():
    pipe = tiny_pipeline("unclip")
    assert apply_memory_options(pipe, ["vae_slicing", "vae_tiling"], "cpu") == []


# ------------------------------------------------------------------------------------------ loading errors


def _assert_readable(err: ModelUnavailableError, *names: str) -> None:
    text = str(err)
    for name in names:
        assert name in text
    assert "hf download" in text  # pre-download remedy
    assert 'load_pipeline("teaching")' in text  # bundled-model remedy
    assert "reachable" in text  # run-where-online remedy
    assert err.__cause__ is None and err.__context__ is None and err.__suppress_context__
    assert len(text.splitlines()) <= 8


@pytest.mark.filterwarnings("ignore:The `local_dir_use_symlinks` argument is deprecated")
@pytest.mark.parametrize(("name", "repo"), [("sd15", SD15_ID), ("karlo", KARLO_ID), (SD15_ID, SD15_ID)])
def test_offline_load_raises_one_clear_error(monkeypatch, tmp_path, name, repo):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        load_pipeline(name, device="cpu", cache_dir=tmp_path)  # an empty cache: nothing to find
    _assert_readable(info.value, repo, "HF_HUB_OFFLINE")
    assert info.value.model == name
    assert isinstance(info.value, RuntimeError)


def test_offline_unknown_hub_id(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelUnavailableError) as info:
        load_pipeline("latent-walks-tests/no-such-model", device="cpu", cache_dir=tmp_path)
    _assert_readable(info.value, "latent-walks-tests/no-such-model")


def test_network_failure_raises_one_clear_error(monkeypatch):
    """A plain network failure (as diffusers reports it: OSError chained on a connection error)."""
    import diffusers

    def unreachable(*args, **kwargs):
        try:
            raise ConnectionError("[Errno -2] Name or service not known")
        except ConnectionError as exc:
            raise OSError("Cannot load model: not cached and the hub is unreachable") from exc

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", unreachable)
    with pytest.raises(ModelUnavailableError) as info:
        load_pipeline("sd15", device="cpu")
    _assert_readable(info.value, SD15_ID, "could not be reached")
    assert "OSError" in info.value.reason


def test_other_errors_are_not_disguised(monkeypatch):
    import diffusers

    def broken(*args, **kwargs):
        raise RuntimeError("a genuine bug")

    monkeypatch.setattr(diffusers.StableDiffusionPipeline, "from_pretrained", broken)
    with pytest.raises(RuntimeError, match="a genuine bug") as info:
        load_pipeline("sd15", device="cpu")
    assert not isinstance(info.value, ModelUnavailableError)


@pytest.mark.parametrize("name", ["sd-15", "stable diffusion", "teaching_unclip"])
def test_unknown_names_list_the_valid_ones(name):
    with pytest.raises(ValueError) as info:
        load_pipeline(name, device="cpu")
    for valid in ("'sd15'", "'karlo'", "'teaching'", "'teaching-unclip'", "'teaching-unclip-text'"):
        assert valid in str(info.value)
    assert "teaching-digits" not in str(info.value)  # the retired name is not offered


def test_the_retired_digit_model_names_its_replacement():
    with pytest.raises(ValueError, match="retired") as info:
        load_pipeline("teaching-digits", device="cpu")
    assert "'teaching'" in str(info.value) and not isinstance(info.value, ModelUnavailableError)


def test_missing_folder_and_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="no model folder"):
        load_pipeline(str(tmp_path / "missing" / "model"), device="cpu")
    with pytest.raises(TypeError):
        load_pipeline(42, device="cpu")
    with pytest.raises(ValueError, match="memory option"):
        load_pipeline("sd15", device="cpu", memory=["turbo"])


def test_teaching_names_go_to_the_teaching_loader(monkeypatch):
    calls = []

    def fake(name, *, device=None, dtype=None):
        calls.append((name, device, dtype))
        return "a teaching pipeline"

    monkeypatch.setattr(helpers.teaching, "load_teaching_pipeline", fake, raising=False)
    assert load_pipeline("teaching", device="cpu") == "a teaching pipeline"
    assert load_pipeline("teaching-unclip", device="cpu", dtype=torch.float32) == "a teaching pipeline"
    assert load_pipeline("teaching-unclip-text", device="cpu") == "a teaching pipeline"
    assert calls == [
        ("teaching", torch.device("cpu"), torch.float32),
        ("teaching-unclip", torch.device("cpu"), torch.float32),
        ("teaching-unclip-text", torch.device("cpu"), torch.float32),
    ]


# -------------------------------------------------------------------------------------- local folders


def test_local_sd_folder_round_trip(tmp_path):
    pipe = tiny_pipeline("text2img", seed=3)
    pipe.save_pretrained(tmp_path / "sd")
    loaded = load_pipeline(tmp_path / "sd", device="cpu", dtype=torch.float32)  # memory="auto": none on CPU
    assert type(loaded).__name__ == "StableDiffusionPipeline"
    assert _same_weights(pipe, loaded)


def test_local_unclip_folder_round_trip(tmp_path):
    """diffusers' own from_pretrained cannot reload this pipeline; the component loader can."""
    pipe = tiny_pipeline("unclip", seed=3)
    pipe.save_pretrained(tmp_path / "unclip")
    loaded = load_pipeline(str(tmp_path / "unclip"), device="cpu", dtype=torch.float32, memory="none")
    assert type(loaded).__name__ == "UnCLIPImageVariationPipeline"
    assert _same_weights(pipe, loaded)
    assert loaded.tokenizer.get_vocab() == pipe.tokenizer.get_vocab()
    assert loaded.decoder_scheduler.config.variance_type == "learned_range"


def test_broken_local_folder_is_one_clear_error(tmp_path):
    (tmp_path / "model_index.json").write_text('{"_class_name": "StableDiffusionPipeline"}')
    with pytest.raises(ModelUnavailableError, match="Cannot load the model folder") as info:
        load_pipeline(tmp_path, device="cpu", memory="none")
    assert info.value.__cause__ is None and info.value.__context__ is None


# -------------------------------------------------------------------------------------- tiny pipelines


@pytest.mark.parametrize("kind", ["text2img", "unclip"])
def test_tiny_pipeline_is_deterministic_and_leaves_global_rng_alone(kind):
    state = torch.get_rng_state()
    a, b = tiny_pipeline(kind, seed=0), tiny_pipeline(kind, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert _same_weights(a, b)
    assert not _same_weights(a, tiny_pipeline(kind, seed=1))
    assert a.device == torch.device("cpu") and a.dtype == torch.float32


def test_tiny_pipeline_classes_and_tokenizer():
    sd = tiny_pipeline("text2img")
    assert type(sd).__name__ == "StableDiffusionPipeline"
    assert sd.safety_checker is None and sd.feature_extractor is None
    # every corpus word is one token: BOS, cat, EOS, padding
    ids = sd.tokenizer("cat").input_ids
    assert ids[0] == sd.tokenizer.bos_token_id and ids[2] == sd.tokenizer.eos_token_id and len(ids) == 3
    assert sd.text_encoder.config.vocab_size == len(sd.tokenizer)
    un = tiny_pipeline("unclip")
    assert type(un).__name__ == "UnCLIPImageVariationPipeline"
    assert un.text_encoder.config.projection_dim == un.image_encoder.config.projection_dim
    with pytest.raises(ValueError, match="text2img"):
        tiny_pipeline("flux2")


def test_tiny_pipelines_run_end_to_end():
    sd = tiny_pipeline("text2img")
    out = sd(
        prompt=["a red cat"], num_inference_steps=2, generator=make_generator(0), output_type="np"
    ).images
    assert out.shape == (1, 32, 32, 3) and np.isfinite(out).all()
    un = tiny_pipeline("unclip")
    emb = torch.randn(1, 32, generator=make_generator(0))
    out = un(
        image_embeddings=emb,
        decoder_num_inference_steps=2,
        super_res_num_inference_steps=2,
        generator=make_generator(0),
        output_type="np",
    ).images
    assert out.shape == (1, 32, 32, 3) and 0 <= out.min() <= out.max() <= 1


def test_tiny_pipeline_dtype_option():
    pipe = tiny_pipeline("text2img", dtype=torch.bfloat16)
    assert pipe.unet.dtype == torch.bfloat16 and pipe.text_encoder.dtype == torch.bfloat16
