"""Walks timed to music: the beat that moves the frames, and the sound track the MP4 carries.

Introduced in notebook 09_timelines_and_music. The recipe is stable-diffusion-videos' audio mode, rebuilt on
librosa: separate the percussive part of the sound (harmonic-percussive source separation), measure its onset
strength (how suddenly the spectrum gains energy: a drum hit scores high, a held chord low), keep the strongest
onset heard during each video frame, and let each frame move from the one before by a share of the segment's
way proportional to that frame's onset. The fraction λ along a segment is then the normalised cumulative sum
of the onsets, so the picture jumps on the beats and rests between them; ``smooth`` blends in even spacing.

Nothing downloads: the audio is a file of the user's (anything librosa decodes: WAV, FLAC, OGG, MP3) or an
array made in code, such as :func:`click_track`.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from helpers.checks import check_real

#: The rate audio is read at (librosa's default): plenty for onsets, and the same on every machine.
SAMPLE_RATE = 22_050
#: Samples between two onset-envelope values (≈ 23 ms at 22,050 Hz: finer than any video frame).
HOP_LENGTH = 512
#: The onsets are worked out this many seconds of sound at a time (bounded memory for long songs), each block
#: with this much sound either side as context.
BLOCK_SECONDS = 30.0
CONTEXT_SECONDS = 3.0
#: Audio longer than this is refused (a walk of 100,000 frames at 12 fps is 2.3 hours).
MAX_SECONDS = 3 * 3600.0


class AudioError(ValueError):
    """An audio file that cannot be used: missing, undecodable, silent or too long; the message says which."""


@dataclass(frozen=True, eq=False)
class OnsetEnvelope:
    """The beat of a piece of music at a video's frame rate.

    ``onset[k]`` is the strongest percussive onset heard during frame k (from k/fps to (k+1)/fps seconds),
    scaled so that the strongest of the piece is 1; there are ``round(duration * fps)`` frames. ``path`` is the
    file it was read from (what an MP4 takes its sound track from), or None for an array.
    Introduced in notebook 09_timelines_and_music.
    """

    onset: np.ndarray
    fps: float
    duration: float
    path: str | None = None

    def __len__(self) -> int:
        return len(self.onset)


def load_audio(path: str | os.PathLike, *, sr: int = SAMPLE_RATE) -> np.ndarray:
    """The file's sound as mono float32 samples at ``sr`` Hz (librosa), or one :class:`AudioError`."""
    import librosa

    p = Path(path).expanduser()
    if not p.is_file():
        raise AudioError(f"no audio file at {str(p)!r}")
    try:
        with warnings.catch_warnings():  # librosa warns before it falls back from soundfile to audioread
            warnings.simplefilter("ignore")
            y, _ = librosa.load(p, sr=sr, mono=True)
    except Exception as exc:  # noqa: BLE001  # soundfile / audioread raise many kinds; one message for all
        raise AudioError(f"{p.name} is not audio that librosa can decode ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); use a WAV, FLAC, OGG or MP3 file") from None
    if y.size == 0:
        raise AudioError(f"{p.name} holds no sound (0 samples)")
    return y.astype(np.float32)


