"""The render folder's contract under hostile and careless use (issue 30, second round; audit numbers r2-NNN).

A render never replaces or deletes a file it did not write, whatever the flags; never opens a path through a
link it did not create; refuses bad arguments before it touches the folder; and a rerun removes every temporary
file the project itself writes, exports included. Each case asserts the error, its key fact, and that the
user's files (inside the folder and outside it) are byte for byte what they were.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import test_hostile
import torch
from PIL import Image
from test_hostile import BASE, _snapshot
from tooling import ended_by, interruptible

import helpers.walks.spec as walkfile
from helpers.interpolation import slerp
from helpers.render import NonFiniteFramesError
from helpers.walks import ForeignFolderError, WalkFolderError, read_manifest, render_walk

ROOT = Path(__file__).resolve().parents[1]
sd, small_disk, world = test_hostile.sd, test_hostile.small_disk, test_hostile.world  # fixtures, used by name


def _tree(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` (links as their target path), to compare before and after."""
    return {str(p.relative_to(folder)): (os.readlink(p).encode() if p.is_symlink() else p.read_bytes())
            for p in sorted(folder.rglob("*")) if p.is_file() or p.is_symlink()}


def _walk_kwargs(sd, frames: int = 3) -> dict:
    pipe, embeds, negative = sd
    return dict(prompt_embeds=slerp(embeds[0], embeds[1], np.linspace(0, 1, frames)),
                negative_prompt_embeds=negative[:1], num_inference_steps=2, progress=False)


def _user_frames(folder: Path, count: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(count):  # as `ffmpeg -i clip.mp4 frame_%05d.png` would leave them
        Image.new("RGB", (8, 8), (10 * i, 20, 30)).save(folder / f"frame_{i:05d}.png")


# -------------------------------------------------------------------------------------- data loss


@pytest.mark.parametrize("overwrite", [False, True], ids=["r2-045-user-frames", "r2-046-user-frames-overwrite"])
def test_a_folder_of_the_users_frames_is_refused_whatever_the_flags(sd, world, overwrite):
    out = world / "frames"
    _user_frames(out, 5)
    before = _snapshot(world, world / "nowhere")
    with pytest.raises(ForeignFolderError) as info:
        render_walk(sd[0], out, overwrite=overwrite, **_walk_kwargs(sd))
    message = str(info.value)
    assert "frame_00000.png" in message and "did not write" in message
    assert "overwrite=True" not in message and "--overwrite" not in message  # no hint towards losing them
    assert _snapshot(world, world / "nowhere") == before  # every frame, and nothing added (no manifest, no lock)


def test_overwrite_replaces_only_the_frames_its_manifest_lists(sd, world):
    out = world / "walk"
    render_walk(sd[0], out, **_walk_kwargs(sd, 3))
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out / "frame_00007.png")  # the user's own, beside ours
    before = _tree(out)
    with pytest.raises(ForeignFolderError, match="frame_00007.png"):  # a 9-frame walk would write it
        render_walk(sd[0], out, overwrite=True, **_walk_kwargs(sd, 9))
    assert _tree(out) == before
    (out / "frame_00007.png").unlink()
    result = render_walk(sd[0], out, overwrite=True, **_walk_kwargs(sd, 9))
    assert len(result.rendered) == 9


