"""Smoke test of `make bench` (benchmarks/bench.py): tiny settings, the report's structure. No timings checked."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/ is not installed with helpers
from benchmarks import bench  # noqa: E402


def test_bench_writes_a_side_by_side_report(tmp_path):
    out = tmp_path / "RESULTS.md"
    path, rows, skipped = bench.run(out, frames=3, steps=1, tiny=("text2img",), teaching=False, cuda=False,
                                    command="python -m benchmarks.bench --smoke")
    assert path == out and not list(tmp_path.glob(".*part*"))  # written atomically
    text = out.read_text()
    for heading in ("# Rendering benchmark", "## Results", "## Skipped", "## What is measured"):
        assert heading in text
    assert "- Command: `python -m benchmarks.bench --smoke`" in text
    assert re.search(r"- Date: \d{4}-\d\d-\d\d \d\d:\d\d UTC", text)
    assert "torch " + torch.__version__ in text and "diffusers" in text
    table = [line for line in text.splitlines() if line.startswith("| tiny-sd")]
    assert len(table) == 2
    a, b = (line.strip("|").split("|") for line in table)
    assert "A helpers" in a[1] and "B one call" in b[1]
    assert a[2].strip() == b[2].strip() == "3"  # same walk, same frames
    assert re.fullmatch(r"\d+\.\d\dx", a[6].strip())  # the A/B ratio
    assert re.fullmatch(r"\d+ MiB", a[7].strip())
    # same pipeline, embeddings and latents, deterministic DDIM: A and B render the same pictures
    diff = float(re.search(r"max pixel difference A vs B: ([\d.]+)", a[9]).group(1))
    assert diff <= 2 / 255 + 1e-3
    assert [r.approach[0] for r in rows] == ["A", "B"] and rows[0].frames == 3
    reason = dict(skipped)["sd15 (CUDA)"]  # cuda=False: turned off where there is a GPU, absent where not
    assert reason == ("turned off (--no-cuda)" if torch.cuda.is_available() else "no CUDA GPU in this run")
    assert f"**sd15 (CUDA)**: {reason}" in text



def test_physical_limit_arithmetic():
    assert bench.tflop_per_frame(25) == pytest.approx(42.73)  # 25 x 1.61 + 2.48, the field notes' figure
    assert bench.gpu_peak_tflops("NVIDIA H100 80GB HBM3") == 989.0
    assert bench.gpu_peak_tflops("NVIDIA H100 PCIe") == 756.0
    assert bench.gpu_peak_tflops("Tesla T4") == 65.0
    assert bench.gpu_peak_tflops("NVIDIA A100-SXM4-40GB") == 312.0
    assert bench.gpu_peak_tflops("Some Future GPU") is None


def test_sd15_configs_have_the_published_parameter_counts():
    """Built on the meta device (no memory, no weights): SD 1.5's components have 859.5M, 83.7M, 123.1M."""
    from diffusers import AutoencoderKL, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    cfg = bench.sd15_configs()
    with torch.device("meta"):
        unet = UNet2DConditionModel(**cfg["unet"])
        vae = AutoencoderKL(**cfg["vae"])
        text = CLIPTextModel(CLIPTextConfig(**cfg["text_encoder"]))
    counts = [sum(p.numel() for p in m.parameters()) for m in (unet, vae, text)]
    assert counts == [859_520_964, 83_653_863, 123_060_480]


def test_the_gpu_code_path_rehearses_on_the_cpu():
    """sd15_rows with a tiny pipeline on the CPU: A vs B run; the CUDA-only rows say they were skipped."""
    from helpers.pipelines import tiny_pipeline

    rows = bench.sd15_rows(2, 1, device="cpu", dtype=torch.float32, size=32,
                           build=lambda device, dtype: tiny_pipeline("text2img", device=device, dtype=dtype))
    assert [r.approach for r in rows] == [
        "A helpers.render_frames", "B one call per frame", "A + torch.compile + channels_last",
        "A under a 16 GiB cap", "A under a 6 GiB cap",
    ]  # fmt: skip
    assert rows[0].frames == rows[1].frames == 2 and rows[0].ratio > 0 and rows[0].physical is None
    diff = float(rows[0].note.rsplit(":", 1)[1])
    assert diff <= 2 / 255 + 1e-3  # same pictures both ways
    assert all(r.note.startswith("skipped") and r.frames == 0 for r in rows[2:])


