"""Which model a notebook runs: the real one on a GPU, the teaching models on a laptop, tiny random ones in CI.

Introduced in notebook 01_diffusion_basics (the Setup section of every notebook). Each notebook has one
papermill parameter ``BACKEND`` and then runs the same code whatever it says:

* ``"auto"`` — the real model (Stable Diffusion 1.5 or Karlo unCLIP) when a CUDA GPU is there *and* its
  weights load, otherwise (whatever stopped the load) the teaching models, with one sentence saying why;
* ``"teaching"`` — the small models trained by this project (32x32 emoji scenes), on any device;
* ``"real"`` — the real model, or a clear error saying why it cannot load;
* ``"tiny-random"`` — the real pipelines' classes with tiny random weights: pictures of noise, but the real
  model's code path runs in a fraction of a second (used by CI).

:func:`choose_backend` returns a :class:`Backend`: the pipeline plus the settings that suit it (image size,
steps, guidance, example prompts and images) and a one-sentence ``reason`` for the notebook's device cell.
"""

from __future__ import annotations

import platform
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import torch

from helpers.flow import FLOW_FAMILIES
from helpers.models import MODELS, Model
from helpers.pipeline_info import FLUX_TRUE_CFG, family, is_unclip, native_size, negative_guidance

BACKENDS = ("auto", "teaching", "real", "tiny-random")
KINDS = ("text2img", "unclip", "flow")


def backend_kind(entry: Model) -> str:
    """The :func:`choose_backend` kind that serves a registry entry: ``"flow"`` for a flow-matching model (the
    SD 3 and FLUX families, :data:`helpers.flow.FLOW_FAMILIES`), else its registry kind (``"text2img"``,
    ``"unclip"``)."""
    return "flow" if entry.family in FLOW_FAMILIES else entry.kind


def _first_model(backend: str, kind: str) -> str:
    """The registry's first model of ``backend`` that ``kind`` serves (:func:`backend_kind`)."""
    return next(m.name for m in MODELS.values() if m.backend == backend and backend_kind(m) == kind)


#: The model behind each kind of pipeline on the (real, teaching, tiny-random) backends: the first of each in the
#: registry (:mod:`helpers.models`), so ``"flow"`` is SD 3.5 Medium, ``teaching-flow`` and ``tiny-sd3``.
DEFAULT_MODELS = {kind: (_first_model("real", kind), _first_model("teaching", kind), _first_model("tiny-random", kind))
                  for kind in KINDS}
REAL_MODELS = {kind: real for kind, (real, _, _) in DEFAULT_MODELS.items()}
TEACHING = {kind: teaching for kind, (_, teaching, _) in DEFAULT_MODELS.items()}
TINY = {kind: tiny for kind, (_, _, tiny) in DEFAULT_MODELS.items()}
REAL_NAMES = {kind: MODELS[name].title for kind, name in REAL_MODELS.items()}
_TINY_OF = {"sdxl": "Stable Diffusion XL", "sd2": "Stable Diffusion 2.x", "sd3": "Stable Diffusion 3", "flux": "FLUX.1"}

#: The teaching world's example prompts: the first two make a colour walk (one object, two colours), the next
#: pairs an object walk within a family and one across families.
_SCENE_PROMPTS = (
    "a big red heart on a white background",
    "a big blue heart on a white background",
    "a big cat face on a white background",
    "a big dog face on a white background",
    "a big red apple on a yellow background",
    "a big rocket on a blue background",
)
#: The objects of the default image pair (held-out scenes; notebook 03 morphs one into the other).
EXAMPLE_OBJECTS = ("red apple", "green apple")
_REAL_PROMPTS = (
    "a watercolor painting of a lighthouse on a cliff at sunrise",
    "an oil painting of a lighthouse in a winter storm at night",
    "a photo of a red fox sitting in a green forest",
    "a photo of a small wooden boat on a calm lake at sunset",
    "a pencil sketch of an old city street",
    "a portrait of a cat, studio lighting",
)
# Words the tiny random pipelines' tokenizer knows (helpers.pipelines._TINY_WORDS): no unknown tokens.
_TINY_PROMPTS = (
    "a watercolor painting of a red house",
    "an oil painting of a blue boat on the lake",
    "a photo of a cat in the forest",
    "a drawing of a white bird on the sea",
    "a sketch of an old city street in winter",
    "a photo of a green tree in summer",
)


