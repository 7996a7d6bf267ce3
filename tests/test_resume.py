"""Resumable renders (helpers.walks.render_walk): a real kill -9 mid-render, then resume.

The subprocess logs every UNet call's frame indices (found by matching the conditioning rows against the
path), independently of the manifest, so the tests can count how often each frame was really rendered.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from tooling import ended_by, interruptible

from helpers.embeddings import encode_prompts
from helpers.interpolation import slerp
from helpers.pipelines import tiny_pipeline
from helpers.walks import WalkFolderError, read_manifest, render_walk

N_FRAMES, BATCH, STEPS, SEED = 8, 2, 2, 5
ROOT = Path(__file__).resolve().parents[1]

# The walk both the test process and the subprocess render (same code, one thread: identical bytes), and a
# UNet hook that logs which frames each call renders (matched against the path's rows), then sleeps.
WALK = f"""
import os, time
import torch, numpy as np
from helpers.embeddings import encode_prompts
from helpers.interpolation import slerp
from helpers.pipelines import tiny_pipeline

torch.set_num_threads(1)
pipe = tiny_pipeline("text2img")
embeds, negative = encode_prompts(pipe, ["a red cat", "a blue house"])
path = slerp(embeds[0], embeds[1], np.linspace(0, 1, {N_FRAMES}, dtype=np.float32))
KWARGS = dict(prompt_embeds=path, negative_prompt_embeds=negative[:1], seed={SEED}, batch_size={BATCH},
              num_inference_steps={STEPS}, guidance_scale=3.0, eta=1.0, progress=False)

