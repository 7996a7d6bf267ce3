"""Loading diffusion pipelines: Stable Diffusion 1.5, Karlo unCLIP, the teaching models, tiny test pipelines.

Introduced in notebook 01_diffusion_basics (the Setup cell, through ``helpers.backends``): Stable Diffusion
1.5 and Karlo on a GPU, the teaching models or the tiny random pipelines elsewhere. Heavy imports
(diffusers, transformers) happen inside the functions, never at import time.

Memory options are chosen from the GPU's free memory before loading and the model's measured footprint
(:func:`memory_plan`, :data:`FOOTPRINTS`): half-precision weights plus the peak activations of one frame.

* the weights and four frames fit: nothing (diffusers' SDPA attention is already memory-efficient);
* the weights and one frame fit: VAE slicing (the VAE decodes a batch one image at a time; unCLIP has no VAE);
* the weights and one frame do not fit: VAE slicing and tiling and model CPU offload (each sub-model moves to
  the GPU only while it runs). Attention slicing never replaces SDPA on CUDA: diffusers warns of serious
  slow-downs, and it saves little over SDPA;
* Apple MPS: attention slicing (diffusers' advice for Macs); CPU: nothing (slicing only slows it down).
"""

from __future__ import annotations

import json
import os
import re
import zipfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import torch

from helpers.checks import check_kwargs
from helpers.devices import check_device, dtype_kwarg, free_memory_bytes, pick_dtype
from helpers.models import (
    FLOW_FOOTPRINTS,
    FOOTPRINTS,
    KARLO_ID,
    MODELS,
    RETIRED,
    SD15_ID,
    SDXL_ID,
    SDXL_TURBO_ID,
    names,
)

#: Registry names of the real models and their hub ids; the teaching models; retired names.
MODEL_ALIASES = {m.name: m.source for m in MODELS.values() if m.source}
TEACHING_MODELS = tuple(names(backend="teaching"))
RETIRED_MODELS = RETIRED

MEMORY_OPTIONS = ("vae_slicing", "vae_tiling", "attention_slicing", "model_cpu_offload", "sequential_cpu_offload")

_UNCLIP_COMPONENTS = (
    "decoder",
    "text_encoder",
    "tokenizer",
    "text_proj",
    "feature_extractor",
    "image_encoder",
    "super_res_first",
    "super_res_last",
    "decoder_scheduler",
    "super_res_scheduler",
)
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")

#: What :func:`load_pipeline` passes on to diffusers' ``from_pretrained`` / ``from_single_file``: its loading
#: options and the components of the pipelines helpers walks (``unet=``, ``safety_checker=None`` ...). Anything
#: else is refused with a did-you-mean: diffusers would only log that it ignores it.
LOAD_KWARGS = (
    "cache_dir", "force_download", "proxies", "local_files_only", "token", "revision", "variant",
    "use_safetensors", "low_cpu_mem_usage", "device_map", "max_memory", "offload_folder", "offload_state_dict",
    "quantization_config", "custom_pipeline", "custom_revision", "trust_remote_code", "disable_mmap",
    "config", "original_config", "original_config_file", "load_safety_checker",
    "vae", "text_encoder", "tokenizer", "unet", "scheduler", "safety_checker", "feature_extractor",
    "requires_safety_checker", "image_encoder", "text_encoder_2", "tokenizer_2", "force_zeros_for_empty_prompt",
    "add_watermarker", *_UNCLIP_COMPONENTS,
)


class ModelUnavailableError(RuntimeError):
    """The weights of a model could not be had (no network, not in the cache, not on the hub).

    ``model`` is the name that was asked for; ``reason`` is a one-line summary of the underlying error.
    """

    def __init__(self, message: str, *, model: str = "", reason: str = "") -> None:
        super().__init__(message)
        self.model = model
        self.reason = reason


# --------------------------------------------------------------------------------------------------------
# memory options


def memory_plan(free_bytes: int | None, device: str | torch.device, kind: str = "text2img") -> list[str]:
    """The memory options for a ``kind`` model (:data:`FOOTPRINTS`) on ``device`` with ``free_bytes`` free.

    Pure function; the policy is in the module docstring. ``free_bytes=None`` (unknown) gives VAE slicing.
    Options, in the order they are applied: ``"vae_slicing"``, ``"vae_tiling"``, ``"attention_slicing"``,
    ``"model_cpu_offload"``.

    Introduced in notebook 01_diffusion_basics.
    """
    device = torch.device(device)
    if device.type == "mps":
        return ["attention_slicing"]
    if device.type != "cuda":
        return []
    if kind in FLOW_FOOTPRINTS:
        return _flow_memory_plan(free_bytes, kind)
    if kind not in FOOTPRINTS:
        raise ValueError(f"kind must be one of {sorted([*FOOTPRINTS, *FLOW_FOOTPRINTS])}, got {kind!r}")
    vae = [] if kind == "unclip" else ["vae_slicing"]  # unCLIP pipelines have no VAE to slice
    if kind == "sdxl":  # a 1024x1024 decode (in float32: its VAE upcasts) is SDXL's peak: tile it too
        vae.append("vae_tiling")
    if free_bytes is None:  # unknown: be moderately careful
        return vae
    if free_bytes < 0:
        raise ValueError(f"free_bytes must be >= 0 or None, got {free_bytes}")
    weights, frame = FOOTPRINTS[kind]
    if free_bytes >= weights + 4 * frame:
        return []
    if free_bytes >= weights + frame:
        return vae
    return vae + (["vae_tiling"] if vae and "vae_tiling" not in vae else []) + ["model_cpu_offload"]


def _flow_memory_plan(free_bytes: int | None, name: str) -> list[str]:
    """SD 3 / FLUX (:data:`helpers.models.FLOW_FOOTPRINTS`, estimates): everything on the GPU when the weights
    and four frames fit; model CPU offload (T5 and the CLIPs wait in CPU memory while the transformer runs) when
    the largest component and a frame fit; else sequential offload, layer by layer. VAE slicing and tiling
    always (a 1,024 px decode is the peak of a batch). On a 24 GB card: SD 3.5 medium fits whole, SD 3.5 large
    offloads by model, FLUX.1 (23.8 GB of transformer) only sequentially; on a 16 GB T4, SD 3.5 medium offloads
    by model and the rest sequentially. A T4 has no bfloat16: load in float16 there."""
    vae = ["vae_slicing", "vae_tiling"]
    if free_bytes is None:
        return vae
    if free_bytes < 0:
        raise ValueError(f"free_bytes must be >= 0 or None, got {free_bytes}")
    weights, largest, frame = FLOW_FOOTPRINTS[name]
    if free_bytes >= weights + 4 * frame:
        return vae
    if free_bytes >= largest + frame:
        return vae + ["model_cpu_offload"]
    return vae + ["sequential_cpu_offload"]