@dataclass
class Backend:
    """A loaded pipeline and the settings a notebook should use with it.

    ``name`` is ``"real"``, ``"teaching"`` or ``"tiny-random"`` (never ``"auto"``: auto resolves to one of
    these); ``model`` names what was loaded; ``reason`` is one sentence for the device cell. ``render_kwargs``
    is what to pass to :func:`helpers.render.render_frames` (steps, guidance, size), ``prompts`` are example
    prompts this model understands (the teaching model knows the scene captions of
    :mod:`helpers.teaching.scenes`, e.g. ``"a big red apple on a pink background"``).

    Introduced in notebook 01_diffusion_basics.
    """

    name: str
    kind: str
    model: str
    pipe: Any
    device: torch.device
    dtype: torch.dtype
    reason: str
    height: int | None = None
    width: int | None = None
    steps: int = 20
    guidance_scale: float = 1.0
    super_res_steps: int | None = None
    prompts: tuple[str, ...] = ()
    negative_prompt: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def is_real(self) -> bool:
        return self.name == "real"

    def render_kwargs(self, steps: int | None = None, guidance_scale: float | None = None, *,
                      negative: bool = False) -> dict[str, Any]:
        """Keyword arguments for :func:`helpers.render.render_frames` (``steps``/``guidance_scale`` override).

        Text-to-image: ``num_inference_steps``, ``guidance_scale``, ``height``, ``width``. unCLIP:
        ``decoder_num_inference_steps``, ``super_res_num_inference_steps``, ``decoder_guidance_scale``.
        ``negative=True`` asks for settings under which a negative prompt acts
        (:func:`helpers.pipeline_info.negative_guidance`): on FLUX, guidance-distilled, it adds true
        classifier-free guidance, ``true_cfg_scale`` = :data:`FLUX_TRUE_CFG` (twice the transformer
        evaluations); the other families' guidance already pushes away from the negative prompt.
        """
        steps = self.steps if steps is None else _positive_int(steps, "steps")
        guidance = self.guidance_scale if guidance_scale is None else float(guidance_scale)
        if self.kind == "unclip":
            return {
                "decoder_num_inference_steps": steps,
                "super_res_num_inference_steps": self.super_res_steps or steps,
                "decoder_guidance_scale": guidance,
            }
        kwargs: dict[str, Any] = {"num_inference_steps": steps, "guidance_scale": guidance}
        if self.height is not None:
            kwargs["height"] = self.height
        if self.width is not None:
            kwargs["width"] = self.width
        if negative:
            kwargs.update(negative_guidance(self.pipe)[1])
        return kwargs

    def example_images(self, n: int = 2, *, seed: int = 0, objects: Sequence[str] | None = None) -> list[Any]:
        """Example input images (PIL) for image walks: held-out emoji scenes (never trained on).

        ``objects`` picks them by name (e.g. ``("red apple", "green apple")``; ``n`` is then ignored);
        otherwise ``n`` scenes of different objects are drawn with ``seed``. Every image is a big object on a
        white background. The teaching and tiny models were made for 32x32 scenes; for the real model they are
        upscaled to 256x256 (bring your own photos with :func:`helpers.media.load_image`).
        """
        from helpers.media import to_pil
        from helpers.teaching import scenes

        if objects is None:
            n = _positive_int(n, "n")
            gen = torch.Generator().manual_seed(int(seed))
            order = torch.randperm(len(scenes.OBJECTS), generator=gen).tolist()
            objects = [scenes.OBJECT_NAMES[order[i % len(order)]] for i in range(n)]
        if isinstance(objects, str) or not objects:
            raise ValueError(f"objects must be a non-empty list of object names, got {objects!r}")
        found = [scenes.object_index(name) for name in objects]  # a clear error for an unknown name
        images = [to_pil(x) for x in scenes.example_scenes(found, seed=int(seed)).images]
        if self.is_real:
            from PIL import Image

            images = [im.resize((256, 256), Image.Resampling.BICUBIC) for im in images]
        return images

    def invert(self, images: Any, prompt: str = "", *, steps: int | None = None) -> torch.Tensor:
        """DDIM-invert ``images`` with this backend's text-to-image pipeline (see :func:`ddim_invert`)."""
        if self.kind != "text2img" or family(self.pipe) not in ("sd", "sdxl"):
            raise ValueError("Backend.invert (DDIM inversion) needs a Stable Diffusion text-to-image backend "
                             "(choose_backend(kind='text2img')); flow models invert by their ODE (helpers.flow)")
        return ddim_invert(self.pipe, images, prompt=prompt, num_inference_steps=steps or self.steps,
                           height=self.height, width=self.width)

    def describe(self) -> str:
        """``reason`` plus the settings, as printed by the device cell."""
        size = f"{self.width}x{self.height} px, " if self.height else ""
        return (
            f"{self.reason}\n  backend={self.name!r} model={self.model!r} device={self.device} "
            f"dtype={str(self.dtype).removeprefix('torch.')} ({size}{self.steps} steps, "
            f"guidance {self.guidance_scale:g})"
        )

    def __repr__(self) -> str:  # the pipeline's own repr is pages long
        return (f"Backend(name={self.name!r}, kind={self.kind!r}, model={self.model!r}, device={self.device}, "
                f"dtype={self.dtype})")


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value!r}")
    return value


