"""Walks timed to music (helpers.audio and audio timelines): checked on click tracks made here, whose beats are
known, against the onset envelope, the planned fractions, the rendered frames and the MP4's streams."""

from __future__ import annotations

import numpy as np
import pytest

from helpers.audio import (
    AudioError,
    beat_times,
    click_track,
    onset_envelope,
    onset_fractions,
    write_audio,
)
from helpers.timeline import Keyframe, Timeline, plan_frames

FPS = 12


@pytest.fixture(scope="module")
def beat() -> tuple[np.ndarray, float]:
    """Four seconds of clicks at 90 beats per minute (one every 0.667 s: 8 frames apart at 12 fps)."""
    return click_track(90, 4.0), 90.0


def test_the_onset_envelope_peaks_on_the_clicks(beat):
    y, bpm = beat
    env = onset_envelope(y, FPS)
    assert len(env) == 48 and env.duration == pytest.approx(4.0)
    strong = set(np.flatnonzero(env.onset > 0.3).tolist())
    clicks = {int(t * FPS) for t in beat_times(bpm, 4.0)[1:]}  # the first click has no "before" to rise from
    assert clicks <= strong | {c + 1 for c in strong} | {c - 1 for c in strong}
    assert len(strong) <= 2 * len(clicks)  # strong only near the clicks
    quiet = [k for k in range(len(env)) if all(abs(k - c) > 1 for c in clicks | {0})]
    assert env.onset[quiet].max() < 0.1


def test_onsets_worked_out_in_blocks_are_librosas_on_the_whole_song(monkeypatch):
    """Long songs are analysed a block at a time (bounded memory); with each block's context the result is
    librosa's onset strength of the whole signal's percussive part."""
    import librosa

    import helpers.audio as audio

    monkeypatch.setattr(audio, "BLOCK_SECONDS", 4.0)
    y = click_track(137, 13.3) + 0.02 * np.random.default_rng(0).standard_normal(int(13.3 * 22050)).astype(np.float32)
    whole = librosa.onset.onset_strength(y=librosa.effects.percussive(y), sr=22050, hop_length=audio.HOP_LENGTH)
    blocks = audio._percussive_onsets(y, 22050)
    assert blocks.shape == whole.shape
    np.testing.assert_allclose(blocks, whole, atol=1e-4 * whole.max())


def test_fractions_jump_on_the_beats_and_smooth_blends_in_even_spacing():
    onset = np.zeros(20)
    onset[[5, 15]] = 1.0  # two beats
    u = onset_fractions(onset, 0, 20, smooth=0.0)
    assert u[0] == 0 and (np.diff(u) >= 0).all()
    steps = np.diff(np.append(u, 1.0))  # the step into frame j+1, the last into the next keyframe
    np.testing.assert_allclose(steps[[4, 14]], 0.5)  # all the way is made on the two beats
    np.testing.assert_allclose(onset_fractions(onset, 0, 20, smooth=1.0), np.arange(20) / 20)
    half = onset_fractions(onset, 0, 20, smooth=0.5)
    np.testing.assert_allclose(half, (u + np.arange(20) / 20) / 2)
    np.testing.assert_allclose(onset_fractions(np.zeros(8), 0, 8), np.arange(8) / 8)  # silence: even


def test_keyframes_pinned_in_seconds_fall_on_their_frames(beat):
    env = onset_envelope(beat[0], FPS)
    tl = Timeline([Keyframe("a"), Keyframe("b", at=1.5), Keyframe("c", at=3.0)], fps=FPS, audio=env, loop=True)
    plan = plan_frames(tl)
    assert len(plan) == 48
    starts = [int(np.flatnonzero(plan.segment == i)[0]) for i in range(3)]
    assert starts == [0, 18, 36] and (plan.frac[starts] == 0).all()
    unpinned = plan_frames(Timeline([Keyframe("a"), Keyframe("b"), Keyframe("c")], fps=FPS, audio=env))
    assert len(unpinned) == 48 and unpinned.frac[-1] == 1.0
    assert int(np.flatnonzero(unpinned.segment == 1)[0]) == round(47 / 2)  # spread evenly between the ends