def audio_duration(path: str | os.PathLike) -> float:
    """Seconds of sound in the file, read from its header where it has one; :class:`AudioError` otherwise."""
    import librosa

    p = Path(path).expanduser()
    if not p.is_file():
        raise AudioError(f"no audio file at {str(p)!r}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            seconds = float(librosa.get_duration(path=p))
    except Exception as exc:  # noqa: BLE001  # soundfile / audioread raise many kinds; one message for all
        raise AudioError(f"{p.name} is not audio that librosa can decode ({type(exc).__name__}: "
                         f"{' '.join(str(exc).split())[:200]}); use a WAV, FLAC, OGG or MP3 file") from None
    if not seconds > 0:
        raise AudioError(f"{p.name} holds no sound (0 s)")
    if seconds > MAX_SECONDS:
        raise AudioError(f"{p.name} lasts {seconds / 3600:.1f} hours; at most {MAX_SECONDS / 3600:g} are used")
    return seconds


def onset_envelope(audio: str | os.PathLike | np.ndarray, fps: float, *, sr: int = SAMPLE_RATE) -> OnsetEnvelope:
    """The :class:`OnsetEnvelope` of ``audio`` (a file, or mono samples at ``sr`` Hz) at ``fps`` frames per
    second: librosa's harmonic-percussive separation, the onset strength of the percussive part, then the
    maximum over each frame's time span. Introduced in notebook 09_timelines_and_music."""
    import librosa

    fps = check_real("fps", fps, low=0.5, high=120.0)
    path = None
    if isinstance(audio, (str, os.PathLike)):
        path = str(Path(audio).expanduser())
        y = load_audio(audio, sr=sr)
    else:
        y = np.asarray(audio, dtype=np.float32)
        if y.ndim != 1 or y.size == 0 or not np.isfinite(y).all():
            raise AudioError(f"audio samples must be a non-empty finite 1-D array, got shape {y.shape}")
    duration = y.size / sr
    if duration > MAX_SECONDS:
        raise AudioError(f"the audio lasts {duration / 3600:.1f} hours; at most {MAX_SECONDS / 3600:g} are used")
    n = round(duration * fps)
    if n < 2:
        raise AudioError(f"the audio lasts {duration:.3f} s, less than two frames at {fps:g} fps")
    envelope = _percussive_onsets(y, sr)
    times = librosa.frames_to_time(np.arange(len(envelope)), sr=sr, hop_length=HOP_LENGTH)
    which = np.minimum((times * fps).astype(np.int64), n - 1)  # the video frame each envelope value falls in
    per_frame = np.full(n, -np.inf)
    np.maximum.at(per_frame, which, envelope)
    empty = ~np.isfinite(per_frame)  # above ~43 fps some frames hold no envelope value: read it off the curve
    per_frame[empty] = np.interp(np.flatnonzero(empty) / fps, times, envelope)
    top = per_frame.max()
    if top <= 0:
        raise AudioError("the audio has no onsets (silence, or a sound that never changes): nothing to time "
                         "the frames to; use music with a beat, or no audio")
    return OnsetEnvelope(per_frame / top, fps, duration, path)


def _percussive_onsets(y: np.ndarray, sr: int) -> np.ndarray:
    """librosa's onset strength of the percussive part of ``y``, one value per ``HOP_LENGTH`` samples, worked
    out in blocks of :data:`BLOCK_SECONDS` (each with :data:`CONTEXT_SECONDS` of sound either side, so that the
    median filters and the spectral difference see what they would see in one piece): the memory a song
    needs does not grow with its length."""
    import librosa

    block = int(BLOCK_SECONDS * sr) // HOP_LENGTH * HOP_LENGTH
    context = int(CONTEXT_SECONDS * sr) // HOP_LENGTH * HOP_LENGTH
    pieces = []
    for start in range(0, len(y), block):
        lo = max(0, start - context)
        piece = y[lo:min(len(y), start + block + context)]
        env = librosa.onset.onset_strength(y=librosa.effects.percussive(piece), sr=sr, hop_length=HOP_LENGTH)
        first = (start - lo) // HOP_LENGTH
        count = len(range(start, min(len(y), start + block), HOP_LENGTH))
        if start + block >= len(y):  # the last block: librosa's centred frames give one value past the end
            count = len(env) - first
        pieces.append(env[first:first + count])
    return np.concatenate(pieces)


def onset_fractions(onset: np.ndarray, start: int, n: int, *, smooth: float = 0.0) -> np.ndarray:
    """λ (before easing) of the ``n`` frames of a segment that begins at frame ``start``: the share of the
    segment's onset strength heard so far. The step into frame j weighs ``onset[j]``; the segment's last step
    leads into the next keyframe at frame ``start + n`` (frame 0 again at the end of a loop). ``smooth`` in
    [0, 1] blends in even spacing (``u = k / n``); a silent segment is spaced evenly.
    Introduced in notebook 09_timelines_and_music."""
    smooth = check_real("smooth", smooth, low=0.0, high=1.0)
    onset = np.asarray(onset, dtype=np.float64)
    steps = onset[(start + 1 + np.arange(n)) % len(onset)]
    even = np.arange(n, dtype=np.float64) / n
    total = steps.sum()
    if total <= 0:
        return even
    heard = np.concatenate([[0.0], np.cumsum(steps)[:-1]]) / total
    return (1.0 - smooth) * heard + smooth * even


def click_track(bpm: float, seconds: float, *, sr: int = SAMPLE_RATE, click_ms: float = 15.0,
                seed: int = 0) -> np.ndarray:
    """A metronome: a short burst of decaying noise on every beat at ``bpm``, silence between, ``seconds``
    long (mono float32 at ``sr`` Hz). The beats fall at 0, 60/bpm, 2·60/bpm, … seconds.
    Introduced in notebook 09_timelines_and_music."""
    bpm = check_real("bpm", bpm, low=1.0, high=1000.0)
    seconds = check_real("seconds", seconds, low=0.1, high=MAX_SECONDS)
    y = np.zeros(round(seconds * sr), dtype=np.float32)
    length = max(1, round(click_ms / 1000 * sr))
    burst = np.random.default_rng(seed).standard_normal(length) * np.exp(-np.arange(length) / (length / 5))
    for t in beat_times(bpm, seconds):
        i = round(t * sr)
        piece = burst[: len(y) - i]
        y[i:i + len(piece)] += 0.8 * piece.astype(np.float32)
    return y


def beat_times(bpm: float, seconds: float) -> np.ndarray:
    """The times in seconds of the beats of :func:`click_track` (``bpm``, ``seconds`` long)."""
    return np.arange(0.0, seconds, 60.0 / bpm)


def write_audio(path: str | os.PathLike, samples: Any, *, sr: int = SAMPLE_RATE) -> Path:
    """Write mono samples in [-1, 1] as a 16-bit WAV or FLAC file (soundfile; the suffix chooses), atomically;
    return its path. Introduced in notebook 09_timelines_and_music."""
    import soundfile

    from helpers.media import atomic_write

    target = Path(path).expanduser()
    formats = {".wav": "WAV", ".flac": "FLAC"}
    if target.suffix.lower() not in formats:
        raise ValueError(f"write_audio writes .wav or .flac files, got {target.name!r}")
    y = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 1.0)
    with atomic_write(target) as tmp:
        soundfile.write(tmp, y, sr, subtype="PCM_16", format=formats[target.suffix.lower()])
    return target


__all__ = ["SAMPLE_RATE", "HOP_LENGTH", "AudioError", "OnsetEnvelope", "load_audio", "onset_envelope",
           "onset_fractions", "audio_duration", "click_track", "beat_times", "write_audio"]