def _check(backend: str, kind: str) -> None:
    if not isinstance(backend, str) or backend not in BACKENDS:
        raise ValueError(
            f"unknown backend {backend!r}; choose one of {', '.join(repr(b) for b in BACKENDS)} "
            "(set BACKEND in the notebook's parameters cell)"
        )
    if not isinstance(kind, str) or kind not in KINDS:
        raise ValueError(f"unknown pipeline kind {kind!r}; choose 'text2img', 'unclip' or 'flow'")


def _defaults(name: str, kind: str, pipe: Any, model: str = "") -> dict[str, Any]:
    """Image size, steps, guidance and prompts that suit each backend (the teaching models': their cards; the
    real ones': the registry's, else the pipeline's native size with 25 steps at guidance 7.5)."""
    if name == "real":
        if kind in ("text2img", "flow"):
            entry = MODELS.get(model)
            size = (entry.size if entry and entry.size else None) or native_size(pipe)[0]
            steps = entry.steps if entry and entry.steps else 25
            guidance = entry.guidance if entry and entry.guidance is not None else 7.5
            return {"height": size, "width": size, "steps": steps, "guidance_scale": guidance,
                    "prompts": _REAL_PROMPTS, "negative_prompt": "blurry, low quality"}
        return {"steps": 25, "super_res_steps": 7, "guidance_scale": 8.0, "prompts": _REAL_PROMPTS}
    if name == "teaching":
        if kind == "text2img":
            from helpers.teaching import text2img

            return {**text2img.defaults(), "prompts": _SCENE_PROMPTS}
        if kind == "flow":
            from helpers.teaching import flow_model

            return {**flow_model.defaults(), "prompts": _SCENE_PROMPTS}
        from helpers.teaching import unclip_model

        return {"steps": unclip_model.DEFAULT_DECODER_STEPS, "super_res_steps": unclip_model.DEFAULT_SUPER_RES_STEPS,
                "guidance_scale": unclip_model.DEFAULT_DECODER_GUIDANCE, "prompts": _SCENE_PROMPTS}
    # tiny-random: noise pictures, as fast as possible.
    if kind in ("text2img", "flow"):
        return {"height": 32, "width": 32, "steps": 3, "guidance_scale": 3.0, "prompts": _TINY_PROMPTS}
    return {"steps": 2, "super_res_steps": 2, "guidance_scale": 2.0, "prompts": _SCENE_PROMPTS}


def _device_sentence(device: torch.device) -> str:
    if device.type == "cuda":
        return f"the CUDA GPU ({torch.cuda.get_device_name(device)})"
    if device.type == "mps":
        return "the Apple GPU (MPS)"
    return "the CPU"


def _load_teaching(kind: str, device: str | torch.device | None, dtype: torch.dtype | None):
    from helpers.devices import get_device
    from helpers.pipelines import load_pipeline

    device = get_device() if device is None else torch.device(device)
    dtype = torch.float32 if dtype is None else dtype  # tiny models: full precision costs nothing
    return load_pipeline(TEACHING[kind], device=device, dtype=dtype), device, dtype


def _load_real(kind: str, device: str | torch.device | None, dtype: torch.dtype | None, model: str):
    from helpers.devices import get_device, pick_dtype
    from helpers.pipelines import load_pipeline

    device = get_device() if device is None else torch.device(device)
    dtype = pick_dtype(device) if dtype is None else dtype
    # load_pipeline applies the walk policy (DDIM instead of PNDM, no safety checker): helpers.pipelines.walk_policy
    pipe = load_pipeline(model, device=device, dtype=dtype)
    if is_unclip(pipe) != (kind == "unclip"):
        raise ValueError(f"model {model!r} is {'an unCLIP' if is_unclip(pipe) else 'a text-to-image'} pipeline, "
                         f"not the {kind!r} kind this notebook asks for")
    return pipe, device, dtype


def _serves(entry: Model, kind: str) -> bool:
    """Whether a registry entry may be loaded as ``kind``: its :func:`backend_kind`, or its registry kind (a
    flow model is a text-to-image model too)."""
    return kind in (backend_kind(entry), entry.kind)


