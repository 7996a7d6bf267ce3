"""The training entry point runs end to end (smoke) and writes folders that load as stock pipelines."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import helpers.teaching as teaching
from helpers.teaching.train import FOLDERS, main, train_models

pytestmark = pytest.mark.slow  # left out of `make test-fast`


def test_smoke_text2img_writes_a_loadable_stable_diffusion_pipeline(tmp_path):
    from diffusers import StableDiffusionPipeline

    times = train_models("text2img", out=tmp_path, smoke=True, progress=False)
    assert set(times) == {"text2img"}
    folder = tmp_path / FOLDERS["text2img"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no temporary folders left behind
    for sub in ("vae", "text_encoder", "tokenizer", "unet", "scheduler"):
        assert (folder / sub).is_dir()
    assert list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))
    pipe = StableDiffusionPipeline.from_pretrained(folder, safety_checker=None, requires_safety_checker=False)
    pipe.set_progress_bar_config(disable=True)
    out = pipe("a big red apple", num_inference_steps=2, guidance_scale=2.0, output_type="np",
               generator=torch.Generator().manual_seed(0)).images
    assert out.shape == (1, 32, 32, 3) and np.isfinite(out).all()


def test_smoke_toy2d_writes_a_loadable_model(tmp_path):
    from helpers.teaching.toy2d import load_toy, sample_toy

    main(["--smoke", "--only", "toy2d", "--out", str(tmp_path), "--no-progress"])
    model, scheduler = load_toy(tmp_path / FOLDERS["toy2d"])
    x = sample_toy(model, scheduler, 8, generator=torch.Generator().manual_seed(0), scheduler_kind="ddim",
                   num_inference_steps=5)
    assert x.shape == (8, 2) and torch.isfinite(x).all()


def test_smoke_retraining_is_reproducible(tmp_path):
    from safetensors.torch import load_file

    for run in ("a", "b"):
        train_models("text2img", out=tmp_path / run, smoke=True, progress=False)
    name = "unet/diffusion_pytorch_model.safetensors"
    a = load_file(tmp_path / "a" / FOLDERS["text2img"] / name)
    b = load_file(tmp_path / "b" / FOLDERS["text2img"] / name)
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    # the same bytes, configs included (diffusers writes a set into them; the training sorts it)
    files = {run: {p.relative_to(tmp_path / run): p.read_bytes() for p in (tmp_path / run).rglob("*") if p.is_file()}
             for run in ("a", "b")}
    assert files["a"].keys() == files["b"].keys() and all(files["a"][k] == files["b"][k] for k in files["a"])


def test_bad_arguments_are_clear_errors():
    with pytest.raises(ValueError, match="--only"):
        train_models("cats", smoke=True)
    with pytest.raises(SystemExit):
        main(["--only", "cats"])


def test_missing_shipped_weights_say_how_to_make_them(tmp_path, monkeypatch):
    monkeypatch.setattr(teaching, "WEIGHTS_DIR", tmp_path)
    with pytest.raises(teaching.TeachingWeightsMissingError, match="make teaching-models"):
        teaching.load_teaching_pipeline("teaching")


def test_parallel_jobs_write_every_model_like_one_process(tmp_path, capsys):
    from safetensors.torch import load_file

    assert main(["--smoke", "--out", str(tmp_path / "par"), "--no-progress", "--jobs", "2"]) == 0
    assert "2 parallel jobs" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "par").iterdir()) == sorted(FOLDERS.values())
    assert not [p for p in (tmp_path / "par").iterdir() if p.name.startswith(".")]  # staging folder removed
    train_models(["text2img", "unclip"], out=tmp_path / "one", smoke=True, progress=False, threads=1)
    # The job layout does not change what a model learns (same seed, same data, one thread each), including
    # unCLIP's super-res stage, which the parallel run trains in the other process.
    for folder, name in (("text2img", "unet/diffusion_pytorch_model.safetensors"),
                         ("unclip", "super_res_first/diffusion_pytorch_model.safetensors"),
                         ("unclip", "decoder/diffusion_pytorch_model.safetensors")):
        a = load_file(tmp_path / "par" / FOLDERS[folder] / name)
        b = load_file(tmp_path / "one" / FOLDERS[folder] / name)
        assert a.keys() == b.keys() and all(torch.allclose(a[k], b[k], atol=1e-6) for k in a), name


def test_bad_job_count_is_a_clear_error():
    with pytest.raises(SystemExit):
        main(["--smoke", "--jobs", "0"])