def resolve_memory_options(
    memory: str | Iterable[str] | None, device: str | torch.device, kind: str = "text2img"
) -> list[str]:
    """``"auto"``: :func:`memory_plan` of the free memory; ``"none"``/``None``: ``[]``; lists are checked."""
    options = check_memory(memory)
    return memory_plan(free_memory_bytes(device), device, kind) if options is None else options


def check_memory(memory: Any) -> list[str] | None:
    """The memory options ``memory`` names, in the order they apply (``None`` for ``"auto"``, decided later from
    the free memory); one ``ValueError`` for anything else (an unknown name, a typo, a value that is no name)."""
    if memory is None or memory == "none":
        return []
    if memory == "auto":
        return None
    if isinstance(memory, str):
        memory = [memory]
    options = list(memory) if isinstance(memory, Iterable) else [memory]
    unknown = [o for o in options if o not in MEMORY_OPTIONS]
    if unknown:
        raise ValueError(
            f"unknown memory option(s) {unknown}; use 'auto', 'none' or a list drawn from "
            f"{list(MEMORY_OPTIONS)}"
        )
    return [o for o in MEMORY_OPTIONS if o in options]


def apply_memory_options(
    pipe: Any, options: Iterable[str], device: str | torch.device | None = None
) -> list[str]:
    """Move ``pipe`` to ``device`` and apply the memory ``options`` it supports; returns those applied.

    Options a pipeline lacks (e.g. VAE slicing on unCLIP, which has no VAE) are skipped; CPU offload is only
    possible on CUDA (elsewhere the pipeline is simply moved to the device).

    Introduced in notebook 01_diffusion_basics.
    """
    options = resolve_memory_options(list(options), device or "cpu")
    applied: list[str] = []
    device = torch.device(device) if device is not None else None
    if "sequential_cpu_offload" in options and device is not None and device.type == "cuda":
        pipe.enable_sequential_cpu_offload(device=device)
        applied.append("sequential_cpu_offload")
    elif "model_cpu_offload" in options and device is not None and device.type == "cuda":
        pipe.enable_model_cpu_offload(device=device)
        applied.append("model_cpu_offload")
    elif device is not None:
        pipe.to(device)
    vae: Any = getattr(pipe, "vae", None)
    if "vae_slicing" in options and hasattr(vae, "enable_slicing"):
        vae.enable_slicing()
        applied.append("vae_slicing")
    if "vae_tiling" in options and hasattr(vae, "enable_tiling"):
        vae.enable_tiling()
        applied.append("vae_tiling")
    if "attention_slicing" in options and hasattr(pipe, "enable_attention_slicing"):
        pipe.enable_attention_slicing()
        applied.append("attention_slicing")
    return [o for o in MEMORY_OPTIONS if o in applied]


# --------------------------------------------------------------------------------------------------------
# loading real models


def _offline() -> bool:
    return os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in ("1", "true", "yes", "on")


def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    cur: BaseException | None = exc
    while cur is not None and all(cur is not s for s in seen):
        seen.append(cur)
        cur = cur.__cause__ or cur.__context__
    return seen


def _is_unavailable(exc: BaseException) -> bool:
    """True when ``exc`` (or anything in its chain) means 'the files could not be fetched or found'."""
    for e in _chain(exc):
        if isinstance(e, (OSError, ConnectionError, TimeoutError)):
            return True
        module = type(e).__module__.split(".")[0]
        if module.startswith(("httpx", "httpcore", "requests", "urllib3", "huggingface_hub")):
            return True
    return False


def _first_line(exc: BaseException, limit: int = 300) -> str:
    text = f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _unavailable_message(name: str, repo_id: str, exc: BaseException) -> str:
    chain = _chain(exc)
    names = {type(e).__name__ for e in chain}
    if _offline() or "OfflineModeIsEnabled" in names:
        why = "it is not in the local Hugging Face cache and offline mode is on (HF_HUB_OFFLINE=1)"
    elif names & {"GatedRepoError"}:
        why = "the repository is gated: accept its licence on huggingface.co and log in with `hf auth login`"
    elif names & {"RepositoryNotFoundError", "RevisionNotFoundError"}:
        why = "the hub has no such repository (check the spelling, or log in if it is private)"
    else:
        why = "it is not in the local Hugging Face cache and the hub could not be reached"
    label = name if name == repo_id else f"{name!r} ({repo_id})"
    return (
        f"Cannot load model {label}: {why}.\n"
        "What to do:\n"
        "  1. run this where huggingface.co is reachable (e.g. Colab); the first load downloads the weights "
        "into the cache;\n"
        f"  2. or pre-download them into the cache on a connected machine: `hf download {repo_id}` "
        f"(older huggingface_hub: `huggingface-cli download {repo_id}`), then copy the cache folder "
        "(~/.cache/huggingface, or set HF_HOME);\n"
        '  3. or use the bundled teaching models, which need no download: load_pipeline("teaching") '
        'or load_pipeline("teaching-unclip").\n'
        f"(underlying error: {_first_line(exc)})"
    )


_WALKABLE = ("StableDiffusionPipeline", "StableDiffusionXLPipeline", "StableDiffusion3Pipeline", "FluxPipeline",
             "UnCLIPImageVariationPipeline")
_WALKS_WHAT = ("helpers walks Stable Diffusion 1.x/2.x, SDXL, SD 3 / 3.5 and FLUX.1 text-to-image pipelines and "
               "unCLIP image-variation (Karlo) pipelines")