def _choose_model(backend: str, kind: str, model: str | None) -> str:
    """The model a backend loads: the registry's default for ``kind``, or the one asked for (checked)."""
    if backend == "teaching":
        if model not in (None, TEACHING[kind]):
            raise ValueError(f"the teaching backend has one {kind!r} model, {TEACHING[kind]!r}; model={model!r} "
                             "needs BACKEND='real' (or 'auto')")
        return TEACHING[kind]
    if backend == "tiny-random":
        name = model or TINY[kind]
        entry = MODELS.get(name)
        if entry is None or entry.backend != "tiny-random" or not _serves(entry, kind):
            tiny = [m.name for m in MODELS.values() if m.backend == "tiny-random" and _serves(m, kind)]
            raise ValueError(f"the tiny-random backend has these {kind!r} models: {', '.join(tiny)}; got {model!r}")
        return name
    return model or REAL_MODELS[kind]  # a registry name, a hub id or a folder: load_pipeline says if it is none


def choose_backend(
    backend: str = "auto",
    kind: str = "text2img",
    *,
    model: str | None = None,
    device: str | torch.device | None = None,
    dtype: torch.dtype | None = None,
) -> Backend:
    """Load the pipeline a notebook runs on, and say why (see the module docstring for the four backends).

    ``kind``: ``"text2img"`` (Stable Diffusion 1.5 / ``teaching``), ``"unclip"`` (Karlo /
    ``teaching-unclip``) or ``"flow"`` (a flow-matching transformer: SD 3.5 medium / ``teaching-flow``, tiny
    ``tiny-sd3``). ``model`` picks another model for the real backend (and for ``"auto"`` on a GPU): a
    registry name such as ``"sdxl"`` or ``"sdxl-turbo"``, a hub id (SD 1.x / 2.x, SDXL) or a local folder; for
    ``"tiny-random"``, ``"tiny-sdxl"`` or ``"tiny-sd2"``. ``device``/``dtype`` default to the best available (the teaching and tiny models
    always run in float32; the tiny ones on the CPU). On the CPU it sets torch's threads to
    :func:`helpers.devices.cpu_threads` and says so. Raises ``ValueError`` for unknown names, and
    :class:`helpers.pipelines.ModelUnavailableError` when ``backend="real"`` cannot load the weights.

    Introduced in notebook 01_diffusion_basics.
    """
    _check(backend, kind)
    chosen = _choose_model(backend, kind, model)
    if backend in ("real", "auto"):  # how the device cell names the real model
        real_name = MODELS[chosen].title if chosen in MODELS else repr(chosen)
    else:  # the real model whose code path a tiny model runs
        real_name = _TINY_OF.get(MODELS[chosen].tiny or "", REAL_NAMES[kind]) if chosen in MODELS else REAL_NAMES[kind]
    if backend == "tiny-random":
        from helpers.pipelines import tiny_pipeline

        dev = torch.device("cpu") if device is None else torch.device(device)
        dt = torch.float32 if dtype is None else dtype
        pipe = tiny_pipeline(MODELS[chosen].tiny or kind, device=dev, dtype=dt)
        reason = (f"Tiny random weights in the real model's own pipeline class ({type(pipe).__name__}) on "
                  f"{_device_sentence(dev)}: the pictures are noise, but {real_name}'s code path runs in "
                  "a fraction of a second (this is what CI runs).")
        return _make("tiny-random", kind, chosen, pipe, dev, dt, reason)

    if backend == "teaching":
        pipe, dev, dt = _load_teaching(kind, device, dtype)
        reason = (f"The teaching model {TEACHING[kind]!r} (32x32 emoji scenes, trained by this project on a "
                  f"CPU) on {_device_sentence(dev)}, as asked for with BACKEND='teaching'.")
        return _make("teaching", kind, TEACHING[kind], pipe, dev, dt, reason)

    if backend == "real":
        pipe, dev, dt = _load_real(kind, device, dtype, chosen)
        reason = f"{real_name} on {_device_sentence(dev)}, as asked for with BACKEND='real'."
        return _make("real", kind, chosen, pipe, dev, dt, reason)

    # auto
    from helpers.pipelines import ModelUnavailableError

    wanted = torch.device(device) if device is not None else None
    has_cuda = torch.cuda.is_available() and (wanted is None or wanted.type == "cuda")
    if has_cuda:
        try:
            pipe, dev, dt = _load_real(kind, wanted, dtype, chosen)
        except Exception as err:  # "auto" must always end with a model: any load failure falls back, saying why
            reason = err.reason if isinstance(err, ModelUnavailableError) and err.reason else _one_line(err)
            why = (f"A CUDA GPU is here but {real_name} could not be loaded ({reason or 'weights unavailable'}), "
                   f"so the teaching model {TEACHING[kind]!r} (32x32 emoji scenes) runs instead")
        else:
            reason = f"A CUDA GPU is here and {real_name}'s weights loaded, so the real model runs on {_device_sentence(dev)}."
            return _make("real", kind, chosen, pipe, dev, dt, reason)
    elif wanted is not None:
        why = (f"device={str(wanted)!r} was asked for and {real_name} needs a CUDA GPU to be practical, so the "
               f"teaching model {TEACHING[kind]!r} (32x32 emoji scenes) runs instead")
    else:
        why = (f"No CUDA GPU was found ({real_name} would take minutes per frame here), so the teaching model "
               f"{TEACHING[kind]!r} (32x32 emoji scenes, trained by this project on a CPU) runs instead")
    pipe, dev, dt = _load_teaching(kind, wanted, dtype)
    return _make("teaching", kind, TEACHING[kind], pipe, dev, dt, f"{why}, on {_device_sentence(dev)}.")