def test_the_teaching_case_walks_between_two_scene_captions(monkeypatch):
    """The CPU teaching row renders the teaching model between two captions of its own world (not run here)."""
    import helpers.embeddings as embeddings
    from helpers.teaching.scenes import all_captions

    asked = []
    real = embeddings.encode_prompts

    def spy(pipe, prompts, *args, **kwargs):
        asked.append(list(prompts))
        return real(pipe, prompts, *args, **kwargs)

    monkeypatch.setattr(embeddings, "encode_prompts", spy)
    case, why = bench.teaching_case(frames=3, steps=1)
    assert case is not None, why
    assert case.name == "teaching" and case.describe.startswith("teaching StableDiffusionPipeline, 32x32, 1 steps")
    (prompts,) = asked
    assert len(set(prompts)) == 2 and set(prompts) <= set(all_captions())
    assert case.inputs["prompt_embeds"].shape[0] == 3


def test_the_teaching_case_is_skipped_with_its_reason_without_weights(tmp_path, monkeypatch):
    import helpers.teaching as teaching

    monkeypatch.setattr(teaching, "WEIGHTS_DIR", tmp_path)
    case, why = bench.teaching_case(frames=3, steps=1)
    assert case is None and "make teaching-models" in why


def test_morph_bench_writes_every_method_and_the_verdict(tmp_path):
    from benchmarks import morph as morph_bench

    out = tmp_path / "MORPH.md"
    path, results = morph_bench.run(out, model="tiny-random", frames=3, coarse=3, budget=6,
                                    pairs=morph_bench.PAIRS[:2], command="python -m benchmarks.morph --smoke")
    text = path.read_text()
    assert "- Command: `python -m benchmarks.morph --smoke`" in text and "torch " + torch.__version__ in text
    names = [m.name for m in morph_bench.methods(3, 3, 6)]
    assert list(results) == names and all(len(rows) == 2 for rows in results.values())
    for name in names:
        assert re.search(rf"^\| {re.escape(name)} \|", text, flags=re.M)
    assert re.search(r"Met on [0-2] of 2 pairs\.", text)
    # the same inversion feeds every method, and every morph except the img2img chain starts at the first input
    # and ends at the second, so their endpoint errors agree
    ends = [rows[0]["endpoint"] for name, rows in results.items() if "img2img" not in name]
    assert max(ends) - min(ends) < 1e-5


def test_timeline_bench_renders_both_walks_and_reports_their_memory(tmp_path):
    """`make bench`'s walk timed to music, at 80 and 8 frames: the table and the sound track's length."""
    from benchmarks import timeline

    out = tmp_path / "TIMELINE.md"
    assert timeline.main(["--frames", "80", "--threads", "1", "--out", str(out)]) == 0
    text = out.read_text()
    rows = [line for line in text.splitlines() if re.match(r"\| \d+ \|", line)]
    assert [row.split("|")[1].strip() for row in rows] == ["8", "80"]
    video, sound = map(float, re.findall(r"([\d.]+) s / ([\d.]+) s \|", rows[1])[0])
    assert abs(video - 80 / 12) <= 1 / 12 and abs(sound - video) <= 1 / 12  # 80 frames at 12 fps, with sound
    assert re.search(r"\*\*\d+\.\d\dx\*\* for 10x the frames", text)