def log_unet_calls(log, delay):
    flat = path.reshape(path.shape[0], -1)

    def record(module, args, kwargs):
        rows = kwargs["encoder_hidden_states"]
        rows = rows[rows.shape[0] // 2 :]  # classifier-free guidance: [negative; frames]
        idx = [int(torch.cdist(r.reshape(1, -1), flat).argmin()) for r in rows]
        with open(log, "a") as fh:
            fh.write(" ".join(map(str, idx)) + "\\n")
            fh.flush()
            os.fsync(fh.fileno())
        time.sleep(delay)

    return pipe.unet.register_forward_pre_hook(record, with_kwargs=True)
"""

SCRIPT = WALK + textwrap.dedent(
    """
    import sys
    from helpers.walks import render_walk

    out, log, delay = sys.argv[1], sys.argv[2], float(sys.argv[3])
    log_unet_calls(log, delay)
    render_walk(pipe, out, **KWARGS)
    print("finished")
    """
)


def _run(script: Path, out: Path, log: Path, delay: float) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(
        [sys.executable, str(script), str(out), str(log), str(delay)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        start_new_session=True,  # its own process group, which a test may signal as a whole (Ctrl-C in a terminal)
        preexec_fn=interruptible,
    )


def _unet_calls(log: Path) -> dict[int, int]:
    counts: dict[int, int] = {}
    if log.exists():
        for line in log.read_text().splitlines():
            for i in line.split():
                counts[int(i)] = counts.get(int(i), 0) + 1
    return counts


def _committed(out: Path) -> set[int]:
    try:
        manifest = read_manifest(out)  # the manifest with its commit log folded in
    except (OSError, ValueError):
        return set()
    return {f["index"] for f in manifest["frames"] if f["status"] == "done"}


@pytest.fixture(scope="module")
def walk():
    namespace: dict = {}
    exec(WALK, namespace)
    return namespace


@pytest.fixture(scope="module")
def reference(tmp_path_factory, walk):
    """An uninterrupted render of the walk, in this process."""
    out = tmp_path_factory.mktemp("reference")
    result = render_walk(walk["pipe"], out, **walk["KWARGS"])
    assert result.rendered == list(range(N_FRAMES))
    return {p.name: p.read_bytes() for p in result.frames}


@pytest.mark.parametrize("sig,group", [(signal.SIGKILL, False), (signal.SIGINT, False), (signal.SIGINT, True),
                                       (signal.SIGTERM, False)],
                         ids=["r2-067-kill-9", "r2-064-sigint", "r2-065-sigint-to-the-group", "r2-066-sigterm"])
def test_kill_9_mid_render_then_resume_is_identical(tmp_path, walk, reference, sig, group):
    """Killed mid-render by kill -9, Ctrl-C (to the process, or to its whole group as a terminal sends it) or
    SIGTERM: the rerun renders only what was not committed and the frames are the uninterrupted run's bytes."""
    script = tmp_path / "walk.py"
    script.write_text(SCRIPT)
    out = tmp_path / "walk"
    first_log, second_log = tmp_path / "first.log", tmp_path / "second.log"

    proc = _run(script, out, first_log, delay=0.15)
    deadline = time.monotonic() + 120
    while len(_committed(out)) < 2 and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.1)  # into the next chunk
    assert proc.poll() is None, f"the render finished before it could be killed:\n{proc.communicate()[0]}"
    (os.killpg if group else os.kill)(proc.pid, sig)
    output = proc.communicate(timeout=30)[0]
    assert ended_by(proc.returncode, output, sig), output[-2000:]

    done_at_kill = _committed(out)
    assert 2 <= len(done_at_kill) < N_FRAMES
    # What a kill in the middle of writing leaves behind: a half-written temporary file, and a truncated
    # PNG of a chunk the manifest never committed. Neither may be accepted.
    pending = sorted(set(range(N_FRAMES)) - done_at_kill)
    (out / f".frame_{pending[-1]:05d}.x1y2.part.png").write_bytes(reference[f"frame_{pending[-1]:05d}.png"][:50])
    (out / f"frame_{pending[0]:05d}.png").write_bytes(reference[f"frame_{pending[0]:05d}.png"][:100])

    # started again with the same arguments (here in this process, with the same UNet log)
    hook = walk["log_unet_calls"](str(second_log), 0.0)
    try:
        resumed = render_walk(walk["pipe"], out, **walk["KWARGS"])
    finally:
        hook.remove()
    assert resumed.skipped == sorted(done_at_kill) and resumed.rendered == pending

    # identical to the uninterrupted run, byte for byte, and nothing else left in the folder
    final = sorted(out.glob("frame_*.png"))
    assert [p.name for p in final] == sorted(reference)
    for p in final:
        assert p.read_bytes() == reference[p.name], p.name
    assert not list(out.glob(".*.part*"))

    # no frame rendered twice: committed frames never reach the UNet again; the rest do, exactly once
    first, second = _unet_calls(first_log), _unet_calls(second_log)
    assert all(first[i] == STEPS for i in done_at_kill)
    assert not set(second) & done_at_kill
    assert set(second) == set(pending) and all(second[i] == STEPS for i in pending)
    manifest = read_manifest(out)
    assert [f["renders"] for f in manifest["frames"]] == [1] * N_FRAMES
    assert all(f["status"] == "done" for f in manifest["frames"])


def _small_walk():
    pipe = tiny_pipeline("text2img")
    embeds, negative = encode_prompts(pipe, ["a red cat", "a blue house"])
    path = slerp(embeds[0], embeds[1], np.linspace(0, 1, 3, dtype=np.float32))
    return pipe, dict(prompt_embeds=path, negative_prompt_embeds=negative[:1], seed=1, num_inference_steps=2,
                      guidance_scale=2.0, progress=False)