def test_frames_move_most_on_the_clicks_of_a_rendered_walk(beat):
    """The acceptance figure: the correlation between each frame's distance from the one before and the onset
    strength of that frame, on the teaching model."""
    from helpers.backends import choose_backend
    from helpers.metrics import adjacent_distances
    from helpers.timeline import render_timeline

    teaching = choose_backend("teaching", "text2img")
    env = onset_envelope(beat[0], FPS)
    tl = Timeline([Keyframe("a big red heart on a white background", seed=0),
                   Keyframe("a big blue heart on a white background", seed=1, at=2.0)],
                  fps=FPS, audio=env, loop=True, smooth=0.1)
    frames = render_timeline(teaching.pipe, tl, output_type="np", progress=False, **teaching.render_kwargs())
    d = adjacent_distances(frames, "rmse")  # d[k]: frame k → k+1
    r = float(np.corrcoef(d, env.onset[1:])[0, 1])
    print(f"correlation of frame distance with onset strength: r = {r:.3f} over {len(d)} steps")
    assert r > 0.6


def test_the_mp4_carries_the_sound_for_exactly_as_long_as_the_video(beat, tmp_path):
    from helpers.media import export_mp4, stream_seconds

    song = write_audio(tmp_path / "beat.wav", beat[0])
    frames = [np.full((16, 16, 3), i * 5, dtype=np.uint8) for i in range(48)]
    video = export_mp4(frames, tmp_path / "walk.mp4", fps=FPS, audio=song)
    seconds = stream_seconds(video)
    print("stream durations:", seconds)
    assert seconds["video"] == pytest.approx(4.0, abs=1 / FPS)
    assert abs(seconds["audio"] - seconds["video"]) <= 1 / FPS
    silent = stream_seconds(export_mp4(frames, tmp_path / "silent.mp4", fps=FPS))
    assert "audio" not in silent


def test_bad_audio_is_one_clear_error(tmp_path):
    (tmp_path / "notes.wav").write_text("not audio")
    with pytest.raises(AudioError, match="not audio that librosa can decode"):
        onset_envelope(tmp_path / "notes.wav", FPS)
    with pytest.raises(AudioError, match="no audio file at"):
        onset_envelope(tmp_path / "missing.flac", FPS)
    with pytest.raises(AudioError, match="no onsets"):
        onset_envelope(np.zeros(22050, dtype=np.float32), FPS)
    with pytest.raises(AudioError, match="less than two frames"):
        onset_envelope(click_track(120, 0.1), FPS)
    env = onset_envelope(click_track(120, 2.0), FPS)
    with pytest.raises(ValueError, match="music sets the segments' lengths"):
        plan_frames(Timeline([Keyframe("a", frames=4), Keyframe("b")], fps=FPS, audio=env))
    with pytest.raises(ValueError, match="made at 12 fps but the timeline plays at 24"):
        plan_frames(Timeline([Keyframe("a"), Keyframe("b")], fps=24, audio=env))


def test_a_walk_file_timed_to_music_resumes_and_refuses_other_music(tmp_path, capsys):
    """Rerun: nothing is rendered again (the music's onsets and the inverted picture give the same inputs);
    another smooth: is another walk, refused with one error until --overwrite."""
    from PIL import Image

    from helpers.walks import main

    write_audio(tmp_path / "beat.wav", click_track(240, 1.0))
    Image.new("RGB", (32, 32), (20, 160, 40)).save(tmp_path / "photo.png")
    walk = tmp_path / "walk.yaml"
    text = ("model: tiny-sd\nsteps: 2\nformats: [mp4]\nfps: 8\naudio: beat.wav\nsmooth: 0.2\nloop: true\n"
            "keyframes:\n  - prompt: a red heart\n  - image: photo.png\n    at: 0.5\n")
    walk.write_text(text)
    args = [str(walk), "--out", str(tmp_path / "out"), "--no-progress"]
    assert main(args) == 0
    assert "rendered 8 frame(s), 0 already done" in capsys.readouterr().out
    assert main(args) == 0
    assert "rendered 0 frame(s), 8 already done" in capsys.readouterr().out
    walk.write_text(text.replace("smooth: 0.2", "smooth: 0.5"))
    assert main(args) == 2
    err = capsys.readouterr().err
    assert err.count("error:") == 1 and "Traceback" not in err and "--overwrite" in err