def test_r2_043_the_users_exports_are_never_replaced_and_ours_are(world, capsys):
    walk = world / "walk.yaml"
    walk.write_text(BASE + "formats: [gif, mp4, contact_sheet]\n")
    out = world / "home"
    out.mkdir()
    Image.new("RGB", (8, 8), (1, 2, 3)).save(out / "walk.gif")  # the user's own files
    Image.new("RGB", (8, 8), (4, 5, 6)).save(out / "contact_sheet.png")
    mine = {name: (out / name).read_bytes() for name in ("walk.gif", "contact_sheet.png")}
    before = _snapshot(world, out)

    assert walkfile.main([str(walk), "--out", str(out), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "holds walk.gif, contact_sheet.png, which this render did not write" in err[0], err
    assert {name: (out / name).read_bytes() for name in mine} == mine
    assert not (out / "walk.mp4").exists()  # checked together: none is written when one is refused
    assert len(read_manifest(out)["frames"]) == 3  # the frames are kept and count as done
    assert _snapshot(world, out) == before

    for name in mine:  # moved away by the user: the same command now only exports
        (out / name).rename(world / f"kept_{name}")
    assert walkfile.main([str(walk), "--out", str(out), "--no-progress"]) == 0
    assert "rendered 0 frame(s), 3 already done" in capsys.readouterr().out
    exports = read_manifest(out)["exports"]
    assert set(exports) == {"walk.gif", "walk.mp4", "contact_sheet.png"}
    # Our own exports are replaced by a rerun (also after --overwrite with another walk) ...
    walk.write_text(BASE.replace("frames: 3", "frames: 4") + "formats: [gif, mp4, contact_sheet]\n")
    assert walkfile.main([str(walk), "--out", str(out), "--no-progress", "--overwrite"]) == 0
    with Image.open(out / "walk.gif") as gif:
        assert gif.n_frames == 4
    # ... but not once the user has edited one.
    Image.new("RGB", (8, 8), (7, 8, 9)).save(out / "contact_sheet.png")
    edited = (out / "contact_sheet.png").read_bytes()
    assert walkfile.main([str(walk), "--out", str(out), "--no-progress"]) == 2
    assert (out / "contact_sheet.png").read_bytes() == edited


# ------------------------------------------------------------------------------------- links and leftovers


def test_r2_115_lock_links_are_refused_and_their_targets_never_created(sd, world, tmp_path_factory):
    elsewhere = tmp_path_factory.mktemp("elsewhere")
    out = world / "shared_zip"
    out.mkdir()
    for name in (".walk.lock", ".manifest.lock"):
        (out / name).symlink_to(elsewhere / f"created_by_{name}")
    with pytest.raises(WalkFolderError, match=r"\.walk\.lock is a symbolic link; render_walk never writes"):
        render_walk(sd[0], out, **_walk_kwargs(sd))
    assert list(elsewhere.iterdir()) == []
    (out / ".walk.lock").unlink()  # the second link is met next, before anything is written through it
    with pytest.raises(WalkFolderError, match=r"\.manifest\.lock is a symbolic link"):
        render_walk(sd[0], out, **_walk_kwargs(sd))
    assert list(elsewhere.iterdir()) == []


def test_r2_116_a_commit_log_that_arrives_as_a_link_is_removed_and_its_target_kept(sd, world, tmp_path_factory):
    target = tmp_path_factory.mktemp("elsewhere") / "victim.txt"
    target.write_text("keep me")
    out = world / "walk"
    out.mkdir()
    (out / "commits.jsonl").symlink_to(target)
    result = render_walk(sd[0], out, **_walk_kwargs(sd))
    assert len(result.rendered) == 3 and target.read_text() == "keep me"
    assert not (out / "commits.jsonl").is_symlink()


def test_the_commit_log_is_never_appended_through_a_link(sd, world, tmp_path_factory, monkeypatch):
    import helpers.walks.folder as folder

    target = tmp_path_factory.mktemp("elsewhere") / "victim.txt"
    target.write_text("keep me")
    out = world / "walk"
    real = folder._append_commit

    def swap_in_a_link(path, records):  # the log turns into a link between the start and the first commit
        (path / folder.COMMITS_NAME).unlink(missing_ok=True)
        (path / folder.COMMITS_NAME).symlink_to(target)
        return real(path, records)

    monkeypatch.setattr(folder, "_append_commit", swap_in_a_link)
    with pytest.raises(WalkFolderError, match="commits.jsonl is a symbolic link"):
        render_walk(sd[0], out, **_walk_kwargs(sd))
    assert target.read_text() == "keep me"


_KILLED_EXPORT = """
import os, signal, sys
import helpers.media as media
import helpers.walks.spec as walkfile

real = media.{writer}
def write_then_die(frames, path, **kwargs):
    real(frames, path, **kwargs)  # the export is complete in its temporary file ...
    os.kill(os.getpid(), signal.{signal})  # ... when the process is killed, before it is moved into place
media.{writer} = write_then_die
sys.exit(walkfile.main([sys.argv[1], "--out", sys.argv[2], "--no-progress"]))
"""


@pytest.mark.parametrize("writer,sig", [
    ("export_gif", "SIGINT"), ("export_gif", "SIGTERM"), ("export_mp4", "SIGINT"), ("export_mp4", "SIGTERM"),
    ("export_mp4", "SIGKILL"),
], ids=["r2-068-sigint-mid-gif", "r2-069-sigterm-mid-gif", "r2-070-sigint-mid-mp4", "r2-071-sigterm-mid-mp4",
        "r2-072-kill9-mid-mp4"])
def test_a_rerun_removes_the_temporaries_of_an_export_killed_midway(world, writer, sig):
    walk = world / "walk.yaml"
    walk.write_text(BASE + "formats: [gif, mp4]\n")
    out = world / "out"
    script = world / "killed.py"
    script.write_text(textwrap.dedent(_KILLED_EXPORT.format(writer=writer, signal=sig)))
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    killed = subprocess.run([sys.executable, str(script), str(walk), str(out)], env=env, capture_output=True,
                            timeout=300, preexec_fn=interruptible)
    assert ended_by(killed.returncode, killed.stderr.decode(), getattr(signal, sig)), killed.stderr.decode()[-2000:]
    left = [p.name for p in out.glob(".*.part*")]
    if sig == "SIGINT":  # Ctrl-C unwinds the writers, which delete their temporary files at once
        assert left == []
    else:  # SIGTERM and kill -9 end the process where it stands
        assert left, "the kill should have left a temporary export"
    rerun = subprocess.run([sys.executable, "-m", "helpers.walks", str(walk), "--out", str(out), "--no-progress"],
                           env=env, capture_output=True, timeout=300, cwd=ROOT)
    assert rerun.returncode == 0, rerun.stderr.decode()[-2000:]
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".")) == [".manifest.lock", ".walk.lock"]
    with Image.open(out / "walk.gif") as gif:
        assert gif.n_frames == 3
    assert (out / "walk.mp4").stat().st_size > 0