def _check_pipeline_class(class_name: Any, where: str) -> None:
    """Refuse, before any weight loads, a pipeline class (a ``model_index.json``'s ``_class_name``) that diffusers
    has and helpers cannot walk. Names diffusers does not know, and custom code (``[module, class]``), are left
    to diffusers, which refuses them itself or runs them with ``trust_remote_code=True``."""
    if not isinstance(class_name, str) or not class_name:
        return
    if class_name.startswith("UnCLIP") and class_name != "UnCLIPImageVariationPipeline":
        raise ValueError(f"{where} holds an unCLIP pipeline of class {class_name}, not an unCLIP image-variation "
                         "folder (UnCLIPImageVariationPipeline, like kakaobrain/karlo-v1-alpha-image-variations); "
                         "the text-to-image unCLIP teaching model is load_pipeline('teaching-unclip-text')")
    try:
        import diffusers

        cls = getattr(diffusers, class_name, None)
    except Exception:  # an optional dependency of that class is missing: diffusers will say so
        return
    if isinstance(cls, type) and not any(c.__name__ in _WALKABLE for c in cls.__mro__):
        raise ValueError(f"{where} holds a {class_name}, which helpers cannot walk: {_WALKS_WHAT}")


def _class_name(index: Path) -> Any:
    """The ``_class_name`` of a ``model_index.json`` (``None`` when unreadable: diffusers then says why)."""
    try:
        return json.loads(index.read_text(encoding="utf-8")).get("_class_name")
    except (OSError, ValueError, AttributeError):
        return None


def _folder_kind(folder: Path) -> str:
    """``"unclip"`` (Karlo-style, loaded component by component) or ``"auto"`` for a model folder; one ValueError
    for a folder whose pipeline class cannot be walked, or an unCLIP folder that lacks components."""
    index = folder / "model_index.json"
    unclip_parts = ("decoder", "text_proj", "super_res_first", "super_res_last")
    if not index.is_file():
        return "unclip" if all((folder / part).is_dir() for part in unclip_parts) else "auto"
    class_name = _class_name(index)
    _check_pipeline_class(class_name, repr(str(folder)))
    if class_name != "UnCLIPImageVariationPipeline":
        return "auto"
    missing = [part for part in _UNCLIP_COMPONENTS if not (folder / part).is_dir()]
    if missing:
        raise ValueError(f"{str(folder)!r} is not an unCLIP image-variation folder: its model_index.json says "
                         f"UnCLIPImageVariationPipeline, but it has no {', '.join(f'{m}/' for m in missing)}")
    return "unclip"


def _load_unclip_components(source: str, dtype: torch.dtype, **hub_kwargs: Any) -> Any:
    """Karlo-style unCLIP image-variation pipeline, one component per subfolder.

    diffusers 0.42 cannot round-trip this pipeline through ``DiffusionPipeline.from_pretrained`` (it looks
    for ``UnCLIPTextProjModel`` in the wrong module), so each component is loaded on its own.
    """
    from diffusers import UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline, UnCLIPTextProjModel
    from transformers import (
        CLIPImageProcessor,
        CLIPTextModelWithProjection,
        CLIPTokenizer,
        CLIPVisionModelWithProjection,
    )

    weights = {"use_safetensors": hub_kwargs.pop("use_safetensors", _safetensors_choice(source))}

    def diffusers_model(cls: Any, sub: str) -> Any:
        return cls.from_pretrained(source, subfolder=sub, **dtype_kwarg(dtype), **weights, **hub_kwargs)

    def transformers_model(cls: Any, sub: str) -> Any:
        return cls.from_pretrained(source, subfolder=sub, dtype=dtype, **weights, **hub_kwargs)

    parts = {
        "decoder": diffusers_model(UNet2DConditionModel, "decoder"),
        "text_proj": diffusers_model(UnCLIPTextProjModel, "text_proj"),
        "super_res_first": diffusers_model(UNet2DModel, "super_res_first"),
        "super_res_last": diffusers_model(UNet2DModel, "super_res_last"),
        "text_encoder": transformers_model(CLIPTextModelWithProjection, "text_encoder"),
        "image_encoder": transformers_model(CLIPVisionModelWithProjection, "image_encoder"),
        "tokenizer": CLIPTokenizer.from_pretrained(source, subfolder="tokenizer", **hub_kwargs),
        "feature_extractor": CLIPImageProcessor.from_pretrained(
            source, subfolder="feature_extractor", **hub_kwargs
        ),
        "decoder_scheduler": UnCLIPScheduler.from_pretrained(
            source, subfolder="decoder_scheduler", **hub_kwargs
        ),
        "super_res_scheduler": UnCLIPScheduler.from_pretrained(
            source, subfolder="super_res_scheduler", **hub_kwargs
        ),
    }
    return UnCLIPImageVariationPipeline(**parts)


#: Single-file checkpoints: the suffixes, and the pipeline each architecture diffusers recognises by its keys
#: (``infer_diffusers_model_type``) loads as. Everything else is refused before any weight is read.
SINGLE_FILE_SUFFIXES = (".safetensors", ".ckpt")
SINGLE_FILE_KINDS = {"v1": "text2img", "v2": "text2img", "xl_base": "sdxl", "sd3": "sd3", "sd35_medium": "sd3",
                     "sd35_large": "sd3", "flux-dev": "flux", "flux-schnell": "flux"}
_SINGLE_FILE_NAMES = {"v1": "Stable Diffusion 1.x", "v2": "Stable Diffusion 2.x", "xl_base": "SDXL base",
                      "sd3": "SD 3 / 3.5", "sd35_medium": "SD 3 / 3.5", "sd35_large": "SD 3 / 3.5",
                      "flux-dev": "FLUX.1 dev / schnell", "flux-schnell": "FLUX.1 dev / schnell"}


class _CheckpointKeys(dict):
    """The keys of a ``.safetensors`` file; a tensor is read only when asked for (a few, to tell the
    architecture apart), so detecting what a multi-gigabyte file holds costs milliseconds."""

    def __init__(self, path: Path) -> None:
        from safetensors import safe_open

        self._file = safe_open(str(path), framework="pt")
        dict.__init__(self, dict.fromkeys(self._file.keys()))

    def __getitem__(self, key: str) -> torch.Tensor:
        return self._file.get_tensor(key)

    def get(self, key: str, default: Any = None) -> Any:
        return self[key] if key in self else default