def test_flow_bench_times_both_teaching_models_side_by_side(tmp_path):
    """`make bench`'s live section at tiny settings: both models at both batches, the ratio column, the live goal
    and where the frames' time goes. No timings checked, only the report's arithmetic."""
    from benchmarks import flow as flow_bench

    out = tmp_path / "FLOW.md"
    settings = (flow_bench.Setting("DDPM, 2 steps", "text2img", 2, 5.0),
                flow_bench.Setting("flow, 2 steps", "flow", 2, 3.0))
    path, entries, extras, direct = flow_bench.run(out, settings=settings, batches=(1, 2), repeats=1, threads=0,
                                                   variants=((2, 3.0), (2, 1.0)),
                                                   command="python -m benchmarks.flow --smoke")
    text = path.read_text()
    assert path == out and not list(tmp_path.glob(".*part*"))
    assert "- Command: `python -m benchmarks.flow --smoke`" in text and "torch " + torch.__version__ in text
    table = {tuple(line.split(" | ")[:2]): [float(c) for c in line.strip(" |").split(" | ")[2:]]
             for line in text.splitlines() if re.fullmatch(r"\| \d+ \| (wall|cpu)( \| [\d.]+){3} \|", line)}
    assert sorted(table) == [("| 1", "cpu"), ("| 1", "wall"), ("| 2", "cpu"), ("| 2", "wall")]
    for ddpm, fl, ratio in table.values():
        assert ratio == pytest.approx(fl / ddpm, abs=0.006 + 0.06 * fl / ddpm)  # of the printed, rounded figures
    goal = re.search(r"\*\*Live goal \(≤ 33 ms a frame at batch 1, one thread\): (met|not met) in CPU time, "
                     r"(met|not met) by the wall clock\*\*", text)
    assert goal and goal.groups() == tuple("met" if table[("| 1", clock)][1] <= 33 else "not met"
                                           for clock in ("cpu", "wall"))
    # each call's parts: the network ran once a step (two steps), the VAE once a call, both inside the call
    for e in entries:
        assert e.network_name == ("transformer" if e.setting.kind == "flow" else "UNet")
        for calls in e.times.values():
            for i in (0, 1):  # wall clock, CPU time
                assert all(0 < c["network"][i] and 0 < c["decode"][i] < c["whole"][i] - c["network"][i] for c in calls)
    split = [line for line in text.splitlines() if re.match(r"\| (DDPM|flow), 2 steps \| \d \|", line)]
    assert len(split) == 4 and "| UNet " in split[0] and "| transformer " in split[-1]
    assert set(extras) == {"one_eval", "one_eval_pair", "decode", "text"}
    assert all(set(v) == {"wall", "cpu"} for v in extras.values())
    assert [(r["steps"], r["evaluations"]) for r in direct] == [(2, 4), (2, 2)]
    # the card's evaluations table: 2 steps measured 24.5% object accuracy at guidance 3, 45.3% without
    assert [r["accuracy"] for r in direct] == [pytest.approx(0.2448), pytest.approx(0.4531)]
    assert "| 2 | 3 | 4 | 24.5% |" in text and "| 2 | 1 | 2 | 45.3% |" in text
    assert entries[1].pipe.vae.decode.__func__ is type(entries[1].pipe.vae).decode  # the timer put it back


def test_flow_bench_accuracies_are_the_model_readme_figures():
    """The settings `make bench` compares carry the accuracies of helpers/teaching/README.md's table."""
    from benchmarks import flow as flow_bench

    card = flow_bench.flow_card()
    assert flow_bench.object_accuracy("flow", 5, 3.0, card) == pytest.approx(0.901, abs=5e-4)
    assert flow_bench.object_accuracy("flow", 4, 3.0, card) == pytest.approx(0.870, abs=5e-4)
    assert flow_bench.object_accuracy("text2img", 5, 5.0) == pytest.approx(0.885)
    assert flow_bench.object_accuracy("text2img", 20, 5.0) == pytest.approx(0.964)
    assert flow_bench.object_accuracy("text2img", 3, 5.0) is None
    assert [flow_bench.evaluations(5, 3.0), flow_bench.evaluations(5, 1.0), flow_bench.evaluations(20, 5.0)] == [10, 5, 40]


def test_the_flow_gpu_walks_rehearse_on_the_cpu():
    """benchmarks.gpu's SD 3.5 medium and FLUX.1 walks with tiny components on the CPU: the same build, memory
    plan and render_frames path; the 24 GiB cap row needs CUDA and is left out."""
    from benchmarks import gpu
    from benchmarks.fullsize import SMOKE_CONFIGS

    for model, configs in SMOKE_CONFIGS.items():
        rows = gpu._flow_walk(model, 3, 2, device="cpu", dtype=torch.float32, configs=configs, size=16)
        (row,) = rows
        assert row["frames"] == 3 and row["size"] == "16x16" and row["options"] == "none"
        assert row["steps"].startswith("2, guidance ") and row["s_per_frame"] > 0
        assert row["model"].startswith(("Stable Diffusion 3.5 Medium", "FLUX.1 [schnell]"))


def test_the_gpu_check_refuses_bad_arguments_and_exits_2_without_cuda(monkeypatch, capsys):
    from benchmarks import gpu

    with pytest.raises(SystemExit):
        gpu.main(["--models", "sd35,sdxxl"])
    assert "--models takes names from sdxl, karlo, sd35, flux" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        gpu.main(["--frames", "1"])
    assert gpu._models("flux,sd35") == ["sd35", "flux"]  # always in the order they run
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert gpu.main(["--models", "flux"]) == 2
    assert "no CUDA GPU" in capsys.readouterr().err
