"""``make demo``: render the cookbook's signature walks into ``outputs/`` and say what was written.

    python -m helpers.demo [--model teaching|sd15|sdxl|sdxl-turbo] [--out outputs] [--frames 16]

With ``--model teaching`` (the default) everything runs offline on a CPU in a few minutes with the bundled
teaching models (32x32 emoji scenes): a colour walk (a red heart turning blue), a closed walk through one object
of every family, a circular noise loop, an unCLIP morph between two example scenes (a red and a green apple), a
text diff, and a walk between two prompts through the unCLIP prior's image embeddings. With ``--model sd15`` (a
CUDA GPU and hub access) the prompt walks use Stable Diffusion 1.5 and the image walks Karlo unCLIP (whose
image-variation checkpoint has no prior, so the prior walk is skipped). Each walk is written as a GIF, an MP4
and a contact-sheet PNG.

Introduced in the README (the first command it shows).
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from helpers.embeddings import encode_prompts, make_latents
from helpers.interpolation import circular_walk, interpolation_path, slerp
from helpers.media import export_gif, export_mp4, image_grid, save_image
from helpers.render import render_frames


def _real_text2img() -> list[str]:
    from helpers.models import names

    return names(backend="real", kind="text2img")


def _backend_models(backend: str) -> dict[str, str]:
    """The registry's text-to-image, unCLIP and (where there is one) prior model of one backend."""
    from helpers.models import MODELS as REGISTRY
    from helpers.models import model_for

    found = {kind: model_for(backend, kind).name for kind in ("text2img", "unclip")}
    prior = [m.name for m in REGISTRY.values() if m.backend == backend and m.kind == "unclip-text"]
    return {**found, "prior": prior[0]} if prior else found  # Karlo's image-variation checkpoint has no prior


#: ``--model`` names a backend by its text-to-image model: ``teaching``, or a real one (``sd15``, ``sdxl``,
#: ``sdxl-turbo``), whose image walks run on Karlo.
MODELS = {names["text2img"]: names for names in map(_backend_models, ("teaching", "real"))}
MODELS.update({name: {**MODELS["sd15"], "text2img": name} for name in _real_text2img() if name != "sd15"})
#: The teaching walks' objects (big, on white): a colour walk, one object per family (a closed loop), the
#: unCLIP image pair (helpers.backends.EXAMPLE_OBJECTS) and the prior walk's two prompts.
COLOUR_PAIR = ("red heart", "blue heart")
FAMILY_OBJECTS = ("grinning face", "cat face", "red apple", "red heart", "rainbow", "rocket")
PRIOR_PAIR = ("cat face", "dog face")
#: Walks that end where they start: their GIFs loop instead of playing forwards and back.
CLOSED_WALKS = ("family_walk", "multi_prompt_walk", "circular_noise_loop")
REAL_PROMPTS = (
    "a watercolor painting of a lighthouse on a cliff at sunrise",
    "an oil painting of a lighthouse in a winter storm at night",
)


@dataclass
class Settings:
    """What every walk of one demo run shares."""

    model: str
    out: Path
    frames: int = 16
    seed: int = 0
    steps: int = 20
    guidance: float | None = None  # None: the model's measured default
    fps: int = 8

    @property
    def is_teaching(self) -> bool:
        return self.model == "teaching"


