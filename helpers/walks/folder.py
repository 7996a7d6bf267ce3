"""Resumable renders of a whole walk into a folder: the frames as PNGs, a manifest and a commit log.

Introduced in notebook 04_prompt_walks. :func:`render_walk` renders the frames in chunks with
:func:`helpers.render.render_frames` and commits each chunk (frames first, then one fsynced line of
``commits.jsonl``), so an interrupted run resumes from its last committed chunk, byte for byte. The manifest
pins the walk's inputs (a digest of every tensor and of the weights), so a folder is never continued with a
different walk. See the README's "Safety of render folders".
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import numbers
import os
import re
import secrets
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.devices import check_seed
from helpers.pipeline_info import model_dtype, render_kind
from helpers.render import NonFiniteFramesError, check_inputs, plan_batch_size, render_frames

#: Walks longer than this render with a warning (see the README's "Safety of render folders").
LARGE_WALK_FRAMES = 10_000


# ------------------------------------------------------------------------------------ resumable renders

MANIFEST_NAME = "manifest.json"
MANIFEST_FORMAT = "latent-walks/render-manifest"
MANIFEST_VERSION = 2
#: Append-only commit log beside the manifest: one JSON line per committed chunk, folded into the manifest at
#: the start and the end of every run, so a commit costs the same whatever the walk's length.
COMMITS_NAME = "commits.jsonl"
_LOCK_NAME = ".manifest.lock"


class WalkFolderError(ValueError):
    """The output folder holds a different walk (or an unreadable manifest): nothing was rendered."""


class WalkWriteError(WalkFolderError):
    """Frames could not be written (a full disk, a read-only folder): what was committed is kept, and the
    same walk resumes when run again."""


class SafetyCheckerError(WalkFolderError):
    """The pipeline's safety checker blacked out frames: they are refused, never committed as frames."""


class ForeignFolderError(WalkFolderError):
    """The folder's manifest was not written by :func:`render_walk`: it is refused, even with
    ``overwrite=True``, and nothing in it is deleted."""


@dataclass
class WalkRender:
    """What :func:`render_walk` did: the frame files (in order), and which frames this call rendered."""

    out_dir: Path
    frames: list[Path]
    rendered: list[int]
    skipped: list[int]
    manifest: Path

    def images(self) -> list[Any]:
        """The frames as PIL images (loaded from the PNGs)."""
        from PIL import Image

        out = []
        for path in self.frames:
            with Image.open(path) as im:
                out.append(im.convert("RGB"))
        return out


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _tensor_digest(tensors: dict[str, torch.Tensor | None]) -> str:
    """sha256 over the names, shapes, dtypes and raw bytes of the per-frame input tensors."""
    h = hashlib.sha256()
    for name in sorted(tensors):
        t = tensors[name]
        if t is None:
            h.update(f"{name}:none;".encode())
            continue
        t = t.detach().to("cpu").contiguous()
        h.update(f"{name}:{tuple(t.shape)}:{t.dtype};".encode())
        h.update(t.reshape(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()


def _weights_fingerprint(pipe: Any) -> str:
    """A fingerprint of every weight: a SHA-256 over each component's state dict (names, dtypes, shapes and
    bytes), cached per component and recomputed only when a tensor was replaced or changed in place (torch
    counts in-place writes in ``tensor._version``). Cost: one pass over the weights per load, measured at
    500 MiB/s on the project's 2-core CPU, i.e. about 4 s for Stable Diffusion 1.5 in half precision (2 GiB)."""
    h = hashlib.sha256()
    components = getattr(pipe, "components", {}) or {}
    for name in sorted(components):
        module = components[name]
        if isinstance(module, torch.nn.Module):
            h.update(f"{name}:{_module_digest(module)};".encode())
    return h.hexdigest()[:16]


def _module_digest(module: torch.nn.Module) -> str:
    state = module.state_dict(keep_vars=True)
    key = tuple((k, v.data_ptr(), v._version, v.dtype, tuple(v.shape)) for k, v in state.items())
    cached = getattr(module, "_lw_digest", None)
    if cached is not None and cached[0] == key:
        return cached[1]
    h = hashlib.sha256()
    for k, v in state.items():
        t = v.detach()
        h.update(f"{k}|{t.dtype}|{tuple(t.shape)}|".encode())
        if t.numel():
            h.update(t.to("cpu").contiguous().reshape(-1).view(torch.uint8).numpy().data)
    digest = h.hexdigest()
    try:
        object.__setattr__(module, "_lw_digest", (key, digest))
    except (AttributeError, TypeError):  # a module that refuses attributes: no cache
        pass
    return digest


def _jsonable(value: Any) -> Any:
    """Pipeline keyword arguments and scheduler configs as plain JSON values (compared on resume)."""
    if isinstance(value, (str, bool)) or value is None:
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in sorted(value.items(), key=lambda kv: str(kv[0]))}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, torch.Tensor):
        return {"tensor_sha256": _tensor_digest({"t": value})}
    if isinstance(value, np.ndarray):
        return {"array_sha256": _sha256(np.ascontiguousarray(value).tobytes())}
    if isinstance(value, torch.dtype):
        return str(value)
    return repr(value)