def test_changed_parameters_are_refused(tmp_path):
    pipe, kwargs = _small_walk()
    first = render_walk(pipe, tmp_path, batch_size=2, **kwargs)
    before = {p: p.read_bytes() for p in first.frames}
    with pytest.raises(WalkFolderError, match=r"guidance_scale: 2\.0 in the folder, 3\.0 now.*overwrite=True"):
        render_walk(pipe, tmp_path, **{**kwargs, "guidance_scale": 3.0})
    with pytest.raises(WalkFolderError, match="inputs_sha256"):
        render_walk(pipe, tmp_path, **{**kwargs, "prompt_embeds": kwargs["prompt_embeds"].flip(0)})
    with pytest.raises(WalkFolderError, match="seed: 1 in the folder, 2 now"):
        render_walk(pipe, tmp_path, **{**kwargs, "seed": 2})
    with pytest.raises(WalkFolderError, match="frames: 3 in the folder, 2 now"):
        render_walk(pipe, tmp_path, **{**kwargs, "prompt_embeds": kwargs["prompt_embeds"][:2]})
    with pytest.raises(WalkFolderError, match="weights"):
        render_walk(tiny_pipeline("text2img", seed=1), tmp_path, **kwargs)
    assert {p: p.read_bytes() for p in first.frames} == before  # refusals touched nothing
    # the same arguments again: nothing to do; a different batch size keeps the folder's grid
    with pytest.warns(UserWarning, match="batch size 2"):
        again = render_walk(pipe, tmp_path, batch_size=3, **kwargs)
    assert again.rendered == [] and again.skipped == [0, 1, 2]
    # overwrite=True replaces the walk
    replaced = render_walk(pipe, tmp_path, overwrite=True, **{**kwargs, "guidance_scale": 3.0})
    assert replaced.rendered == [0, 1, 2]
    assert read_manifest(tmp_path)["parameters"]["pipe_kwargs"]["guidance_scale"] == 3.0