def _check_ckpt_format(path: Path) -> None:
    """Refuse a ``.ckpt`` that is not a ``torch.save`` zip archive, before anything in it is unpickled."""
    if not zipfile.is_zipfile(path):
        raise ValueError(f"{str(path)!r} is not a supported checkpoint: a .ckpt must be a torch.save zip archive "
                         "(PyTorch 1.6 and later), and this is an old-format or plain pickle file, which could run "
                         "code when opened. Use the model's .safetensors file instead")


def single_file_type(path: str | os.PathLike) -> str:
    """What a single-file checkpoint holds, in diffusers' words (``"v1"``, ``"v2"``, ``"xl_base"``, ``"sd3"``,
    ``"flux-dev"``, ...), from its key names; ``"unknown"`` when it is not a diffusion-model checkpoint.

    Introduced in notebook 04_prompt_walks (its ``MODEL`` may be a file path).
    """
    from diffusers.loaders.single_file_utils import infer_diffusers_model_type

    path = Path(path)
    if path.suffix == ".safetensors":
        checkpoint: dict = _CheckpointKeys(path)
    else:  # a pickled .ckpt: tensors only (weights_only), memory-mapped
        _check_ckpt_format(path)
        checkpoint = torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        checkpoint = checkpoint.get("state_dict", checkpoint)
    if not any(str(k).startswith(("model.diffusion_model.", "joint_blocks.", "double_blocks.")) for k in checkpoint):
        return "unknown"  # infer_diffusers_model_type would call anything it does not recognise "v1"
    return infer_diffusers_model_type(checkpoint)


def _resolve_file(path: Path) -> str:
    """The loader kind of a single-file checkpoint, or one ValueError saying what it is and what works."""
    if path.suffix not in SINGLE_FILE_SUFFIXES:
        raise ValueError(f"{str(path)!r} is a file but not a checkpoint helpers can load: single-file models "
                         f"end in {' or '.join(SINGLE_FILE_SUFFIXES)}; a diffusers model is a folder")
    if path.suffix == ".ckpt":
        _check_ckpt_format(path)
    try:
        model_type = single_file_type(path)
    except Exception as exc:  # a truncated or foreign file: say so in one line
        raise ValueError(f"cannot read the checkpoint {str(path)!r}: {_first_line(exc)}") from None
    if model_type not in SINGLE_FILE_KINDS:
        what = "no Stable Diffusion weights" if model_type == "unknown" else f"a {model_type!r} checkpoint"
        raise ValueError(
            f"{str(path)!r} holds {what}; helpers walks single files of "
            f"{', '.join(sorted(set(_SINGLE_FILE_NAMES.values())))} (diffusers' from_single_file)"
        )
    return f"file:{SINGLE_FILE_KINDS[model_type]}"


def resolve_model(model: str) -> tuple[str, str, bool]:
    """(loader kind, hub id or folder, is_local) for a model name; ValueError for unknown names.

    Introduced in notebook 01_diffusion_basics (through :func:`load_pipeline`)."""
    valid = (
        f"valid names: {', '.join(repr(n) for n in (*MODEL_ALIASES, *TEACHING_MODELS))}, "
        f"a hub id like {SD15_ID!r}, a local folder saved with save_pretrained, or a single-file checkpoint "
        f"({' / '.join(SINGLE_FILE_SUFFIXES)})"
    )
    path = Path(model).expanduser()
    if path.is_dir():
        return _folder_kind(path), str(path), True
    if path.is_file():
        return _resolve_file(path), str(path), True
    repo_id = MODEL_ALIASES.get(model, model)
    if repo_id == SD15_ID:
        return "text2img", repo_id, False
    if repo_id == KARLO_ID:
        return "unclip", repo_id, False
    if repo_id in (SDXL_ID, SDXL_TURBO_ID):
        return "sdxl", repo_id, False
    flow = next((m for m in MODELS.values() if m.source == repo_id and m.family in ("sd3", "flux")), None)
    if flow is not None:
        return flow.family, repo_id, False
    looks_like_path = model.startswith((".", "/", "~")) or model.count("/") > 1 or "\\" in model
    if looks_like_path or path.exists():
        raise ValueError(f"no model folder at {model!r} ({valid})")
    if _HUB_ID.match(model):
        return "auto", model, False
    raise ValueError(f"unknown model {model!r}; {valid}")


#: Hub checkpoints published as pickled ``.bin`` files only (no safetensors).
BIN_ONLY = {KARLO_ID}


def _safetensors_choice(source: str) -> bool | None:
    """``use_safetensors`` for ``from_pretrained``: True wherever the weights come as safetensors, so that
    diffusers never falls back to a pickled ``.bin`` silently (a hub checkpoint without them is then an error,
    unless the caller passes ``use_safetensors=False``). Karlo, and a local folder with components saved as
    ``.bin`` only, get None, with one line naming what is pickled."""
    folder = Path(source).expanduser()
    pickled = [source] if source in BIN_ONLY else []
    if folder.is_dir():
        parts = {p.parent for p in folder.rglob("*") if p.suffix in (".bin", ".safetensors")}
        pickled = [str(d.relative_to(folder)) or "." for d in sorted(parts) if not any(d.glob("*.safetensors"))]
    if pickled:
        print(f"note: no safetensors weights, only pickled .bin files, for {', '.join(pickled)}; diffusers and "
              "transformers open them with torch.load(weights_only=True), which loads tensors but runs no code")
        return None
    return True


