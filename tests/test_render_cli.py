"""`python -m helpers.walks WALK.yaml`: walk-file validation, an end-to-end render, and two processes."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from helpers.walks import read_manifest
from helpers.walks.spec import WalkSpecError, load_walk_spec, main, parse_walk_spec

ROOT = Path(__file__).resolve().parents[1]
TINY = """\
model: tiny-sd
prompts: [a photo of a red house, a watercolor painting of a blue boat, a sketch of a cat]
seeds: [0, 1]
frames: 5
steps: 2
guidance: 3.0
closed: true
batch_size: 2
fps: 8
"""


def _spec(**changes):
    data = {"model": "tiny-sd", "prompts": ["a red cat", "a blue house"], "frames": 4}
    data.update(changes)
    return parse_walk_spec({k: v for k, v in data.items() if v is not None})


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"promts": ["a", "b"]}, r"unknown key\(s\) 'promts' \(did you mean 'prompts'\?\)"),
        ({"prompts": None}, "missing 'prompts:'"),
        ({"prompts": ["only one"]}, "at least 2 prompts"),
        ({"prompts": "a cat"}, "at least 2 prompts"),
        ({"prompts": ["a", 3]}, "list of non-empty strings"),
        ({"frames": 1}, "frames must be a whole number from 2 to 100000"),
        ({"frames": "ten"}, r"frames must be a whole number from 2 to 100000, got 'ten' \(str\)"),
        ({"prompts": ["a", "b", "c"], "frames": 2}, "frames is 2 but there are 3 prompts"),
        ({"frames": None}, "missing 'frames:'"),
        ({"model": None}, "missing 'model:'"),
        ({"images": ["a.png", "b.png"]}, "text-to-image model: use prompts:"),
        ({"steps": 0}, "steps must be a whole number from 1 to 1000"),
        ({"guidance": "high"}, "guidance must be a number"),
        ({"size": 30}, "size must be a multiple of 8"),
        ({"method": "cubic"}, "method must be one of slerp, lerp"),
        ({"closed": "yes"}, "closed must be true or false"),
        ({"formats": ["gif", "avi"]}, r"unknown format\(s\) \['avi'\]"),
        ({"fps": 0}, "fps must be a number from 0.5 to 120"),
        ({"seeds": [1, -2]}, "seeds must be a whole number from 0"),
        ({"batch_size": 0}, "batch_size must be a whole number from 1"),
    ],
)
def test_walk_file_errors_name_the_key(changes, message):
    with pytest.raises(WalkSpecError, match=message):
        _spec(**changes)


def test_walk_file_defaults_and_unclip_rules(tmp_path):
    spec = _spec(size=[64, 48], batch_size="auto", seeds=3)
    assert spec.size == (64, 48) and spec.batch_size is None and spec.seeds == [3]
    assert spec.formats == ["gif", "mp4", "contact_sheet"] and spec.method == "slerp" and not spec.closed
    unclip = parse_walk_spec({"model": "tiny-unclip", "images": ["a.png", "scene:red  apple"], "frames": 3},
                             base_dir=tmp_path)
    assert unclip.kind == "unclip" and unclip.images == [str(tmp_path / "a.png"), "scene:red apple"]
    with pytest.raises(WalkSpecError, match="unCLIP model: give images"):
        parse_walk_spec({"model": "tiny-unclip", "frames": 3})
    with pytest.raises(WalkSpecError, match="not prompts"):
        parse_walk_spec({"model": "karlo", "prompts": ["a", "b"], "frames": 3})
    (tmp_path / "bad.yaml").write_text("model: [unclosed")
    with pytest.raises(WalkSpecError, match="not valid YAML"):
        load_walk_spec(tmp_path / "bad.yaml")
    (tmp_path / "w.yaml").write_text(TINY)
    assert load_walk_spec(tmp_path / "w.yaml").out == tmp_path / "w"


def test_cli_renders_frames_gif_mp4_and_resumes(tmp_path, capsys):
    walk = tmp_path / "walk.yaml"
    walk.write_text(TINY)
    assert main([str(walk), "--no-progress"]) == 0
    out = tmp_path / "walk"
    frames = sorted(out.glob("frame_*.png"))
    assert len(frames) == 5 and Image.open(frames[0]).size == (32, 32)
    with Image.open(out / "walk.gif") as gif:
        assert gif.n_frames == 5
    import imageio.v3 as iio

    video = iio.imread(out / "walk.mp4")
    assert video.shape == (5, 32, 32, 3)
    # the MP4 shows the PNG frames in order (lossy yuv420 on noise pictures: nearest, not equal)
    pngs = [np.asarray(Image.open(f), dtype=float) for f in frames]
    for k in range(5):
        assert np.argmin([np.abs(video[k].astype(float) - p).mean() for p in pngs]) == k
    assert (out / "contact_sheet.png").exists()
    assert "rendered 5 frame(s), 0 already done" in capsys.readouterr().out

    assert main([str(walk), "--no-progress"]) == 0  # again: nothing left to render
    assert "rendered 0 frame(s), 5 already done" in capsys.readouterr().out

    walk.write_text(TINY.replace("guidance: 3.0", "guidance: 4.0"))
    assert main([str(walk), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "guidance_scale: 3.0 in the folder, 4.0 now" in err and "--overwrite" in err
    assert main([str(walk), "--no-progress", "--overwrite"]) == 0
    assert read_manifest(out)["parameters"]["pipe_kwargs"]["guidance_scale"] == 4.0

    (tmp_path / "typo.yaml").write_text(TINY.replace("frames:", "frame:"))
    assert main([str(tmp_path / "typo.yaml")]) == 2
    assert "did you mean 'frames'" in capsys.readouterr().err


def test_cli_unavailable_model_is_one_clear_message(tmp_path, capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    walk = tmp_path / "w.yaml"
    walk.write_text(TINY.replace("model: tiny-sd", "model: nobody/no-such-model"))
    assert main([str(walk), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: Cannot load model") and "Traceback" not in err
    assert not (tmp_path / "w").exists()


def test_cli_unclip_walk_from_example_scenes(tmp_path, monkeypatch):
    from helpers.backends import Backend

    asked = []
    real = Backend.example_images

    def spy(self, n=2, *, seed=0, objects=None):
        asked.append(list(objects))
        return real(self, n, seed=seed, objects=objects)

    monkeypatch.setattr(Backend, "example_images", spy)
    walk = tmp_path / "scenes.yaml"  # unquoted in a YAML flow list works too
    walk.write_text("model: tiny-unclip\nimages: [scene:red apple, scene:fox face]\nframes: 3\nsteps: 2\n"
                    "formats: [gif]\n")
    assert main([str(walk), "--no-progress", "--out", str(tmp_path / "o")]) == 0
    assert asked == [["red apple"], ["fox face"]]
    assert len(list((tmp_path / "o").glob("frame_*.png"))) == 3 and (tmp_path / "o" / "walk.gif").exists()
    assert not (tmp_path / "o" / "walk.mp4").exists()


@pytest.mark.parametrize("item", ["scene:purple apple", "scene:", "scene:3"])
def test_unknown_scene_names_say_how_to_write_one(item):
    with pytest.raises(WalkSpecError) as info:
        parse_walk_spec({"model": "teaching-unclip", "images": [item, "scene:red apple"], "frames": 3})
    text = str(info.value)
    assert repr(item) in text and '"scene:red apple"' in text
    assert "green apple" in text and "tractor" in text  # the valid names are listed


def test_a_near_miss_scene_name_gets_a_suggestion(capsys, tmp_path):
    walk = tmp_path / "w.yaml"
    walk.write_text('model: teaching-unclip\nimages: ["scene:red aple", "scene:green apple"]\nframes: 3\n')
    assert main([str(walk), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: w.yaml:") and "did you mean scene:red apple?" in err and "Traceback" not in err


def test_the_retired_digit_model_names_its_replacement(tmp_path, capsys):
    with pytest.raises(WalkSpecError, match="model: teaching "):
        parse_walk_spec({"model": "teaching-digits", "prompts": ["a", "b"], "frames": 3})
    walk = tmp_path / "old.yaml"
    walk.write_text("model: teaching-digits\nprompts: [a handwritten three, a handwritten eight]\nframes: 4\n")
    assert main([str(walk), "--no-progress"]) == 2
    err = capsys.readouterr().err
    assert "retired" in err and "teaching" in err and not (tmp_path / "old").exists()


def test_the_text_to_image_unclip_is_not_a_walk_file_model():
    with pytest.raises(WalkSpecError, match="teaching, teaching-unclip"):
        parse_walk_spec({"model": "teaching-unclip-text", "prompts": ["a cat face", "a dog face"], "frames": 3})


def test_named_models_are_the_backends_models():
    from helpers.backends import TEACHING
    from helpers.models import MODELS as REGISTRY
    from helpers.walks.spec import MODELS

    for name, (backend, kind) in MODELS.items():
        if backend == "teaching":
            kind = "flow" if REGISTRY[name].family == "sd3" else kind  # the flow model: the backends' "flow" kind
            assert TEACHING[kind] == name  # the walk file's name is the model the backend loads


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_split_the_frames_and_match_one_process(tmp_path):
    walk = tmp_path / "walk.yaml"
    walk.write_text(TINY)
    # accelerate's launcher: --multi_gpu starts the processes with torchrun (the only multi-process path
    # without a GPU); helpers.walks.spec then asks accelerate for a CPU (gloo) process group.
    cmd = [
        sys.executable, "-m", "accelerate.commands.launch", "--multi_gpu", "--num_processes", "2",
        "--num_machines", "1", "--mixed_precision", "no", "--dynamo_backend", "no",
        "--main_process_port", str(_free_port()),
        "-m", "helpers.walks", str(walk), "--out", str(tmp_path / "two"), "--no-progress",
    ]  # fmt: skip
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1", "MASTER_ADDR": "127.0.0.1"}
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "process 0: rendered" in done.stdout and "process 1: rendered" in done.stdout
    assert "rendered 0 frame(s)" not in done.stdout  # both processes did some of the work

    assert main([str(walk), "--no-progress", "--out", str(tmp_path / "one")]) == 0
    one, two = sorted((tmp_path / "one").glob("frame_*.png")), sorted((tmp_path / "two").glob("frame_*.png"))
    assert [p.name for p in one] == [p.name for p in two] and len(one) == 5
    for a, b in zip(one, two, strict=True):
        assert a.read_bytes() == b.read_bytes(), a.name
    with Image.open(tmp_path / "two" / "walk.gif") as gif:
        assert gif.n_frames == 5  # one video, merged by the main process
    assert [f["renders"] for f in read_manifest(tmp_path / "two")["frames"]] == [1] * 5