# ------------------------------------------------------------------- refused before the folder is touched


@pytest.mark.parametrize("case,error,fact", [
    ("r2-111-output-type-np", TypeError, "render_walk takes no ['output_type']"),
    ("r2-112-reserved-kwarg", TypeError, "render_frames sets ['return_dict'] itself"),
    ("r2-113-generator-kwarg", TypeError, "pass seed="),
    ("r2-114-latents-nan", ValueError, "latents contains NaN or inf"),
    ("r2-114-latents-rows", ValueError, "latents has 2 rows but the path has 3 frames"),
    ("negative-rows", ValueError, "negative_prompt_embeds has 4 rows but the path has 3 frames"),
])
def test_render_walk_refuses_bad_arguments_before_touching_the_folder(sd, world, case, error, fact):
    extra = {
        "r2-111-output-type-np": dict(output_type="np"),
        "r2-112-reserved-kwarg": dict(return_dict=False),
        "r2-113-generator-kwarg": dict(generator=torch.Generator()),
        "r2-114-latents-nan": dict(latents=torch.full((1, 4, 16, 16), float("nan"))),
        "r2-114-latents-rows": dict(latents=torch.zeros(2, 4, 16, 16)),
        "negative-rows": dict(negative_prompt_embeds=torch.cat([sd[2], sd[2]])),  # 4 rows
    }[case]
    before = _snapshot(world, world / "nowhere")
    with pytest.raises(error) as info:
        render_walk(sd[0], world / "out", **{**_walk_kwargs(sd), **extra})
    assert fact in str(info.value)
    assert not (world / "out").exists()
    assert _snapshot(world, world / "nowhere") == before


@pytest.mark.parametrize("where,error,fact", [
    ("a_file/walk", WalkFolderError, "is inside"),  # r2-117: was a raw NotADirectoryError
    ("", ValueError, "render_walk needs an output folder"),  # the API's twin of r2-037 (--out "")
    ("dangling", WalkFolderError, "is a link to a folder that does not exist"),  # the API's twin of r2-038
], ids=["r2-117-out-under-file", "out-empty", "out-dangling-link"])
def test_render_walk_refuses_an_impossible_folder_up_front(sd, world, monkeypatch, where, error, fact):
    (world / "dangling").symlink_to(world / "missing_target")
    monkeypatch.chdir(world)
    before = _snapshot(world, world / "nowhere")
    with pytest.raises(error, match=fact):
        render_walk(sd[0], where if where == "" else world / where, **_walk_kwargs(sd))
    assert _snapshot(world, world / "nowhere") == before
    assert not (world / "missing_target").exists() and not (world / "manifest.json").exists()


def test_r2_084_a_start_on_a_full_disk_leaves_no_lock_behind(sd, small_disk):
    filler = small_disk / "filler.bin"
    free = os.statvfs(small_disk).f_bavail * os.statvfs(small_disk).f_frsize
    filler.write_bytes(b"\0" * max(0, free - 512))
    with pytest.raises(OSError):
        render_walk(sd[0], small_disk / "walk", **_walk_kwargs(sd))
    assert not (small_disk / "walk").exists()


def test_a_nan_frame_is_never_committed(sd, world, monkeypatch):
    """A decoder that returns NaN (as guidance 1e30 did) is an error; no frame of that chunk is committed."""
    pipe = sd[0]
    real = pipe.vae.decode

    def nan_decode(z, *args, **kwargs):
        out = real(z, *args, **kwargs)
        (out[0] if isinstance(out, tuple) else out.sample).fill_(float("nan"))
        return out

    monkeypatch.setattr(pipe.vae, "decode", nan_decode)
    with pytest.raises(NonFiniteFramesError, match=r"NaN or inf pixels for frame\(s\) \[0\]"):
        render_walk(pipe, world / "out", batch_size=1, **_walk_kwargs(sd))
    assert [f["status"] for f in read_manifest(world / "out")["frames"]] == ["pending"] * 3
    assert not list((world / "out").glob("frame_*.png"))