def _load(kind: str, source: str, dtype: torch.dtype, **kwargs: Any) -> Any:
    from helpers.devices import quiet_libraries

    with quiet_libraries(progress_bars=True):  # the import's torchvision notice (see the README), not the bars
        import diffusers.pipelines.stable_diffusion  # noqa: F401
    if kind.startswith("file:"):
        return _load_single_file(kind.removeprefix("file:"), source, dtype, **kwargs)
    if kind != "unclip":
        kwargs.setdefault("use_safetensors", _safetensors_choice(source))
    if kind == "unclip":
        return _load_unclip_components(source, dtype, **kwargs)
    if kind == "sdxl":
        from diffusers import StableDiffusionXLPipeline

        if dtype in (torch.float16, torch.bfloat16):  # the fp16 files: 6.9 GB instead of 13.9 GB
            kwargs.setdefault("variant", "fp16")
        # Its VAE says force_upcast: diffusers decodes in float32, so fp16 frames do not come out black (NaN).
        return walk_policy(StableDiffusionXLPipeline.from_pretrained(source, **dtype_kwarg(dtype), **kwargs))
    if kind in ("sd3", "flux"):  # published in half precision already: no variant to choose
        from diffusers import FluxPipeline, StableDiffusion3Pipeline

        cls = StableDiffusion3Pipeline if kind == "sd3" else FluxPipeline
        return walk_policy(cls.from_pretrained(source, **dtype_kwarg(dtype), **kwargs))
    if kind == "text2img":
        from diffusers import StableDiffusionPipeline

        if dtype in (torch.float16, torch.bfloat16):  # half the download (2.1 GB, not 4.3 GB), cast on load
            kwargs.setdefault("variant", "fp16")
        kwargs.setdefault("safety_checker", None)  # the walk policy: see walk_policy
        kwargs.setdefault("requires_safety_checker", False)
        return walk_policy(StableDiffusionPipeline.from_pretrained(source, **dtype_kwarg(dtype), **kwargs))
    from diffusers import DiffusionPipeline

    if not Path(source).expanduser().is_dir():  # a hub id: refuse by class before fetching gigabytes
        from huggingface_hub import hf_hub_download

        hub = {k: kwargs[k] for k in ("cache_dir", "force_download", "local_files_only", "token", "revision")
               if k in kwargs}
        _check_pipeline_class(_class_name(Path(hf_hub_download(source, "model_index.json", **hub))), repr(source))
    keep_checker = "safety_checker" in kwargs
    return walk_policy(DiffusionPipeline.from_pretrained(source, **dtype_kwarg(dtype), **kwargs),
                       keep_checker=keep_checker)


def _load_single_file(kind: str, path: str, dtype: torch.dtype, **kwargs: Any) -> Any:
    """``from_single_file`` of the class ``kind`` names. diffusers reads the components' configs from ``config=``
    (a diffusers folder or hub id) or, without it, from the hub repository of the architecture it detects."""
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline

    if Path(path).suffix == ".ckpt":
        print(f"note: {Path(path).name} is a pickled .ckpt; diffusers opens it with torch.load(weights_only=True), "
              "which loads tensors but runs no code")
    if kind in ("sd3", "flux"):  # FLUX files hold the transformer; diffusers fetches the rest from config=
        from diffusers import FluxPipeline, StableDiffusion3Pipeline

        flow = StableDiffusion3Pipeline if kind == "sd3" else FluxPipeline
        return walk_policy(flow.from_single_file(path, **dtype_kwarg(dtype), **kwargs))
    cls = StableDiffusionXLPipeline if kind == "sdxl" else StableDiffusionPipeline
    if kind == "text2img":
        kwargs.setdefault("safety_checker", None)  # the walk policy: see walk_policy
        kwargs.setdefault("requires_safety_checker", False)
    return walk_policy(cls.from_single_file(path, **dtype_kwarg(dtype), **kwargs))


def _missing_weights(exc: BaseException) -> str:
    """'missing weights: …' when a load failed because the file lacks tensors of a component, else ''.

    diffusers builds each component with empty (meta) weights and fills in those the file holds; any it lacks
    stay empty and the load ends in torch's opaque "Cannot copy out of meta tensor". The component is still in
    the failing frames, so its empty parameters name what the file lacks."""
    if not any("meta tensor" in str(e) for e in _chain(exc)):
        return ""
    tb = exc.__traceback__
    while tb is not None:
        model = tb.tb_frame.f_locals.get("model")
        if isinstance(model, torch.nn.Module):
            empty = [n for n, p in model.named_parameters() if p.is_meta]
            if empty:
                total = sum(1 for _ in model.parameters())
                shown = ", ".join(empty[:5]) + (", …" if len(empty) > 5 else "")
                return (f"missing weights: the file lacks {len(empty)} of the {total} tensors of the "
                        f"{type(model).__name__} ({shown}); it is incomplete (a pruned or partial checkpoint, or "
                        "the wrong file): use the complete checkpoint")
        tb = tb.tb_next
    return "missing weights: the file lacks tensors a component needs (an incomplete checkpoint)"


def walk_policy(pipe: Any, *, keep_checker: bool = False) -> Any:
    """The one policy every entry point applies to a loaded pipeline (``load_pipeline``, ``choose_backend``, walk
    files, ``make demo``): a PNDM scheduler (Stable Diffusion 1.5 ships with it) becomes DDIM, deterministic with
    eta = 0 and what DDIM inversion undoes; the safety checker is removed unless the caller passed one, because
    its false positives black out frames of harmless walks (the user stays bound by the model's licence, see the
    README). Whichever way, :func:`helpers.walks.render_walk` never commits a frame the checker flagged.

    Introduced in notebook 01_diffusion_basics.
    """
    from diffusers import DDIMScheduler, PNDMScheduler

    if isinstance(getattr(pipe, "scheduler", None), PNDMScheduler):
        pipe.scheduler = DDIMScheduler.from_config(pipe.scheduler.config)
    if not keep_checker and getattr(pipe, "safety_checker", None) is not None:
        pipe.safety_checker = None
        if "requires_safety_checker" in getattr(pipe, "config", {}):
            pipe.register_to_config(requires_safety_checker=False)
    return pipe


def _check_walkable(pipe: Any, name: str) -> None:
    """Refuse a pipeline the walks cannot drive (one clear error, not a deep one at the first frame)."""
    from helpers.pipeline_info import is_unclip

    if is_unclip(pipe) or any(cls.__name__ in _WALKABLE for cls in type(pipe).__mro__):
        return
    raise ValueError(f"{name!r} loaded as {type(pipe).__name__}, which helpers cannot walk: {_WALKS_WHAT}")


def _check_dtype(dtype: Any) -> torch.dtype:
    if not isinstance(dtype, torch.dtype) or not dtype.is_floating_point:
        raise ValueError(f"dtype must be a float type (torch.float32, torch.float16 or torch.bfloat16), or None for "
                         f"the best one on the device; got {dtype!r}")
    return dtype


def _memory_kind(name: str, kind: str) -> str:
    """The :func:`memory_plan` kind of a model: a flow model by its registry name (by hub id, or SD 3.5 large's
    estimate for any other SD 3 or FLUX.1-dev's for any other FLUX), else by loader kind."""
    kind = kind.removeprefix("file:")
    if kind in ("sd3", "flux"):
        by_source = {m.source: m.name for m in MODELS.values() if m.name in FLOW_FOOTPRINTS}
        return MODELS[name].name if name in FLOW_FOOTPRINTS else by_source.get(
            name, "sd35-large" if kind == "sd3" else "flux-dev")
    return kind if kind in ("unclip", "sdxl") else "text2img"