def save_walk(frames: list[Any], out: Path, name: str, *, fps: int, loop: bool = False) -> list[Path]:
    """Write one walk as ``name.gif`` (ping-pong unless it is a loop), ``name.mp4`` and ``name.png``."""
    scale = max(1, 256 // frames[0].width)  # tiny teaching frames are enlarged (nearest neighbour)
    return [
        export_gif(frames, out / f"{name}.gif", fps=fps, pingpong=not loop, scale=scale),
        export_mp4(frames, out / f"{name}.mp4", fps=fps, scale=scale),
        save_image(image_grid(frames, cols=min(len(frames), 8), scale=min(scale, 4)), out / f"{name}.png"),
    ]


def scene_prompt(name: str) -> str:
    """The caption of one big object on white (``"a big red heart on a white background"``)."""
    from helpers.teaching.scenes import caption

    return caption(name, "big", "white")


def _text2img_kwargs(pipe: Any, s: Settings) -> dict[str, Any]:
    if s.guidance is not None:
        guidance = s.guidance
    elif s.is_teaching:
        from helpers.teaching.text2img import defaults

        guidance = defaults()["guidance_scale"]
    else:
        from helpers.models import MODELS as REGISTRY

        entry = REGISTRY[s.model]  # the model card's guidance (SDXL 5, SDXL-Turbo 0, SD 1.5 7.5)
        guidance = entry.guidance if entry.guidance is not None else 7.5
    return {"num_inference_steps": s.steps, "guidance_scale": guidance}


def prompt_walks(pipe: Any, s: Settings) -> dict[str, list[Any]]:
    """A two-prompt walk (a colour walk on the teaching model), a closed walk through several prompts (one
    object per family), and a noise loop."""
    if s.is_teaching:
        two = [scene_prompt(name) for name in COLOUR_PAIR]
        many = [scene_prompt(name) for name in FAMILY_OBJECTS]
    else:
        two = list(REAL_PROMPTS)
        many = list(REAL_PROMPTS) + ["a photo of a red fox in a green forest", "a pencil sketch of a city street"]
    kwargs = _text2img_kwargs(pipe, s)
    noise = make_latents(pipe, s.seed)
    walks: dict[str, list[Any]] = {}

    embeds, negative = encode_prompts(pipe, two)
    path = slerp(embeds[0], embeds[1], torch.linspace(0, 1, s.frames))
    walks["two_prompt_walk"] = render_frames(pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1],
                                             latents=noise, seed=s.seed, **kwargs)

    embeds, negative = encode_prompts(pipe, many)
    path = interpolation_path(list(embeds), max(s.frames * 2, len(many) * 3), closed=True)
    walks["family_walk" if s.is_teaching else "multi_prompt_walk"] = render_frames(
        pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1], latents=noise, seed=s.seed, **kwargs)

    embeds, negative = encode_prompts(pipe, two[:1])
    loop = circular_walk(make_latents(pipe, s.seed)[0], make_latents(pipe, s.seed + 1)[0], s.frames)
    walks["circular_noise_loop"] = render_frames(pipe, prompt_embeds=embeds.expand(len(loop), -1, -1),
                                                 negative_prompt_embeds=negative, latents=loop, seed=s.seed,
                                                 **kwargs)
    return walks