def _one_line(err: BaseException, limit: int = 160) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    text = f"{type(err).__name__}: {text}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _make(name: str, kind: str, model: str, pipe: Any, device: torch.device, dtype: torch.dtype, reason: str) -> Backend:
    if device.type == "cpu":
        from helpers.devices import use_cpu_threads

        use_cpu_threads()  # half the cores: more threads thrash as soon as anything else runs
    if hasattr(pipe, "set_progress_bar_config"):
        pipe.set_progress_bar_config(disable=True)  # render_frames shows one bar over frames instead
    return Backend(name=name, kind=kind, model=model, pipe=pipe, device=device, dtype=dtype, reason=reason,
                   **_defaults(name, kind, pipe, model))


@torch.no_grad()
def ddim_invert(
    pipe: Any,
    images: Any,
    *,
    prompt: str = "",
    num_inference_steps: int = 20,
    height: int | None = None,
    width: int | None = None,
) -> torch.Tensor:
    """The initial noises that DDIM (eta = 0, no guidance) would turn back into ``images``: (N, C, h, w).

    Encodes the images with the pipeline's VAE, then runs diffusers' ``DDIMInverseScheduler`` from clean
    latents towards noise with the UNet conditioned on ``prompt``. Rendering the result with the same
    prompt, steps and ``guidance_scale=1`` reconstructs the images approximately. ``images``: PIL images or
    anything :func:`helpers.media.to_pil_list` accepts; resized to ``height`` x ``width`` (default: the
    model's size; centre-cropped, never stretched).

    Introduced in notebook 02_slerp_and_latent_geometry; the same as :func:`helpers.morph.invert_images`
    (which also keeps the embeddings for a morph), where the inversion lives.
    """
    from helpers.morph import invert_images

    if getattr(pipe, "vae", None) is None or getattr(pipe, "unet", None) is None:
        raise TypeError(f"ddim_invert needs a Stable-Diffusion-style pipeline with a VAE and a UNet, got "
                        f"{type(pipe).__name__}")
    steps = _positive_int(num_inference_steps, "num_inference_steps")
    return invert_images(pipe, images, prompt, num_inference_steps=steps, height=height, width=width).latents


def library_versions() -> dict[str, str]:
    """Versions of Python and the libraries the notebooks use (``"not installed"`` where missing).

    Introduced in notebook 01_diffusion_basics (the versions cell of every notebook).
    """
    from importlib import metadata

    versions = {"python": platform.python_version()}
    for dist in ("latent-walks-helpers", "torch", "diffusers", "transformers", "accelerate", "numpy",
                 "ipywidgets", "matplotlib"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    if torch.cuda.is_available():
        versions["cuda"] = f"{torch.version.cuda} ({torch.cuda.get_device_name(0)})"
    else:
        versions["cuda"] = "no CUDA GPU" + ("" if torch.version.cuda else " (CPU build of torch)")
    return versions


def print_versions() -> None:
    """Print :func:`library_versions` as an aligned table. Introduced in notebook 01_diffusion_basics."""
    versions = library_versions()
    width = max(map(len, versions))
    for name, version in versions.items():
        print(f"{name:<{width}}  {version}")


__all__ = ["BACKENDS", "Backend", "FLUX_TRUE_CFG", "backend_kind", "choose_backend", "ddim_invert", "library_versions",
           "print_versions"]