def load_pipeline(
    model: str | os.PathLike,
    *,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    memory: str | Iterable[str] | None = "auto",
    **kwargs: Any,
) -> Any:
    """Load a diffusion pipeline by name, hub id or local folder, on ``device`` in ``dtype``.

    ``model``: ``"sd15"`` (Stable Diffusion 1.5, ``stable-diffusion-v1-5/stable-diffusion-v1-5``; fp16
    weights variant when ``dtype`` is float16 or bfloat16), ``"karlo"`` (Karlo unCLIP image variations,
    ``kakaobrain/karlo-v1-alpha-image-variations``), ``"teaching"`` / ``"teaching-unclip"`` /
    ``"teaching-unclip-text"`` (the bundled teaching models, no download), ``"sd35-medium"``, ``"sd35-large"``,
    ``"flux-schnell"``, ``"flux-dev"`` (flow-matching transformers, see :mod:`helpers.models` for their download
    sizes and licences), another hub id, a local folder
    (``model_index.json`` decides the class; Karlo-style unCLIP folders are loaded component by component), or
    a single-file checkpoint (``.safetensors`` / ``.ckpt`` of Stable Diffusion 1.x / 2.x or SDXL base, as
    fine-tunes are shared; the architecture is read from its keys, anything else is refused, and ``config=``
    names a diffusers folder for the components' configs when the hub cannot be reached). ``device``/``dtype`` default to
    :func:`~helpers.devices.get_device` / :func:`~helpers.devices.pick_dtype`. ``memory``: ``"auto"``
    (from the free GPU memory, see :func:`memory_plan`), ``"none"``, or a list of option names. Extra
    keyword arguments go to ``from_pretrained`` (e.g. ``cache_dir=``, ``safety_checker=None``; the names in
    :data:`LOAD_KWARGS`); the teaching models take none.

    The pipeline's own per-step progress bars are off (:func:`helpers.render_frames` shows one bar over the
    frames; ``pipe.set_progress_bar_config(disable=False)`` brings them back).

    Everything is checked before any weight loads: an empty or unknown name, a device this machine lacks, a
    dtype that is not a float type, an unknown memory option (``ValueError``), an unknown keyword argument
    (``TypeError``, with a did-you-mean), a folder or hub id whose pipeline class cannot be walked (img2img,
    inpainting, ControlNet ...). Raises :class:`ModelUnavailableError` (one readable message, no chained traceback) when the
    weights can be neither downloaded nor found in the cache, or a file or folder does not load (a checkpoint
    with missing weights names them).

    Introduced in notebook 01_diffusion_basics.
    """
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a name, hub id or folder path (str), got {type(model).__name__}")
    name = os.fspath(model)
    if not name.strip():
        raise ValueError("model is empty: give a name such as 'teaching' or 'sd15', a hub id, a model folder or a "
                         "checkpoint file")
    device = check_device(device)
    dtype = pick_dtype(device) if dtype is None else _check_dtype(dtype)
    check_memory(memory)
    if name in TEACHING_MODELS or name in RETIRED_MODELS:
        from helpers.teaching import load_teaching_pipeline

        check_kwargs(f"load_pipeline({name!r}), a bundled model,", kwargs, ())  # nothing goes to diffusers
        pipe = load_teaching_pipeline(name, device=device, dtype=dtype)
        if hasattr(pipe, "set_progress_bar_config"):
            pipe.set_progress_bar_config(disable=True)
        return pipe
    check_kwargs("load_pipeline", kwargs, LOAD_KWARGS)
    kind, source, is_local = resolve_model(name)
    memory_kind = _memory_kind(name, kind)
    options = resolve_memory_options(memory, device, memory_kind)  # before a download
    if _offline():
        kwargs.setdefault("local_files_only", True)

    message, reason = None, ""
    try:
        pipe = _load(kind, source, dtype, **kwargs)
    except Exception as exc:  # translated below when it means "weights unavailable"
        if is_local:
            what = "checkpoint file" if kind.startswith("file:") else "model folder"
            missing = _missing_weights(exc)
            message = f"Cannot load the {what} {source!r}: {missing or _first_line(exc)}"
            if "trust_remote_code" in str(exc):  # diffusers says so on a second line
                message += ("; it loads only with trust_remote_code=True, which runs that code: pass it only for a "
                            "folder whose code you have read and trust")
            if kind.startswith("file:") and "config" not in kwargs and not missing:
                message += (". A single file holds weights only: diffusers reads the components' configs from the "
                            "hub, or from config=<a diffusers folder or hub id of the same architecture>")
        elif _is_unavailable(exc):
            message = _unavailable_message(name, source, exc)
        else:
            raise
        reason = _first_line(exc)
    if message is not None:
        # Raised outside the except block and `from None`: the user sees one message, not a chained trace.
        raise ModelUnavailableError(message, model=name, reason=reason) from None
    _check_walkable(pipe, name)
    apply_memory_options(pipe, options, device)
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)  # render_frames shows one bar over frames instead
    return pipe


# --------------------------------------------------------------------------------------------------------
# tiny random pipelines

_TINY_WORDS = (
    "a photo of an the and in on with painting drawing sketch cat dog bird fish horse house tree forest "
    "mountain river lake sea city street car boat red orange yellow green blue purple black white small "
    "large old new night day winter summer sunset morning portrait landscape by style oil watercolor"
)


def _tiny_tokenizer() -> Any:
    from helpers.teaching.scenes import vocabulary
    from helpers.tokenizer import build_clip_tokenizer

    return build_clip_tokenizer([_TINY_WORDS, " ".join(vocabulary())], model_max_length=16)


def _tiny_text_config(tokenizer: Any, hidden: int, projection: int | None = None) -> Any:
    from transformers import CLIPTextConfig

    extra: dict[str, Any] = {} if projection is None else {"projection_dim": projection}
    return CLIPTextConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden,
        intermediate_size=37,
        num_hidden_layers=2,
        num_attention_heads=4,
        max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        layer_norm_eps=1e-5,
        **extra,
    )