def image_walks(pipe: Any, images: list[Any], s: Settings) -> dict[str, Any]:
    """unCLIP: an interpolation between two images whose endpoints reconstruct them, and a text diff."""
    from helpers.embeddings import encode_text
    from helpers.interpolation import text_diff
    from helpers.unclip import decode, invert, morph

    inv = invert(pipe, images)  # the bipartite latents (z_i, x_T) of both images
    walks = {"unclip_interpolation": morph(pipe, inv, np.linspace(0, 1, s.frames), output_type="pil")}
    if s.is_teaching:
        from helpers.backends import EXAMPLE_OBJECTS

        base, target = (scene_prompt(name) for name in EXAMPLE_OBJECTS)
    else:
        base, target = REAL_PROMPTS
    z_t0, z_t = encode_text(pipe, [base, target])
    fracs = torch.linspace(0, 0.75, max(4, s.frames // 2))
    path = text_diff(inv.image_embeddings[0], z_t, z_t0, fracs)
    walks["text_diff"] = decode(pipe, path, inv.decoder_latents[:1], inv.super_res_latents[:1],
                                 output_type="pil")
    return walks


def prior_walk(prior_pipe: Any, pipe: Any, s: Settings) -> list[Any]:
    """Text → image through DALL-E 2's stage one: the prior turns two prompts into two CLIP image embeddings
    (:func:`helpers.unclip.prior_embeddings`), the walk slerps between them and the image-variation pipeline
    ``pipe`` (the same decoder and super-res) decodes every frame from one fixed decoder noise."""
    from helpers.teaching import unclip_model
    from helpers.unclip import decode, prior_embeddings

    prompts = [scene_prompt(name) for name in PRIOR_PAIR]
    ends = prior_embeddings(prior_pipe, prompts, num_inference_steps=unclip_model.DEFAULT_PRIOR_STEPS,
                            guidance_scale=unclip_model.DEFAULT_PRIOR_GUIDANCE, seed=s.seed)
    path = slerp(ends[0], ends[1], torch.linspace(0, 1, s.frames), dim=-1)
    return decode(pipe, path, make_latents(pipe, s.seed, dtype=torch.float32),
                  make_latents(pipe, s.seed, dtype=torch.float32, kind="super_res"),
                  num_inference_steps=unclip_model.DEFAULT_DECODER_STEPS,
                  super_res_num_inference_steps=unclip_model.DEFAULT_SUPER_RES_STEPS,
                  guidance_scale=unclip_model.DEFAULT_DECODER_GUIDANCE, output_type="pil")


def _endpoint_images(s: Settings, prompt_frames: list[Any]) -> list[Any]:
    """Two example scenes (a big red and a big green apple on white) for the teaching model, as (3, 32, 32)
    tensors; the prompt walk's ends otherwise."""
    if not s.is_teaching:
        return [prompt_frames[0], prompt_frames[-1]]
    from helpers.backends import EXAMPLE_OBJECTS
    from helpers.teaching.scenes import example_scenes

    return list(example_scenes(EXAMPLE_OBJECTS, seed=s.seed).images)


def run(s: Settings) -> list[Path]:
    """Render every walk of the demo and return the files written."""
    from helpers.pipelines import load_pipeline

    s.out.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    names = MODELS[s.model]
    t0 = time.perf_counter()
    pipe = load_pipeline(names["text2img"])
    pipe.set_progress_bar_config(disable=True)  # one line per walk in the log, not one bar per step
    walks = prompt_walks(pipe, s)
    for name, frames in walks.items():
        written += save_walk(frames, s.out, name, fps=s.fps, loop=name in CLOSED_WALKS)
    images = _endpoint_images(s, walks["two_prompt_walk"])
    del pipe, walks
    print(f"prompt and noise walks: {time.perf_counter() - t0:.1f} s")

    t0 = time.perf_counter()
    pipe = load_pipeline(names["unclip"])
    pipe.set_progress_bar_config(disable=True)
    for name, frames in image_walks(pipe, images, s).items():
        written += save_walk(list(frames), s.out, name, fps=s.fps)
    print(f"unCLIP image walks: {time.perf_counter() - t0:.1f} s")

    if "prior" not in names:
        print(f"prior walk: skipped ({names['unclip']!r} is an image-variation checkpoint without a prior)")
        return written
    t0 = time.perf_counter()
    frames = prior_walk(load_pipeline(names["prior"]), pipe, s)
    written += save_walk(list(frames), s.out, "prior_walk", fps=s.fps)
    print(f"unCLIP prior walk: {time.perf_counter() - t0:.1f} s")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m helpers.demo", description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="teaching")
    parser.add_argument("--out", type=Path, default=Path("outputs"))
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args(argv)
    if args.frames < 4:
        parser.error(f"--frames must be at least 4 (a walk needs frames to move through), got {args.frames}")
    if args.steps < 1:
        parser.error(f"--steps must be at least 1, got {args.steps}")
    start = time.perf_counter()
    try:
        written = run(Settings(model=args.model, out=args.out, frames=args.frames, seed=args.seed, steps=args.steps))
    except Exception as exc:  # one readable line instead of a traceback (the error classes say what to do)
        from helpers.pipelines import ModelUnavailableError
        from helpers.teaching import TeachingWeightsMissingError

        if isinstance(exc, (ModelUnavailableError, TeachingWeightsMissingError)):
            print(f"error: {exc}", file=sys.stderr)
            return 2
        raise
    print(f"\nwrote {len(written)} files in {time.perf_counter() - start:.0f} s:")
    for path in written:
        print(f"  {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