def _versions() -> dict[str, str]:
    from importlib import metadata

    out = {}
    for dist in ("torch", "diffusers", "transformers", "accelerate", "numpy", "pillow"):
        try:
            out[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            out[dist] = "not installed"
    return out


def _frame_name(i: int, n: int) -> str:
    return f"frame_{i:0{max(5, len(str(n - 1)))}d}.png"


#: The only files render_walk ever deletes: frames its manifest lists and the temporary files of its own
#: atomic writes (frames, manifest and the exports' ``.walk.<hex>.part.gif``, as ``media.atomic_write`` names them).
_OWN_FILE = re.compile(
    r"frame_\d{5,}\.png|\.(frame_\d{5,}|manifest)\.[A-Za-z0-9_]+\.part\.(png|json)"
    r"|\.\.?(walk|contact_sheet)\.[0-9a-f]+\.part(\.[0-9a-f]+\.part)?\.(gif|mp4|png)"
)
_FRAME_FILE = re.compile(r"frame_\d{5,}\.png")
#: The exports a walk file writes beside its frames; each is recorded in the manifest with its sha256, and a
#: file of that name the manifest does not record (the user's own ``walk.gif``) is never replaced.
EXPORT_NAMES = ("walk.gif", "walk.mp4", "contact_sheet.png")


def _own_file(folder: Path, name: str) -> Path | None:
    """``folder / name`` if it is a regular file (not a link) that render_walk may have written, else None."""
    if not _OWN_FILE.fullmatch(name):
        return None
    path = folder / name
    return path if path.is_file() and not path.is_symlink() else None


def _open_no_follow(path: Path, flags: int) -> Any:
    """Open ``path`` as a file object without following a symbolic link at its name: a render folder that
    arrives with ``.walk.lock`` pointing elsewhere must not make the render create or append to the link's
    target (``open(…, "a+")`` would)."""
    try:
        fd = os.open(path, flags | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0), 0o666)
    except OSError:
        if path.is_symlink():
            raise WalkFolderError(
                f"{path} is a symbolic link; render_walk never writes through a link in its folder. Delete the "
                "link (its target is not touched) and run again."
            ) from None
        raise
    return os.fdopen(fd, "a+" if flags & os.O_RDWR else "a", encoding="utf-8")


@contextlib.contextmanager
def _locked(folder: Path) -> Iterator[None]:
    """An exclusive lock on the folder's manifest (several processes of one distributed render share it)."""
    try:
        import fcntl
    except ImportError:  # Windows: one process per folder
        yield
        return
    with _open_no_follow(folder / _LOCK_NAME, os.O_RDWR | os.O_CREAT) as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _read_manifest(folder: Path) -> dict[str, Any] | None:
    path = folder / MANIFEST_NAME
    if not path.exists():
        return None
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise WalkFolderError(
            f"{path} cannot be read ({type(exc).__name__}: {exc}); use a new folder or pass overwrite=True"
        ) from None
    if not isinstance(data, dict) or data.get("format") != MANIFEST_FORMAT or "parameters" not in data:
        raise ForeignFolderError(
            f"{path} is not a render_walk manifest, so nothing in this folder is touched; use a new folder"
        )
    frames = data.get("frames")
    n = len(frames) if isinstance(frames, list) else 0
    if not isinstance(frames, list) or not all(
        isinstance(f, dict) and f.get("index") == i and f.get("file") == _frame_name(i, n)
        and f.get("status") in ("pending", "done") for i, f in enumerate(frames)
    ):
        raise ForeignFolderError(
            f"{path} names files render_walk does not write (its frames are frame_00000.png, … in order); it was "
            "not written by render_walk, so nothing in this folder is touched. Use a new folder."
        )
    _apply_commits(folder, frames)
    return data