def _tiny_sd() -> Any:
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = _tiny_tokenizer()
    unet = UNet2DConditionModel(
        sample_size=16,
        in_channels=4,
        out_channels=4,
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32,
        attention_head_dim=8,
        norm_num_groups=32,
    )
    vae = _tiny_vae()
    text_encoder = CLIPTextModel(_tiny_text_config(tokenizer, hidden=32))
    scheduler = DDIMScheduler(
        beta_start=0.00085,
        beta_end=0.012,
        beta_schedule="scaled_linear",
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    return StableDiffusionPipeline(
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        unet=unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )


def _tiny_vae() -> Any:
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(32, 64),
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, sample_size=32,
                         norm_num_groups=32)


def _tiny_sd2() -> Any:
    """SD 2.x in miniature: v-prediction, linear projections in the transformer blocks, GELU text encoder."""
    from diffusers import DDIMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel

    tokenizer = _tiny_tokenizer()
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                attention_head_dim=(2, 4), use_linear_projection=True, norm_num_groups=32)
    config = _tiny_text_config(tokenizer, hidden=32)
    config.hidden_act = "gelu"
    scheduler = DDIMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", clip_sample=False,
                              set_alpha_to_one=False, steps_offset=1, prediction_type="v_prediction")
    return StableDiffusionPipeline(vae=_tiny_vae(), text_encoder=CLIPTextModel(config), tokenizer=tokenizer,
                                   unet=unet, scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)


def _tiny_sdxl() -> Any:
    """SDXL in miniature, as diffusers' own tests build it: two CLIP text encoders (the second with a projection
    that gives the pooled embedding) and a UNet with ``addition_embed_type="text_time"``."""
    from diffusers import EulerDiscreteScheduler, StableDiffusionXLPipeline, UNet2DConditionModel
    from transformers import CLIPTextModel, CLIPTextModelWithProjection

    tokenizer = _tiny_tokenizer()
    unet = UNet2DConditionModel(sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64),
                                layers_per_block=1, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), attention_head_dim=(2, 4),
                                use_linear_projection=True, addition_embed_type="text_time",
                                addition_time_embed_dim=8, transformer_layers_per_block=(1, 1),
                                projection_class_embeddings_input_dim=80,  # 6 time ids x 8 + the pooled 32
                                cross_attention_dim=64, norm_num_groups=32)  # 32 + 32: both encoders' tokens
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       steps_offset=1, timestep_spacing="leading")
    return StableDiffusionXLPipeline(
        vae=_tiny_vae(), text_encoder=CLIPTextModel(_tiny_text_config(tokenizer, hidden=32)), tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_tiny_text_config(tokenizer, hidden=32, projection=32)),
        tokenizer_2=_tiny_tokenizer(), unet=unet, scheduler=scheduler, force_zeros_for_empty_prompt=True)


