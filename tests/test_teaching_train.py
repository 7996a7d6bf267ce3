"""The training entry point runs end to end (smoke) and writes folders that load as stock pipelines."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
import torch

import helpers.teaching as teaching
from helpers.teaching.train import FOLDERS, MODELS, main, train_models

pytestmark = pytest.mark.slow  # left out of `make test-fast`


def test_smoke_flow_writes_a_loadable_sd3_pipeline_that_walks(tmp_path):
    from diffusers import StableDiffusion3Pipeline

    from helpers import encode_prompts, render_frames
    from helpers.pipeline_info import family, text_tokens

    seconds = train_models("flow", out=tmp_path, smoke=True, progress=False)
    assert set(seconds) == {"flow", "wall"}  # alone, it trains on the shipped teaching autoencoder
    folder = tmp_path / FOLDERS["flow"]
    assert list(folder.rglob("*.safetensors")) and not list(folder.rglob("*.bin"))
    pipe = StableDiffusion3Pipeline.from_pretrained(folder, text_encoder_3=None)
    pipe.set_progress_bar_config(disable=True)
    assert family(pipe) == "sd3" and text_tokens(pipe) == 12 + 1  # CLIP's 12 tokens and one zero T5 token
    embeds, negative = encode_prompts(pipe, ["a big red apple", "a big cat face"])
    frames = render_frames(pipe, prompt_embeds=embeds, negative_prompt_embeds=negative[:1], num_inference_steps=2,
                           guidance_scale=2.0, output_type="np", progress=False)
    assert frames.shape == (2, 32, 32, 3) and np.isfinite(frames).all()


def test_smoke_text2img_writes_a_loadable_stable_diffusion_pipeline(tmp_path):
    from diffusers import StableDiffusionPipeline

    seconds = train_models("text2img", out=tmp_path, smoke=True, progress=False)
    assert set(seconds) == {"autoencoder", "denoiser", "wall"}  # the text-to-image model's two stages
    folder = tmp_path / FOLDERS["text2img"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [folder.name]  # no stage or temporary folders left
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


def test_a_pool_of_jobs_writes_every_model_byte_for_byte_like_one_process(tmp_path, capsys):
    assert main(["--smoke", "--out", str(tmp_path / "par"), "--no-progress", "--jobs", "2"]) == 0
    assert "in 2 job(s)" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "par").iterdir()) == sorted(FOLDERS.values())
    assert not [p for p in (tmp_path / "par").iterdir() if p.name.startswith(".")]  # stage folders removed
    train_models(None, out=tmp_path / "one", smoke=True, progress=False, jobs=1)
    # The job layout does not change a single byte (each stage seeds itself, reads only what the stages it
    # needs saved, and runs in one thread); training.json records the seconds, which do differ.
    files = {run: {p.relative_to(tmp_path / run): p.read_bytes() for p in (tmp_path / run).rglob("*")
                   if p.is_file() and p.name != "training.json"} for run in ("par", "one")}
    assert len(files["one"]) >= 30 and files["par"].keys() == files["one"].keys()  # weights, configs, tokenizers
    assert [str(k) for k in files["one"] if files["par"][k] != files["one"][k]] == []


def test_stages_run_after_what_they_need_longest_chain_first():
    from helpers.teaching.train import STAGES, _plan

    order = _plan(MODELS)
    assert sorted(order) == sorted(STAGES)
    for name in order:  # every stage after the stages it reads
        assert all(order.index(need) < order.index(name) for need in STAGES[name].needs)
    # the autoencoder → denoiser chain is the longest (463 + 1,755 s of the ≈ 4,960 s of work): it starts first;
    # CLIP → decoder (530 + 1,470 s) outlasts the denoiser alone, so CLIP is queued before the denoiser
    assert order[0] == "autoencoder"
    assert order.index("clip") < order.index("denoiser") < order.index("decoder")


def test_a_failing_stage_stops_the_pool_and_is_named(tmp_path, capsys):
    (tmp_path / FOLDERS["toy2d"]).write_text("a file where the toy model's folder goes")  # the toy stage fails
    args = ["--smoke", "--only", "toy2d", "text2img", "--out", str(tmp_path), "--no-progress", "--jobs", "2"]
    assert main(args) == 1
    assert "training stage 'toy2d' failed: FileExistsError" in capsys.readouterr().err
    # the pool was stopped while the autoencoder trained: no text-to-image model, no stage folder left
    assert [p.name for p in tmp_path.iterdir()] == [FOLDERS["toy2d"]]


def test_bad_job_count_is_a_clear_error():
    with pytest.raises(SystemExit):
        main(["--smoke", "--jobs", "0"])


def _cli(*args: str) -> subprocess.CompletedProcess:
    """``python -m helpers.teaching.train ARGS`` in a process of its own, one thread, no hub settings inherited."""
    env = {k: v for k, v in os.environ.items() if k != "HF_HUB_DISABLE_PROGRESS_BARS"} | {"OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "helpers.teaching.train", *args], capture_output=True, text=True,
                          env=env, timeout=300, check=False)


def test_the_cli_pool_exits_cleanly_without_leaked_semaphores(tmp_path):
    # The workers are closed, not killed, after a run that succeeded: a killed worker leaves its tqdm lock (a
    # named semaphore) behind, and Python's resource tracker warns about it when the command exits.
    run = _cli("--smoke", "--only", "toy2d", "--out", str(tmp_path), "--jobs", "2")
    assert run.returncode == 0, run.stderr
    assert "toy2d" in run.stdout and "leaked" not in run.stderr and "Warning" not in run.stderr
    assert (tmp_path / FOLDERS["toy2d"]).is_dir()


def test_no_progress_means_no_progress_bars(tmp_path):
    # --no-progress is for logs: not even the bar transformers draws when it saves the text encoder.
    run = _cli("--smoke", "--only", "text2img", "--out", str(tmp_path), "--no-progress", "--jobs", "2")
    assert run.returncode == 0, run.stderr
    assert (tmp_path / FOLDERS["text2img"] / "text_encoder").is_dir()
    assert "it/s]" not in run.stdout + run.stderr and "Writing model shards" not in run.stderr