def test_damaged_committed_frame_is_rendered_again(tmp_path):
    pipe, kwargs = _small_walk()
    first = render_walk(pipe, tmp_path, batch_size=1, **kwargs)
    good = first.frames[1].read_bytes()
    first.frames[1].write_bytes(good[: len(good) // 2])  # truncated after the fact
    first.frames[2].unlink()
    with pytest.warns(UserWarning, match="missing or changed"):
        again = render_walk(pipe, tmp_path, **kwargs)
    assert again.rendered == [1, 2] and again.skipped == [0]
    assert first.frames[1].read_bytes() == good
    assert [f["renders"] for f in read_manifest(tmp_path)["frames"]] == [1, 2, 2]  # honest counts


def test_foreign_folders_are_refused(tmp_path):
    pipe, kwargs = _small_walk()
    (tmp_path / "manifest.json").write_text("{not json")
    with pytest.raises(WalkFolderError, match="cannot be read.*overwrite=True"):
        render_walk(pipe, tmp_path, **kwargs)
    other = tmp_path / "other"
    other.mkdir()
    (other / "frame_00000.png").write_bytes(b"x")
    with pytest.raises(WalkFolderError, match="no manifest.json"):
        render_walk(pipe, other, **kwargs)
    a_file = tmp_path / "file.txt"
    a_file.write_text("x")
    with pytest.raises(WalkFolderError, match="is a file"):
        render_walk(pipe, a_file, **kwargs)
    with pytest.raises(ValueError, match="needs prompt_embeds"):
        render_walk(pipe, tmp_path / "new", progress=False)
    assert render_walk(pipe, tmp_path, overwrite=True, **kwargs).rendered == [0, 1, 2]


def test_a_failed_first_attempt_does_not_lock_the_folder(tmp_path):
    pipe, kwargs = _small_walk()
    with pytest.raises(ValueError, match="latents must be"):
        render_walk(pipe, tmp_path, latents=torch.zeros(1, 4, 8, 8), **kwargs)  # wrong size: fails in chunk 1
    assert read_manifest(tmp_path)["frames"][0]["status"] == "pending"
    assert render_walk(pipe, tmp_path, **kwargs).rendered == [0, 1, 2]  # fixed arguments: accepted


def _crafted_manifest(folder: Path, frames: list[dict]) -> None:
    """A manifest that passes the format check but names files render_walk never writes."""
    pipe, kwargs = _small_walk()
    real = render_walk(pipe, folder / "real", **kwargs)
    data = read_manifest(folder / "real")
    data["frames"] = frames
    (folder / "manifest.json").write_text(json.dumps(data))
    for f in real.frames:
        f.unlink()


@pytest.mark.parametrize("overwrite", [False, True])
@pytest.mark.parametrize("name", ["victim.txt", "../outside.txt", "ABSOLUTE", "sub/frame_00000.png"])
def test_a_crafted_manifest_never_deletes_files_it_names(tmp_path, name, overwrite):
    # Regression (issue 12, defect 1): every pending entry's file was deleted, wherever it pointed.
    outside = tmp_path / "outside.txt"
    outside.write_text("keep me")
    folder = tmp_path / "walk"
    folder.mkdir()
    (folder / "victim.txt").write_text("keep me too")
    (folder / "sub").mkdir()
    (folder / "sub" / "frame_00000.png").write_bytes(b"mine")
    target = str(outside) if name == "ABSOLUTE" else name
    frames = [{"index": i, "file": target if i == 0 else f"frame_{i:05d}.png", "status": "pending",
               "sha256": None, "renders": 0} for i in range(3)]
    _crafted_manifest(folder, frames)
    before = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "real" not in p.parts}
    pipe, kwargs = _small_walk()
    with pytest.raises(WalkFolderError, match="not written by render_walk"):
        render_walk(pipe, folder, overwrite=overwrite, **kwargs)
    after = {p: p.read_bytes() for p in tmp_path.rglob("*") if p.is_file() and "real" not in p.parts}
    assert after == before  # nothing deleted, nothing changed, the manifest included


def test_overwrite_deletes_only_its_own_frames_and_never_follows_links(tmp_path):
    pipe, kwargs = _small_walk()
    folder = tmp_path / "walk"
    render_walk(pipe, folder, **kwargs)
    precious = tmp_path / "precious.png"
    precious.write_bytes(b"not a frame")
    (folder / "frame_00007.png").symlink_to(precious)  # a link named like a frame
    (folder / "notes.txt").write_text("mine")
    (folder / ".notes.abc.partial").write_text("mine too")
    render_walk(pipe, folder, overwrite=True, **{**kwargs, "guidance_scale": 3.0})
    assert precious.read_bytes() == b"not a frame" and (folder / "frame_00007.png").is_symlink()
    assert (folder / "notes.txt").read_text() == "mine" and (folder / ".notes.abc.partial").exists()


def test_a_second_render_into_a_busy_folder_is_refused_and_a_killed_ones_lock_is_free(tmp_path):
    # Regression (issue 12, defect 3): two renders into one folder both exited 0 with mixed frames.
    import fcntl

    pipe, kwargs = _small_walk()
    folder = tmp_path / "walk"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import fcntl, pathlib, sys, time
            p = pathlib.Path({str(folder)!r}); p.mkdir(parents=True, exist_ok=True)
            fh = open(p / ".walk.lock", "a+"); fcntl.flock(fh, fcntl.LOCK_EX)
            print("locked", flush=True); time.sleep(120)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"  # another render holds the folder
        with pytest.raises(WalkFolderError, match="another render is writing"):
            render_walk(pipe, folder, **kwargs)
        assert sorted(p.name for p in folder.iterdir()) == [".walk.lock"]  # nothing written
    finally:
        holder.send_signal(signal.SIGKILL)  # kill -9: the kernel drops its lock
        holder.wait()
    assert render_walk(pipe, folder, **kwargs).rendered == [0, 1, 2]
    with open(folder / ".walk.lock", "a+") as fh:  # and the finished render let go of it
        fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_changing_a_few_weights_is_a_different_walk(tmp_path):
    # Regression (issue 12, defect 4): the fingerprint hashed 64 values per component, so editing eight attention
    # weights kept the old frames on resume.
    from helpers.walks.folder import _weights_fingerprint

    pipe, kwargs = _small_walk()
    render_walk(pipe, tmp_path, **kwargs)
    before = _weights_fingerprint(pipe)
    assert _weights_fingerprint(pipe) == before  # cached and stable
    attn = next(m for n, m in pipe.unet.named_modules() if n.endswith("attn1.to_q"))
    with torch.no_grad():
        attn.weight.view(-1)[-8:] += 0.5  # in place, far from the first values
    assert _weights_fingerprint(pipe) != before
    with pytest.raises(WalkFolderError, match="weights"):
        render_walk(pipe, tmp_path, **kwargs)
    fresh, _ = _small_walk()  # the same random weights built again: the same fingerprint
    assert _weights_fingerprint(fresh) == before