def _tiny_unclip() -> Any:
    from diffusers import UnCLIPScheduler, UNet2DConditionModel, UNet2DModel
    from diffusers.pipelines.deprecated.unclip import UnCLIPImageVariationPipeline, UnCLIPTextProjModel
    from transformers import (
        CLIPImageProcessor,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    clip_dim, time_dim, cross_dim = 32, 128, 64
    tokenizer = _tiny_tokenizer()
    text_encoder = CLIPTextModelWithProjection(
        _tiny_text_config(tokenizer, hidden=clip_dim, projection=clip_dim)
    )
    image_encoder = CLIPVisionModelWithProjection(
        CLIPVisionConfig(
            hidden_size=clip_dim,
            projection_dim=clip_dim,
            intermediate_size=37,
            num_hidden_layers=2,
            num_attention_heads=4,
            image_size=32,
            patch_size=4,
        )
    )
    feature_extractor = CLIPImageProcessor(size={"shortest_edge": 32}, crop_size={"height": 32, "width": 32})
    text_proj = UnCLIPTextProjModel(
        clip_extra_context_tokens=4,
        clip_embeddings_dim=clip_dim,
        time_embed_dim=time_dim,
        cross_attention_dim=cross_dim,
    )
    decoder = UNet2DConditionModel(
        sample_size=16,
        in_channels=3,
        out_channels=6,  # epsilon and learned variance
        block_out_channels=(32, 64),
        layers_per_block=1,
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        cross_attention_dim=cross_dim,
        attention_head_dim=8,
        resnet_time_scale_shift="scale_shift",
        class_embed_type="identity",
    )

    def super_res() -> Any:
        return UNet2DModel(
            sample_size=32,
            in_channels=6,  # noisy image and the upsampled decoder output
            out_channels=3,
            block_out_channels=(32, 64),
            layers_per_block=1,
            down_block_types=("ResnetDownsampleBlock2D", "ResnetDownsampleBlock2D"),
            up_block_types=("ResnetUpsampleBlock2D", "ResnetUpsampleBlock2D"),
        )

    return UnCLIPImageVariationPipeline(
        decoder=decoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        text_proj=text_proj,
        feature_extractor=feature_extractor,
        image_encoder=image_encoder,
        super_res_first=super_res(),
        super_res_last=super_res(),
        # Karlo predicts noise ("epsilon"); random weights predicting noise make every x0 estimate at
        # t=999 blow up (divided by sqrt(alpha_bar) = 5e-5) into +-1 after clipping: black-and-white noise.
        # Predicting the sample keeps the tiny pictures in range, so tests see what conditioning and noise do.
        decoder_scheduler=UnCLIPScheduler(variance_type="learned_range", prediction_type="sample"),
        super_res_scheduler=UnCLIPScheduler(variance_type="fixed_small_log", prediction_type="sample"),
    )


def _tiny_t5(tokenizer: Any, width: int) -> Any:
    """A T5 encoder with the dimensions of diffusers' tiny test T5 (d_ff 37, d_kv 8, 4 heads), ``width`` wide."""
    from transformers import T5Config, T5EncoderModel

    return T5EncoderModel(T5Config(vocab_size=len(tokenizer), d_model=width, d_ff=37, d_kv=8, num_heads=4,
                                   num_layers=2, relative_attention_num_buckets=8, dropout_rate=0.0,
                                   pad_token_id=0, eos_token_id=1)).eval()


def _tiny_flow_vae() -> Any:
    """The VAE of SD 3 and FLUX in miniature: no quant convs, latents normalised by shift and scale."""
    from diffusers import AutoencoderKL

    return AutoencoderKL(in_channels=3, out_channels=3, block_out_channels=(32, 64),
                         down_block_types=("DownEncoderBlock2D", "DownEncoderBlock2D"),
                         up_block_types=("UpDecoderBlock2D", "UpDecoderBlock2D"), latent_channels=4, sample_size=32,
                         norm_num_groups=32, use_quant_conv=False, use_post_quant_conv=False, shift_factor=0.0609,
                         scaling_factor=1.5035)


def _tiny_sd3() -> Any:
    """Stable Diffusion 3 in miniature, as diffusers' own tests build it (an MMDiT transformer, two CLIP text
    encoders with projections, T5, the flow-matching Euler scheduler), with every tokenizer made here: 16x16x4
    latents in 2x2 patches → 32x32 images. Widths chosen so that the pooled embedding (32 + 32) fits in a token
    (64), as it does at full size (2,048 in 4,096)."""
    from diffusers import FlowMatchEulerDiscreteScheduler, SD3Transformer2DModel, StableDiffusion3Pipeline
    from transformers import CLIPTextModelWithProjection

    from helpers.teaching.scenes import vocabulary
    from helpers.tokenizer import build_t5_tokenizer

    tokenizer, tokenizer_2 = _tiny_tokenizer(), _tiny_tokenizer()
    t5_tokenizer = build_t5_tokenizer([_TINY_WORDS, " ".join(vocabulary())])
    transformer = SD3Transformer2DModel(sample_size=16, patch_size=2, in_channels=4, num_layers=2,
                                        attention_head_dim=8, num_attention_heads=4, caption_projection_dim=32,
                                        joint_attention_dim=64, pooled_projection_dim=64, out_channels=4)
    pipe = StableDiffusion3Pipeline(
        transformer=transformer, scheduler=FlowMatchEulerDiscreteScheduler(shift=3.0), vae=_tiny_flow_vae(),
        text_encoder=CLIPTextModelWithProjection(_tiny_text_config(tokenizer, hidden=32, projection=32)),
        tokenizer=tokenizer,
        text_encoder_2=CLIPTextModelWithProjection(_tiny_text_config(tokenizer_2, hidden=32, projection=32)),
        tokenizer_2=tokenizer_2, text_encoder_3=_tiny_t5(t5_tokenizer, 64), tokenizer_3=t5_tokenizer)
    return pipe


def _tiny_flux() -> Any:
    """FLUX.1 in miniature, as diffusers' own tests build it (one double-stream and one single-stream block,
    rotary position axes 4 + 4 + 8, CLIP for the pooled embedding, T5 for the tokens), guidance-distilled like
    FLUX.1-dev (a ``guidance`` input, no negative branch), with every tokenizer made here: 16x16x4 latents packed
    into 8x8 tokens of 16 → 32x32 images."""
    from diffusers import FlowMatchEulerDiscreteScheduler, FluxPipeline, FluxTransformer2DModel
    from transformers import CLIPTextModel

    from helpers.teaching.scenes import vocabulary
    from helpers.tokenizer import build_t5_tokenizer

    tokenizer = _tiny_tokenizer()
    t5_tokenizer = build_t5_tokenizer([_TINY_WORDS, " ".join(vocabulary())])
    transformer = FluxTransformer2DModel(patch_size=1, in_channels=16, num_layers=1, num_single_layers=1,
                                         attention_head_dim=16, num_attention_heads=2, joint_attention_dim=32,
                                         pooled_projection_dim=32, axes_dims_rope=[4, 4, 8], guidance_embeds=True)
    scheduler = FlowMatchEulerDiscreteScheduler(use_dynamic_shifting=True, base_image_seq_len=16,
                                                max_image_seq_len=256, base_shift=0.5, max_shift=1.15)
    pipe: Any = FluxPipeline(scheduler=scheduler, vae=_tiny_flow_vae(),
                             text_encoder=CLIPTextModel(_tiny_text_config(tokenizer, hidden=32)), tokenizer=tokenizer,
                             text_encoder_2=_tiny_t5(t5_tokenizer, 32), tokenizer_2=t5_tokenizer,
                             transformer=transformer)
    pipe.default_sample_size = 16  # 16 latent cells a side (the default, 128, is FLUX's 1,024 px)
    return pipe


TINY_KINDS = {"text2img": _tiny_sd, "unclip": _tiny_unclip, "sd2": _tiny_sd2, "sdxl": _tiny_sdxl, "sd3": _tiny_sd3,
              "flux": _tiny_flux}


def tiny_pipeline(
    kind: str,
    *,
    seed: int = 0,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
    progress_bar: bool = False,
) -> Any:
    """A tiny, randomly initialised pipeline built offline from the real diffusers/transformers classes.

    ``kind="text2img"``: ``StableDiffusionPipeline`` (16x16x4 latents → 32x32 images, DDIM, no safety checker).
    ``kind="unclip"``: ``UnCLIPImageVariationPipeline`` (16x16 decoder → 32x32 super-res, CLIP 32-dim
    embeddings). ``kind="sd2"``: an SD 2.x-style ``StableDiffusionPipeline`` (v-prediction); ``kind="sdxl"``:
    ``StableDiffusionXLPipeline`` (two text encoders, pooled embeddings, added time ids; Euler). Same ``seed`` → identical weights; the global torch RNG is left untouched. The outputs are
    noise-like pictures: these exist to run the real-model code path in tests and CI in a fraction of a
    second. Defaults: CPU, float32, per-step progress bar off.

    Introduced in notebook 01_diffusion_basics (the "tiny-random" backend that CI runs).
    """
    if kind not in TINY_KINDS:
        raise ValueError(f"unknown tiny pipeline kind {kind!r}; choose one of {sorted(TINY_KINDS)}")
    from helpers.devices import check_seed, quiet_libraries

    seed = check_seed(seed)
    with torch.random.fork_rng(devices=[]), quiet_libraries():
        torch.manual_seed(seed)
        pipe = TINY_KINDS[kind]()
    device = torch.device(device) if device is not None else torch.device("cpu")
    if dtype is None or dtype == torch.float32:
        pipe.to(device)  # built in float32 already
    else:
        pipe.to(device=device, dtype=dtype)
    pipe.set_progress_bar_config(disable=not progress_bar)
    return pipe