_SHA256 = re.compile(r"[0-9a-f]{64}")


def _apply_commits(folder: Path, frames: list[dict[str, Any]]) -> None:
    """Mark the frames of every complete line of the commit log as done (a line torn by a kill, or one that
    does not describe a frame of this walk, is ignored: its chunk is simply rendered again)."""
    try:
        text = (folder / COMMITS_NAME).read_text(encoding="utf-8")
    except FileNotFoundError:
        return
    except (OSError, ValueError) as exc:
        raise WalkFolderError(f"{folder / COMMITS_NAME} cannot be read ({type(exc).__name__}: {exc})") from None
    for line in text.split("\n")[:-1]:  # the last piece is "" or a torn line
        try:
            records = json.loads(line)["frames"]
            updates = [(int(r["index"]), str(r["sha256"]), int(r["renders"])) for r in records]
        except (ValueError, KeyError, TypeError):
            continue
        if all(0 <= i < len(frames) and _SHA256.fullmatch(sha) and k >= 1 for i, sha, k in updates):
            for i, sha, k in updates:
                frames[i].update(status="done", sha256=sha, renders=k)


def _append_commit(folder: Path, records: list[dict[str, Any]]) -> None:
    """Commit a chunk: one line appended to the commit log and flushed to disk (the caller holds the lock)."""
    with _open_no_follow(folder / COMMITS_NAME, os.O_WRONLY | os.O_CREAT | os.O_APPEND) as fh:
        fh.write(json.dumps({"frames": records}, separators=(",", ":")) + "\n")
        fh.flush()
        os.fsync(fh.fileno())


def _compact(folder: Path, manifest: dict[str, Any]) -> None:
    """Write ``manifest`` (the commit log already folded in) and start an empty log."""
    _write_manifest(folder, manifest)
    (folder / COMMITS_NAME).unlink(missing_ok=True)


def _write_manifest(folder: Path, data: dict[str, Any]) -> None:
    from helpers.media import atomic_write

    with atomic_write(folder / MANIFEST_NAME) as tmp:
        tmp.write_text(json.dumps(data, indent=1) + "\n", encoding="utf-8")


