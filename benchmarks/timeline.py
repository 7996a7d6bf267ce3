"""A long walk timed to music, as a user renders it: ``python -m helpers.walks`` on a timeline walk file.

    python -m benchmarks.timeline [--frames 1000] [--out benchmarks/TIMELINE.md]      (part of ``make bench``)

A click track long enough for ``--frames`` frames at 12 fps (made here, nothing downloads), four keyframes
(three prompts and an example scene, looping) on the teaching model, rendered resumably into a folder with an
MP4 that carries the sound. The same walk at a tenth of the frames runs beside it: frames per second of each,
and each run's peak resident memory (the child process's ``ru_maxrss``). The frames go to disk chunk by
chunk and the MP4 reads them back one at a time, so the peak should not grow with the walk's length.
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

FPS = 12
WALK = """model: teaching
keyframes:
  - prompt: a big red heart on a white background
    seed: 0
  - prompt: a big blue heart on a white background
    seed: 1
  - image: "scene:green apple"
  - prompt: a big cat face on a pink background
    seed: 3
loop: true
audio: beat.flac
smooth: 0.15
fps: {fps}
formats: [mp4]
"""


def run_walk(folder: Path, frames: int, threads: int) -> dict[str, float]:
    """Write the click track and the walk file into ``folder``, render it in a child process, and return its
    wall time, frames and peak resident memory (MiB)."""
    from helpers.audio import click_track, write_audio
    from helpers.media import stream_seconds

    folder.mkdir(parents=True, exist_ok=True)
    write_audio(folder / "beat.flac", click_track(100, frames / FPS))
    (folder / "walk.yaml").write_text(WALK.format(fps=FPS))
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    t0 = time.perf_counter()
    child = subprocess.Popen([sys.executable, "-m", "helpers.walks", str(folder / "walk.yaml"), "--no-progress"],
                             env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - t0
    err = child.stderr.read().decode() if child.stderr else ""
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"the walk of {frames} frames failed: {err[-2000:]}")
    rendered = len(list((folder / "walk").glob("frame_*.png")))
    streams = stream_seconds(folder / "walk" / "walk.mp4")
    return {"frames": rendered, "seconds": seconds, "fps": rendered / seconds, "peak_mib": usage.ru_maxrss / 1024,
            "video_s": streams.get("video", 0.0), "audio_s": streams.get("audio", 0.0)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.timeline", description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=1000, help="frames of the long walk (the short: a tenth)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the rendering process")
    parser.add_argument("--out", default="benchmarks/TIMELINE.md")
    args = parser.parse_args(argv)
    rows = {}
    with tempfile.TemporaryDirectory(prefix="timeline-bench-") as tmp:
        for n in (args.frames // 10, args.frames):
            rows[n] = run_walk(Path(tmp) / str(n), n, args.threads)
            print(f"{n} frames: {rows[n]}", flush=True)
    short, long = rows[args.frames // 10], rows[args.frames]
    lines = [
        "# A long walk timed to music (`make bench`: `python -m benchmarks.timeline`)",
        "",
        f"Teaching model, a looping timeline of four keyframes (three prompts, one example scene) timed to a click "
        f"track at {FPS} fps, rendered by `python -m helpers.walks` into a folder with an MP4 carrying the sound; "
        f"{args.threads} torch thread(s), {platform.processor() or platform.machine()}, "
        f"{time.strftime('%Y-%m-%d')}. Time includes loading the model, the music's onset analysis and the MP4.",
        "",
        "| frames | wall time | frames/s | peak memory (RSS) | video / sound track |",
        "|---:|---:|---:|---:|---:|",
    ]
    for r in rows.values():
        lines.append(f"| {r['frames']} | {r['seconds']:.1f} s | {r['fps']:.2f} | {r['peak_mib']:.0f} MiB | "
                     f"{r['video_s']:.2f} s / {r['audio_s']:.2f} s |")
    lines += ["", f"Peak memory of the long walk over the short one: **{long['peak_mib'] / short['peak_mib']:.2f}x** "
              f"for {long['frames'] / short['frames']:.0f}x the frames (the frames stream to disk and back, the music is "
              "analysed 30 s at a time)."]
    Path(args.out).write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