def _short(value: Any, limit: int = 80) -> str:
    text = json.dumps(value, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _differences(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> list[str]:
    out = []
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key, "<unset>"), new.get(key, "<unset>")
        if isinstance(a, dict) and isinstance(b, dict):
            out.extend(_differences(a, b, f"{prefix}{key}."))
        elif a != b:
            out.append(f"{prefix}{key}: {_short(a)} in the folder, {_short(b)} now")
    return out


def _clean_partial_files(folder: Path) -> list[Path]:
    """Delete temporary files left by a killed writer (``atomic_write`` names them ``.<stem>.*.part<suffix>``)."""
    removed = []
    for path in folder.glob(".*.part.*"):
        own = _own_file(folder, path.name)
        if own is not None:
            own.unlink(missing_ok=True)
            removed.append(own)
    return removed


def _file_ok(path: Path, sha: str | None) -> bool:
    try:
        return sha is not None and _sha256(path.read_bytes()) == sha
    except OSError:
        return False


def _png_bytes(image: Any) -> bytes:
    buf = io.BytesIO()
    image.save(buf, format="PNG")
    return buf.getvalue()


def _remove_walk_files(folder: Path, manifest: dict[str, Any]) -> None:
    """Delete this walk's own frames (the ``frame_NNNNN.png`` regular files its manifest lists, directly in
    ``folder``), its manifest, commit log and partial writes; nothing else, whatever the manifest says."""
    listed = {f.get("file") for f in manifest.get("frames", [])}
    for path in folder.iterdir():
        own = _own_file(folder, path.name)
        if own is not None and (path.name in listed or not _FRAME_FILE.fullmatch(path.name)):
            own.unlink(missing_ok=True)
    (folder / MANIFEST_NAME).unlink(missing_ok=True)
    (folder / COMMITS_NAME).unlink(missing_ok=True)


_RUN_LOCK_NAME = ".walk.lock"


@contextlib.contextmanager
def _run_lock(folder: Path, enabled: bool) -> Iterator[None]:
    """Hold an exclusive lock on ``folder`` for a whole render (one walk per folder at a time).

    ``flock`` locks belong to the open file, so the kernel releases them when the process dies, even by
    kill -9: a stale lock file is harmless and reused. Only the main process of an accelerate launch takes it
    (the launch's other processes share the folder by design). A start that fails removes the lock file it
    created (and the folder, if it created that and it stayed empty).
    """
    try:
        import fcntl
    except ImportError:  # Windows: no advisory locks; one process per folder
        enabled = False
    if not enabled or (folder.exists() and not folder.is_dir()):
        yield
        return
    created = not folder.exists()
    folder.mkdir(parents=True, exist_ok=True)
    lock = folder / _RUN_LOCK_NAME
    new_lock = not lock.exists() and not lock.is_symlink()
    new_manifest_lock = not (folder / _LOCK_NAME).exists()
    fh = _open_no_follow(lock, os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise WalkFolderError(
                f"another render is writing into {folder} right now; wait for it to finish, or use another folder"
            ) from None
        yield
    except BaseException:
        if new_lock and fh.closed is False:  # a refused or failed start leaves the folder as it found it
            lock.unlink(missing_ok=True)
            if new_manifest_lock and not (folder / MANIFEST_NAME).exists():
                (folder / _LOCK_NAME).unlink(missing_ok=True)
        fh.close()
        if created and not any(folder.iterdir()):
            folder.rmdir()
        raise
    else:
        fh.close()


def render_walk(
    pipe: Any,
    out_dir: str | os.PathLike,
    *,
    prompt_embeds: torch.Tensor | None = None,
    negative_prompt_embeds: torch.Tensor | None = None,
    image_embeddings: torch.Tensor | None = None,
    latents: torch.Tensor | None = None,
    super_res_latents: torch.Tensor | None = None,
    seed: int = 0,
    batch_size: int | None = None,
    model: str | None = None,
    overwrite: bool = False,
    progress: bool = True,
    state: Any = None,
    **pipe_kwargs: Any,
) -> WalkRender:
    """Render a walk into ``out_dir`` as ``frame_00000.png``, … with a manifest; safe to kill and rerun.

    Takes the same per-frame tensors as :func:`render_frames` (row i → frame i) plus ``seed``. The folder's
    ``manifest.json`` records every parameter that decides the pictures (a sha256 of the input tensors'
    bytes, the model name and a fingerprint of its weights, the scheduler, steps, guidance, size, seed,
    dtype, the frame count and the batch grid) with library versions and, per frame, its status, the sha256
    of its PNG and how many times it was written.

    Frames are rendered in fixed chunks of ``batch_size`` (the grid is stored, so a resumed render batches
    exactly like an uninterrupted one and gives byte-identical PNGs). A chunk is committed when the commit log
    says so: its PNGs are written first (each atomically), then one line is appended to ``commits.jsonl`` and
    flushed to disk; the manifest is rewritten (atomically, the log folded in) only at the start and the end
    of a run, so a commit costs the same however long the walk. Run
    again with the same arguments after an interruption (even ``kill -9``) and it renders only the chunks
    not committed yet: committed frames are never rendered again; half-written temporary files and PNGs of
    an uncommitted chunk are deleted; a committed PNG that is missing or whose bytes changed is re-rendered.
    Different parameters raise :class:`WalkFolderError` naming what changed, unless ``overwrite=True``
    (which deletes the old frames and starts again).

    ``state``: an ``accelerate.PartialState`` to split the pending chunks between processes (each writes its
    frames into the shared folder; the manifest is updated under a file lock). ``model``: a name for the
    manifest (e.g. ``"sd15"``). Returns a :class:`WalkRender`.

    Introduced in notebook 04_prompt_walks.
    """
    folder = _check_folder(out_dir)
    kind = render_kind(pipe)
    n = _check_walk_inputs(pipe, kind, prompt_embeds, negative_prompt_embeds, image_embeddings, latents,
                           super_res_latents, batch_size, pipe_kwargs)
    seed = check_seed(seed)
    with _run_lock(folder, enabled=state is None or state.is_main_process):
        return _render_walk(pipe, folder, kind, n, prompt_embeds=prompt_embeds,
                            negative_prompt_embeds=negative_prompt_embeds, image_embeddings=image_embeddings,
                            latents=latents, super_res_latents=super_res_latents, seed=seed, batch_size=batch_size,
                            model=model, overwrite=overwrite, progress=progress, state=state, **pipe_kwargs)


def _check_folder(out_dir: Any) -> Path:
    """The output folder as a path, refused up front when it is empty or is (or lies inside) a file."""
    if not isinstance(out_dir, (str, os.PathLike)) or not str(out_dir).strip():
        raise ValueError(f"render_walk needs an output folder, e.g. 'renders/my_walk'; got {out_dir!r}")
    folder = Path(out_dir).expanduser()
    for path in (folder, *folder.parents):
        if path.is_symlink() and not path.exists():
            raise WalkFolderError(f"{path} is a link to a folder that does not exist; create its target or "
                                  "choose another folder")
        if path.exists() and not path.is_dir():
            where = "is a file" if path == folder else f"is inside {path}, which is a file"
            raise WalkFolderError(f"{folder} {where}; render_walk needs a folder for the frames")
    return folder


def _render_walk(pipe: Any, folder: Path, kind: str, n: int, *, prompt_embeds, negative_prompt_embeds,
                 image_embeddings, latents, super_res_latents, seed, batch_size, model, overwrite, progress, state,
                 **pipe_kwargs) -> WalkRender:
    """:func:`render_walk` under its run lock: pin the walk in the manifest, render what is pending."""
    tensors = {
        "prompt_embeds": prompt_embeds,
        "negative_prompt_embeds": negative_prompt_embeds,
        "image_embeddings": image_embeddings,
        "latents": latents,
        "super_res_latents": super_res_latents,
    }
    parameters = _walk_parameters(pipe, tensors, n, model, seed, pipe_kwargs)
    is_main = state is None or state.is_main_process
    existing, overwrite, batch_size = _existing_walk(folder, parameters, overwrite, batch_size)
    batch_size = plan_batch_size(pipe, n, batch_size, pipe_kwargs)
    parameters["batch_size"] = int(batch_size)
    if is_main:
        _prepare_folder(folder, pipe, existing, overwrite, parameters, n)
    if state is not None:
        state.wait_for_everyone()
    manifest = _read_manifest(folder)  # the main process wrote it; every process reads it back
    if manifest is not None and state is not None:
        # the main process fixed the batch grid (auto batch sizes may differ between GPUs)
        parameters["batch_size"] = batch_size = manifest["parameters"].get("batch_size", batch_size)
    if manifest is None or manifest["parameters"] != parameters:
        raise WalkFolderError(f"{folder}: this process's walk differs from the main process's")
    if state is not None:
        state.wait_for_everyone()  # everyone has read the same pending list before anyone commits

    entries = manifest["frames"]
    chunks = [
        list(range(start, min(start + batch_size, n)))
        for start in range(0, n, batch_size)
        if any(entries[i]["status"] != "done" for i in range(start, min(start + batch_size, n)))
    ]
    skipped = [e["index"] for e in entries if e["status"] == "done"]
    mine = chunks
    if state is not None and state.num_processes > 1:
        with state.split_between_processes(chunks) as part:
            mine = list(part)
    per_frame = {k: v for k, v in tensors.items() if v is not None}
    rendered = _render_pending(pipe, folder, entries, mine, per_frame, seed, progress, len(skipped), pipe_kwargs)
    if state is not None:
        state.wait_for_everyone()
    if is_main:
        with _locked(folder), contextlib.suppress(OSError):  # fold the log in; kept as is if that fails
            final = _read_manifest(folder)
            if final is not None:  # None only if another run replaced the folder meanwhile: leave it be
                _compact(folder, final)
    return WalkRender(
        out_dir=folder,
        frames=[folder / e["file"] for e in entries],
        rendered=rendered,
        skipped=skipped,
        manifest=folder / MANIFEST_NAME,
    )


def _check_walk_inputs(pipe: Any, kind: str, prompt_embeds: Any, negative_prompt_embeds: Any, image_embeddings: Any,
                       latents: Any, super_res_latents: Any, batch_size: Any, pipe_kwargs: dict[str, Any]) -> int:
    """Everything that can be refused before the folder is touched (render_frames' own gate, then what only a
    walk on disk refuses); returns the number of frames."""
    name = "prompt_embeds" if kind == "text2img" else "image_embeddings"
    if (prompt_embeds if kind == "text2img" else image_embeddings) is None:
        raise ValueError(f"render_walk needs {name}, one row per frame (see render_frames)")
    fixed = sorted(set(pipe_kwargs) & {"output_type", "generator", "flags_out"})
    if fixed:
        raise TypeError(f"render_walk takes no {fixed}: it writes PNG frames and draws every frame's noise from "
                        "seed= (recorded in the manifest, so a resumed run gives the same bytes); pass seed=")
    cond = check_inputs(pipe, kind, prompt_embeds=prompt_embeds, negative_prompt_embeds=negative_prompt_embeds,
                        image_embeddings=image_embeddings, latents=latents, super_res_latents=super_res_latents,
                        batch_size=batch_size, pipe_kwargs=pipe_kwargs)
    n = int(cond.shape[0])
    if n > LARGE_WALK_FRAMES:
        warnings.warn(f"a walk of {n} frames is large (over {LARGE_WALK_FRAMES}): its inputs stay in memory and "
                      "its manifest is rewritten at every start; consider fewer frames or several walks",
                      stacklevel=3)
    return n


def _walk_parameters(pipe: Any, tensors: dict[str, Any], n: int, model: Any, seed: int,
                     pipe_kwargs: dict[str, Any]) -> dict[str, Any]:
    """What pins a walk: its inputs' and weights' digests, the scheduler, the seed, dtype and settings."""
    scheduler = getattr(pipe, "scheduler", None) or getattr(pipe, "decoder_scheduler", None)
    return {
        "frames": n,
        "inputs_sha256": _tensor_digest(tensors),
        "model": model or getattr(pipe, "name_or_path", None) or type(pipe).__name__,
        "pipeline": type(pipe).__name__,
        "weights": _weights_fingerprint(pipe),
        "scheduler": {
            "class": type(scheduler).__name__,
            "config": _jsonable(
                {k: v for k, v in dict(getattr(scheduler, "config", {}) or {}).items() if not k.startswith("_")}
            ),
        },
        "seed": seed,
        "dtype": str(model_dtype(pipe)).removeprefix("torch."),
        "pipe_kwargs": _jsonable(pipe_kwargs),
    }


def _existing_walk(folder: Path, parameters: dict[str, Any], overwrite: bool,
                   batch_size: int | None) -> tuple[dict[str, Any] | None, bool, int | None]:
    """The folder's manifest, refused when it holds another walk; a resumed walk keeps its batch grid."""
    try:
        existing = _read_manifest(folder) if folder.is_dir() else None
    except ForeignFolderError:
        raise  # never cleaned, not even with overwrite=True
    except WalkFolderError:
        if not overwrite:
            raise
        existing = {"frames": []}  # unreadable: replaced below
    if existing is not None and not any(f.get("status") == "done" for f in existing.get("frames", [])):
        overwrite = True  # nothing rendered there yet (e.g. a first attempt that failed): nothing to protect
    if existing is not None and not overwrite:
        old = dict(existing["parameters"])
        grid = old.pop("batch_size", None)
        changed = _differences(old, parameters)
        if changed:
            raise WalkFolderError(
                f"{folder} holds a different walk; changed: " + "; ".join(changed)
                + ". Use a new folder, or pass overwrite=True (--overwrite) to replace it."
            )
        if batch_size is not None and batch_size != grid:
            warnings.warn(
                f"resuming with the folder's batch size {grid} (not {batch_size}) so that every frame is "
                "rendered in the same batch as an uninterrupted run",
                stacklevel=4,
            )
        batch_size = grid
    _refuse_foreign_frames(folder, existing, parameters["frames"])
    return existing, overwrite, batch_size


def _refuse_foreign_frames(folder: Path, manifest: dict[str, Any] | None, n: int) -> None:
    """Refuse, whatever the flags, a folder with ``frame_NNNNN.png`` files but no manifest (the user's own frames,
    say from ffmpeg), or one whose manifest does not list a frame file that this ``n``-frame walk would write."""
    if not folder.is_dir():
        return
    listed = {f.get("file") for f in (manifest or {}).get("frames", [])}
    ours = {_frame_name(i, n) for i in range(n)}
    foreign = sorted(p.name for p in folder.iterdir() if _FRAME_FILE.fullmatch(p.name) and p.name not in listed
                     and (manifest is None or p.name in ours))
    if foreign:
        why = "it has no manifest.json" if manifest is None else "its manifest.json does not list them"
        more = f" and {len(foreign) - 3} more" if len(foreign) > 3 else ""
        raise ForeignFolderError(
            f"{folder} holds frame files that render_walk did not write ({', '.join(foreign[:3])}{more}; {why}), "
            "so nothing in this folder is touched, with or without overwrite. Render into a new folder, or move "
            "those files away first."
        )


def _prepare_folder(folder: Path, pipe: Any, existing: dict[str, Any] | None, overwrite: bool,
                    parameters: dict[str, Any], n: int) -> None:
    """(Main process.) Replace or keep the old walk, drop partial files and frames that changed, write the
    manifest."""
    folder.mkdir(parents=True, exist_ok=True)
    with _locked(folder):
        exports = (existing or {}).get("exports", {})  # still ours to replace after an overwrite
        if existing is not None and overwrite:
            _remove_walk_files(folder, existing)
            existing = None
        _clean_partial_files(folder)
        manifest = existing or {
            "format": MANIFEST_FORMAT,
            "version": MANIFEST_VERSION,
            "parameters": parameters,
            "frames": [
                {"index": i, "file": _frame_name(i, n), "status": "pending", "sha256": None, "renders": 0}
                for i in range(n)
            ],
            "exports": exports,
        }
        manifest["info"] = {
            "updated": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "device": str(pipe._execution_device),
            "library_versions": _versions(),
        }
        for entry in manifest["frames"]:
            path = folder / entry["file"]
            if entry["status"] == "done" and not _file_ok(path, entry["sha256"]):
                warnings.warn(f"{path.name} is missing or changed since it was rendered: rendering it again",
                              stacklevel=4)
                entry["status"], entry["sha256"] = "pending", None
            if entry["status"] != "done" and _own_file(folder, entry["file"]) is not None:
                path.unlink(missing_ok=True)  # a PNG of an uncommitted chunk
        _compact(folder, manifest)


def _render_pending(pipe: Any, folder: Path, entries: list[dict[str, Any]], chunks: list[list[int]],
                    per_frame: dict[str, Any], seed: int, progress: bool, committed: int,
                    pipe_kwargs: dict[str, Any]) -> list[int]:
    """Render this process's chunks and commit each one (its PNGs, then one line of the log)."""
    from tqdm.auto import tqdm

    rendered: list[int] = []
    total = sum(len(c) for c in chunks)
    with tqdm(total=total, desc="frames", unit="frame", disable=not (progress and total), leave=False) as bar:
        for chunk in chunks:
            rows = slice(chunk[0], chunk[-1] + 1)
            inputs = {k: v if v.shape[0] == 1 else v[rows] for k, v in per_frame.items()}
            flags: list[bool] = []
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # flagged frames are refused below, with the reason
                try:
                    images = render_frames(
                        pipe, **inputs, seed=seed, batch_size=len(chunk), progress=False, flags_out=flags,
                        **pipe_kwargs
                    )
                except NonFiniteFramesError as exc:
                    bad = [chunk[0] + i for i in exc.frames]
                    raise NonFiniteFramesError(
                        f"the model returned NaN or inf pixels for frame(s) {bad}; they were not committed (nor the "
                        f"rest of their chunk), and the {committed + len(rendered)} frame(s) committed so far are "
                        "kept. Usually a half-precision overflow (load the model in float32) or extreme settings "
                        "(lower guidance_scale); then run the same walk again.", bad) from None
            if any(flags):
                bad = [i for i, f in zip(chunk, flags) if f]
                raise SafetyCheckerError(
                    f"the pipeline's safety checker blacked out frame(s) {bad}; they were not committed (nor the "
                    f"rest of their chunk), and the {committed + len(rendered)} frame(s) committed so far are "
                    "kept. Load the model with load_pipeline or choose_backend, which remove the checker (see the "
                    "README, \"Safety checker\"), or change the prompts, and run the same walk again."
                )
            todo = [i for i in chunk if entries[i]["status"] != "done"]
            _commit(folder, entries, todo, {i: _png_bytes(images[i - chunk[0]]) for i in todo},
                    committed + len(rendered))
            rendered.extend(todo)
            bar.update(len(chunk))
    return rendered


def _commit(folder: Path, entries: list[dict[str, Any]], todo: list[int], blobs: dict[int, bytes],
            committed: int) -> None:
    """Write a chunk's frames atomically, then its commit line: the frames count only once the line is there."""
    from helpers.media import atomic_write

    records = [{"index": i, "sha256": _sha256(blobs[i]), "renders": entries[i].get("renders", 0) + 1}
               for i in todo]
    try:
        for i in todo:
            with atomic_write(folder / entries[i]["file"]) as tmp:
                tmp.write_bytes(blobs[i])
        with _locked(folder):  # the commit point: one appended line
            _append_commit(folder, records)
    except OSError as exc:
        raise WalkWriteError(
            f"could not write into {folder}: {exc.strerror or exc} ({type(exc).__name__}). The "
            f"{committed} frame(s) committed so far are kept; free some space (or "
            "choose another folder) and run the same walk again to continue where it stopped."
        ) from None
    for record in records:
        entries[record["index"]].update(status="done", sha256=record["sha256"], renders=record["renders"])


def _written_here(path: Path, recorded: dict[str, list[str]]) -> bool:
    """Whether ``path`` is a regular file (not a link) whose bytes an export of this folder wrote."""
    if path.is_symlink() or not path.is_file():
        return False
    try:
        return _sha256(path.read_bytes()) in recorded.get(path.name, [])
    except OSError:
        return False


def check_exports(out_dir: str | os.PathLike, names: list[str]) -> list[Path]:
    """The paths of exports ``names`` (e.g. ``walk.gif``) in a render folder, refused with one
    :class:`ForeignFolderError` if any of them is a file or link the folder's manifest does not record as
    written by :func:`record_export` (see :func:`write_export`) with those very bytes: a render never replaces a file it did not write."""
    folder = Path(out_dir).expanduser()
    manifest = _read_manifest(folder) if folder.is_dir() else None
    recorded = (manifest or {}).get("exports", {})
    paths = [folder / name for name in names]
    foreign = [p.name for p in paths if (p.exists() or p.is_symlink()) and not _written_here(p, recorded)]
    if foreign:
        raise ForeignFolderError(
            f"{folder} already holds {', '.join(foreign)}, which this render did not write (or which changed since); "
            "nothing was replaced. Move or rename it, or render into a new folder, and run the same walk again: "
            "the frames are kept and only the exports are written."
        )
    return paths


def write_export(out_dir: str | os.PathLike, name: str, write: Callable[[Path], Any]) -> Path:
    """Write the export ``name`` (e.g. ``walk.gif``) into a render folder with ``write(path)`` and return its path.

    Refused (see :func:`check_exports`) if a file of that name there was not written by a render. The export is
    written to a temporary ``.walk.<hex>.part.gif`` first (which a rerun deletes if a kill leaves it), its
    sha256 is recorded in the manifest, and only then is it moved into place: a kill at any point leaves
    either the old file or one the manifest records, never a file the next run would refuse as foreign.
    """
    folder = Path(out_dir).expanduser()
    path = check_exports(folder, [name])[0]
    staging = folder / f".{path.stem}.{secrets.token_hex(4)}.part{path.suffix}"
    try:
        write(staging)
        sha = _sha256(staging.read_bytes())
        with _locked(folder):
            manifest = _read_manifest(folder)
            if manifest is None:
                raise WalkFolderError(f"{folder} has no {MANIFEST_NAME}: render the walk there before exporting")
            shas = [s for s in manifest.setdefault("exports", {}).get(name, []) if s != sha]
            manifest["exports"][name] = (shas + [sha])[-4:]  # the file in place, or the one about to replace it
            _compact(folder, manifest)
        os.replace(staging, path)
    except BaseException:
        staging.unlink(missing_ok=True)
        raise
    return path


def read_manifest(out_dir: str | os.PathLike) -> dict[str, Any]:
    """The manifest of a folder written by :func:`render_walk` (raises :class:`WalkFolderError` if none)."""
    data = _read_manifest(Path(out_dir).expanduser())
    if data is None:
        raise WalkFolderError(f"{out_dir} has no {MANIFEST_NAME}: it was not written by render_walk")
    return data
