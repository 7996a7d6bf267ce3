"""What the teaching models can do, measured: the quality gates and the lessons' visible effects.

Introduced in notebook 01_diffusion_basics (the notebooks quote these numbers; ``tests/test_teaching_quality.py``
asserts the gates on the shipped weights). Every judgement is made by :mod:`helpers.teaching.judge`, fitted on
freshly rendered ground-truth scenes, never on model outputs.

    python -m helpers.teaching.quality [--write-card]    # print every figure; --write-card: the text-to-image
                                                         # card (guidance table and the best guidance)
    python -m helpers.teaching.quality --text2img DIR [--write-card]   # a retrained text-to-image folder
                                                         # (``train --out OUT``: OUT/teaching), before it ships
    python -m helpers.teaching.quality --flow [DIR] [--write-card]     # the teaching flow model: its gates,
                                                         # accuracy against evaluations beside the DDPM model
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from helpers.teaching import scenes as S

#: Guidance scales the text-to-image card is measured at.
CARD_GUIDANCES = (1.0, 2.0, 3.0, 4.0, 5.0, 7.5)


def gate_prompts() -> list[tuple[str, int, str, str, bool]]:
    """24 prompts for the text-to-image gate: four objects of every family, both sizes, every background, and one
    object-background pair per family that training never showed. Rows: (prompt, object, size, background,
    unseen)."""
    rows = []
    for f, family in enumerate(S.FAMILIES):
        members = [i for i, o in enumerate(S.OBJECTS) if o.family == family]
        for j, obj in enumerate(members[k] for k in (0, 1, 2, 4 + f % 4)):  # the last: every pale colour once
            size = S.SIZE_NAMES[(f + j) % 2]
            if j == 3:
                bg = S.held_out_background(obj)
            else:
                bg = S.BACKGROUND_NAMES[(f + j) % 5]
                if bg == S.held_out_background(obj):
                    bg = "white"
            rows.append((S.caption(S.OBJECT_NAMES[obj], size, bg), obj, size, bg, j == 3))
    return rows


def _sample(pipe, prompts: Sequence[str], *, guidance: float, steps: int, seed: int, negative=None,
            latents=None) -> torch.Tensor:
    from helpers.teaching.text2img import sample

    out = []
    for start in range(0, len(prompts), 128):
        chunk = list(prompts[start:start + 128])
        lat = None if latents is None else latents[start:start + 128]
        neg = None if negative is None else ([negative] * len(chunk) if isinstance(negative, str)
                                             else list(negative[start:start + 128]))
        out.append(sample(pipe, chunk, guidance_scale=guidance, num_inference_steps=steps, seed=seed + start,
                          latents=lat, negative_prompt=neg))
    return torch.cat(out)


def text2img_accuracy(pipe, *, guidance: float, steps: int = 20, per_prompt: int = 16, seed: int = 0,
                      judge=None) -> dict:
    """Object / size / background accuracy of ``per_prompt`` samples of each :func:`gate_prompts` prompt."""
    from helpers.teaching.judge import background_of, scene_judge

    judge = judge or scene_judge()
    rows = gate_prompts()
    prompts = [r[0] for r in rows for _ in range(per_prompt)]
    images = _sample(pipe, prompts, guidance=guidance, steps=steps, seed=seed)
    obj = judge.predict(images).reshape(len(rows), per_prompt)
    size = judge.size_of(images).reshape(len(rows), per_prompt)
    bg = background_of(images).reshape(len(rows), per_prompt)
    want_obj = np.array([r[1] for r in rows])[:, None]
    want_size = np.array([S.SIZE_NAMES.index(r[2]) for r in rows])[:, None]
    want_bg = np.array([S.BACKGROUND_NAMES.index(r[3]) for r in rows])[:, None]
    unseen = np.array([r[4] for r in rows])
    ok_obj, ok_bg = obj == want_obj, bg == want_bg
    return {
        "guidance": guidance,
        "object": float(ok_obj.mean()),
        "object_per_prompt": {r[0]: float(a) for r, a in zip(rows, ok_obj.mean(1))},
        "size": float((size == want_size).mean()),
        "background": float(ok_bg.mean()),
        "unseen_pairs": float((ok_obj & ok_bg)[unseen].mean()),
    }


def clip_zero_shot(pipe) -> float:
    """Zero-shot object accuracy of the tiny CLIP (``"a <object>"`` captions) on the 1,000 held-out scenes."""
    from helpers.teaching.clip_model import zero_shot_predict

    held = S.load_split("held_out")
    pred = zero_shot_predict(pipe.text_encoder, pipe.image_encoder, pipe.tokenizer, held.images)
    return float((pred == held.objects).float().mean())


def unclip_round_trip(pipe, n: int = 100, *, judge=None) -> dict:
    """On ``n`` held-out scenes: how often decode(encode(x)) at fixed noise keeps the object (decoder guidance
    from the model card), and the pixel MSE of DDIM inversion followed by decoding (guidance 1)."""
    from helpers.embeddings import encode_images
    from helpers.teaching import unclip_model as U
    from helpers.teaching.judge import scene_judge
    from helpers.unclip import decode, invert

    judge = judge or scene_judge()
    held = S.load_split("held_out")
    x = held.images[:n]
    emb = encode_images(pipe, x)
    gen = torch.Generator().manual_seed(0)
    dec = torch.randn((1, 3, U.DECODER_SIZE, U.DECODER_SIZE), generator=gen)
    sr = torch.randn((1, 3, U.IMAGE_SIZE, U.IMAGE_SIZE), generator=gen)
    out = decode(pipe, emb, dec, sr, num_inference_steps=U.DEFAULT_DECODER_STEPS,
                 super_res_num_inference_steps=U.DEFAULT_SUPER_RES_STEPS, guidance_scale=U.DEFAULT_DECODER_GUIDANCE)
    kept = float((judge.predict(out) == held.objects[:n].numpy()).mean())
    inv = invert(pipe, x, emb, num_inference_steps=U.DEFAULT_DECODER_STEPS,
                 super_res_num_inference_steps=U.DEFAULT_SUPER_RES_STEPS)
    rec = decode(pipe, inv.image_embeddings, inv.decoder_latents, inv.super_res_latents,
                 num_inference_steps=U.DEFAULT_DECODER_STEPS, super_res_num_inference_steps=U.DEFAULT_SUPER_RES_STEPS)
    return {"object_kept": kept, "inversion_mse": float(((rec - x) ** 2).mean())}


def prior_accuracy(pipe, per_prompt: int = 8, *, seed: int = 0, judge=None) -> float:
    """Text → prior → decoder with the ``UnCLIPPipeline``: how often the captioned object is drawn, over the
    gate prompts (``per_prompt`` samples each)."""
    from helpers.teaching import unclip_model as U
    from helpers.teaching.judge import scene_judge

    judge = judge or scene_judge()
    rows = gate_prompts()
    prompts = [r[0] for r in rows for _ in range(per_prompt)]
    out = pipe(prompt=prompts, prior_num_inference_steps=U.DEFAULT_PRIOR_STEPS,
               decoder_num_inference_steps=U.DEFAULT_DECODER_STEPS,
               super_res_num_inference_steps=U.DEFAULT_SUPER_RES_STEPS, prior_guidance_scale=U.DEFAULT_PRIOR_GUIDANCE,
               decoder_guidance_scale=U.DEFAULT_DECODER_GUIDANCE, generator=torch.Generator().manual_seed(seed),
               output_type="pt").images
    want = np.array([r[1] for r in rows for _ in range(per_prompt)])
    images = torch.as_tensor(np.asarray(out)).float()
    if images.shape[-1] == 3:  # the unCLIP pipelines return "pt" images channels-last
        images = images.permute(0, 3, 1, 2)
    return float((judge.predict(images) == want).mean())


def box_area(images) -> np.ndarray:
    """(N,) area in pixels of the box around the foreground (:func:`helpers.teaching.judge.object_box`)."""
    from helpers.teaching.judge import object_box

    return object_box(images).prod(axis=1).astype(float)


def size_range() -> tuple[float, float]:
    """Mean box area of small and of big objects on 1,000 fresh ground-truth scenes."""
    fresh = S.fresh_scenes(1_000, 11)
    area = box_area(fresh.images)
    return float(area[fresh.sizes.numpy() == 0].mean()), float(area[fresh.sizes.numpy() == 1].mean())


def negative_prompt_effect(pipe, *, n: int = 64, seed: int = 0, guidance: float | None = None, steps: int = 20
                           ) -> dict:
    """A negative prompt that names an attribute pushes it away. Size: "a red apple" alone and with the negative
    prompt "a big red apple" (box area, as a fraction of the small-to-big range). Background: "a big red apple"
    alone and with the negative prompt "a big red apple on a white background" (share of white backgrounds).
    ``guidance`` defaults to the DDPM teaching model's card, ``steps`` to its 20
    sampler steps."""
    from helpers.teaching.judge import background_of
    from helpers.teaching.text2img import defaults

    g = defaults()["guidance_scale"] if guidance is None else guidance
    small, big = size_range()
    plain = _sample(pipe, ["a red apple"] * n, guidance=g, steps=steps, seed=seed)
    pushed = _sample(pipe, ["a red apple"] * n, guidance=g, steps=steps, seed=seed, negative="a big red apple")
    a0, a1 = box_area(plain).mean(), box_area(pushed).mean()
    plain_bg = _sample(pipe, ["a big red apple"] * n, guidance=g, steps=steps, seed=seed)
    pushed_bg = _sample(pipe, ["a big red apple"] * n, guidance=g, steps=steps, seed=seed,
                        negative="a big red apple on a white background")
    white = S.BACKGROUND_NAMES.index("white")
    return {
        "box_area_plain": float(a0), "box_area_negative": float(a1), "size_range": (small, big),
        "size_shift": float((a0 - a1) / (big - small)),
        "white_share_plain": float((background_of(plain_bg) == white).mean()),
        "white_share_negative": float((background_of(pushed_bg) == white).mean()),
    }


def _walk(pipe, a: str, b: str, frames: int, seed: int, guidance: float, steps: int = 20) -> torch.Tensor:
    from helpers.embeddings import encode_prompts, make_latents
    from helpers.interpolation import slerp
    from helpers.render import render_frames

    embeds, negative = encode_prompts(pipe, [a, b])
    path = slerp(embeds[0], embeds[1], torch.linspace(0, 1, frames))
    return render_frames(pipe, prompt_embeds=path, negative_prompt_embeds=negative[:1],
                         latents=make_latents(pipe, seed), seed=seed, progress=False, output_type="pt",
                         num_inference_steps=steps, guidance_scale=guidance).float().cpu()


def colour_position(images, source: str, target: str) -> np.ndarray:
    """Where each image's foreground colour lies on the line from ``source``'s colour (0) to ``target``'s (1),
    the two colours measured on ground-truth scenes of those objects."""
    from helpers.teaching.judge import foreground_colour

    ends = S.example_scenes([source, target])
    c0, c1 = foreground_colour(ends.images)
    return (foreground_colour(images) - c0) @ (c1 - c0) / float((c1 - c0) @ (c1 - c0))


def prompt_walks(pipe, *, seeds: Sequence[int] = range(10), frames: int = 9, guidance: float | None = None,
                 steps: int = 20, judge=None) -> dict:
    """The prompt-walk gates. Colour: red heart → blue heart, the foreground colour position per frame (should
    rise monotonically). Objects: cat face → dog face, the judge's P(dog) at the two ends, per seed.
    ``guidance`` defaults to the DDPM teaching model's card, ``steps`` to its 20
    sampler steps."""
    from helpers.teaching.judge import scene_judge
    from helpers.teaching.text2img import defaults

    judge = judge or scene_judge()
    g = defaults()["guidance_scale"] if guidance is None else guidance
    colour, ends = [], []
    dog = S.object_index("dog face")
    for seed in seeds:
        walk = _walk(pipe, "a big red heart on a white background", "a big blue heart on a white background",
                     frames, seed, g, steps)
        colour.append(colour_position(walk, "red heart", "blue heart"))
        walk = _walk(pipe, "a big cat face on a white background", "a big dog face on a white background",
                     frames, seed, g, steps)
        p = judge.predict_proba(walk)[:, dog]
        ends.append((float(p[0]), float(p[-1])))
    moves = np.diff(np.array(colour), axis=1)
    return {
        "colour_positions": [list(map(float, c)) for c in colour],
        "colour_monotone_seeds": int((moves >= -0.05).all(axis=1).sum()),
        "object_ends": ends,
        "object_walk_seeds_ok": int(sum(p0 < 0.2 and p1 > 0.8 for p0, p1 in ends)),
        "seeds": len(list(seeds)),
    }


def walk_around_effect(pipe, *, radius: float = 0.15, frames: int = 16, seed: int = 0, guidance: float | None = None,
                       steps: int = 20, prompt: str = "a big cat face on a white background", judge=None) -> dict:
    """A loop around one prompt's embedding at ``radius`` (notebook 04's default): mean RMSE between consecutive
    loop frames and between each frame and the loop's mean, and how often the object is kept.
    ``guidance`` defaults to the DDPM teaching model's card, ``steps`` to its 20
    sampler steps."""
    from helpers.devices import make_generator
    from helpers.embeddings import encode_prompts, make_latents
    from helpers.interpolation import walk_around
    from helpers.render import render_frames
    from helpers.teaching.judge import scene_judge
    from helpers.teaching.text2img import defaults

    judge = judge or scene_judge()
    g = defaults()["guidance_scale"] if guidance is None else guidance
    embeds, negative = encode_prompts(pipe, [prompt])
    loop = walk_around(embeds[0], frames, radius=radius, generator=make_generator(seed))
    x = render_frames(pipe, prompt_embeds=loop, negative_prompt_embeds=negative, latents=make_latents(pipe, seed),
                      seed=seed, progress=False, output_type="pt", num_inference_steps=steps,
                      guidance_scale=g).float()
    step_rmse = ((x - x.roll(1, 0)) ** 2).mean(dim=(1, 2, 3)).sqrt()
    kept = judge.predict(x) == S.object_index(prompt.split("a big ")[1].split(" on ")[0])
    return {"radius": radius, "mean_step_rmse": float(step_rmse.mean()),
            "spread_rmse": float(((x - x.mean(0)) ** 2).mean(dim=(1, 2, 3)).sqrt().mean()),
            "object_kept": float(kept.mean())}


def contrast_saturation(images) -> tuple[np.ndarray, np.ndarray]:
    """Per image: contrast (std of the grey levels) and saturation (mean of max − min over RGB)."""
    x = torch.as_tensor(images).float()
    grey = x.mean(dim=1)
    return grey.std(dim=(1, 2)).numpy(), (x.max(dim=1).values - x.min(dim=1).values).mean(dim=(1, 2)).numpy()


def lerp_vs_slerp_noise(pipe, *, pairs: int = 16, guidance: float | None = None, steps: int = 20,
                        prompt: str = "a big red apple on a white background") -> dict:
    """Midpoint frames of lerp and slerp between two seeds' noises (``pairs`` seed pairs, one prompt): mean
    contrast and saturation of each, beside the endpoints'.
    ``guidance`` defaults to the DDPM teaching model's card, ``steps`` to its 20
    sampler steps."""
    from helpers.embeddings import encode_prompts, make_latents
    from helpers.interpolation import lerp, slerp
    from helpers.render import render_frames
    from helpers.teaching.text2img import defaults

    g = defaults()["guidance_scale"] if guidance is None else guidance
    a = torch.cat([make_latents(pipe, 2 * i) for i in range(pairs)])
    b = torch.cat([make_latents(pipe, 2 * i + 1) for i in range(pairs)])
    noises = {"endpoint": a, "lerp": torch.stack([lerp(u, v, 0.5) for u, v in zip(a, b)]),
              "slerp": torch.stack([slerp(u, v, 0.5) for u, v in zip(a, b)])}
    embeds, negative = encode_prompts(pipe, [prompt])
    out = {}
    for name, lat in noises.items():
        x = render_frames(pipe, prompt_embeds=embeds.expand(len(lat), -1, -1), negative_prompt_embeds=negative,
                          latents=lat, seed=0, progress=False, output_type="pt", num_inference_steps=steps,
                          guidance_scale=g).float()
        c, s = contrast_saturation(x)
        out[name] = {"contrast": float(c.mean()), "saturation": float(s.mean()),
                     "latent_norm": float(lat.flatten(1).norm(dim=1).mean())}
    return out


def guidance_sweep(pipe, *, per_prompt: int = 16) -> dict[str, dict]:
    """:func:`text2img_accuracy` at each of ``CARD_GUIDANCES``, keyed by the guidance as a string."""
    return {str(g): text2img_accuracy(pipe, guidance=g, per_prompt=per_prompt) for g in CARD_GUIDANCES}


def write_card(table: dict[str, dict], folder: str | Path | None = None) -> dict:
    """Write ``card.json`` (steps 20, the guidance with the best object accuracy in ``table``, a
    :func:`guidance_sweep`) into the text-to-image weights folder."""
    from helpers.teaching import WEIGHTS_DIR
    from helpers.teaching.text2img import CARD, NAME

    best = max(CARD_GUIDANCES, key=lambda g: (table[str(g)]["object"], -g))
    card = {"steps": 20, "guidance_scale": best,
            "measured": {g: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for g, r in table.items()},
            "how": "python -m helpers.teaching.quality --write-card (24 gate prompts x 16 samples, 20 DDIM steps)"}
    path = Path(folder or WEIGHTS_DIR / NAME) / CARD
    path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card


#: Sampler steps and guidance scales of the evaluations table (:func:`evaluations_table`).
TABLE_STEPS = (2, 4, 5, 8, 10, 20)
TABLE_GUIDANCES = (1.0, 3.0)


def evaluations_table(pipe, *, steps: Sequence[int] = TABLE_STEPS, guidances: Sequence[float] = TABLE_GUIDANCES,
                      per_prompt: int = 8, judge=None) -> list[dict]:
    """Object accuracy (:func:`text2img_accuracy`) against network evaluations: one row per (steps, guidance),
    with ``nfe`` = steps, twice that with classifier-free guidance (two branches a step)."""
    from helpers.teaching.judge import scene_judge

    judge = judge or scene_judge()
    rows = []
    for n in steps:
        for g in guidances:
            r = text2img_accuracy(pipe, guidance=g, steps=n, per_prompt=per_prompt, judge=judge)
            rows.append({"steps": n, "guidance": g, "nfe": n * (1 if g <= 1 else 2), "object": round(r["object"], 4),
                         "size": round(r["size"], 4), "background": round(r["background"], 4)})
    return rows


def fewest_evaluations(rows: Sequence[dict], accuracy: float = 0.85) -> dict | None:
    """The row of :func:`evaluations_table` with the fewest evaluations that reaches ``accuracy`` (None: none)."""
    good = [r for r in rows if r["object"] >= accuracy]
    return min(good, key=lambda r: (r["nfe"], -r["object"])) if good else None


def write_flow_card(table: dict[str, dict], rows: Sequence[dict], folder: str | Path | None = None) -> dict:
    """Write the flow model's ``card.json``: the guidance with the best object accuracy at 20 steps
    (``table``, a :func:`guidance_sweep`), the fewest steps of ``rows`` (:func:`evaluations_table`) whose
    accuracy at that guidance is within 0.01 of it, and both tables."""
    from helpers.teaching import WEIGHTS_DIR
    from helpers.teaching.flow_model import CARD, NAME

    best = max(CARD_GUIDANCES, key=lambda g: (table[str(g)]["object"], -g))
    near = [r["steps"] for r in rows if r["guidance"] == best and r["object"] >= table[str(best)]["object"] - 0.01]
    card = {"steps": min(near, default=20), "guidance_scale": best,
            "measured": {g: {k: round(v, 4) for k, v in r.items() if isinstance(v, float)} for g, r in table.items()},
            "evaluations": list(rows),
            "how": "python -m helpers.teaching.quality --flow --write-card (24 gate prompts x 16 samples at 20 "
                   "steps; the evaluations table at 8 samples a prompt)"}
    path = Path(folder or WEIGHTS_DIR / NAME) / CARD
    path.write_text(json.dumps(card, indent=1) + "\n", encoding="utf-8")
    return card


def flow_main(folder: Path | None, write: bool) -> int:
    """``--flow``: the teaching flow model's gates at its card's settings (those of the DDPM model, measured by the
    same functions), and the evaluations table of both teaching models side by side (written into its card with
    ``--write-card``)."""
    from helpers.pipelines import load_pipeline
    from helpers.teaching import flow_model
    from helpers.teaching.text2img import defaults as text2img_defaults

    if folder is None:
        pipe = load_pipeline("teaching-flow", device="cpu", dtype=torch.float32)
    else:
        from diffusers import StableDiffusion3Pipeline

        pipe = StableDiffusion3Pipeline.from_pretrained(str(folder), text_encoder_3=None)
    pipe.set_progress_bar_config(disable=True)
    ddpm = load_pipeline("teaching", device="cpu", dtype=torch.float32)
    ddpm.set_progress_bar_config(disable=True)
    rows = evaluations_table(pipe)
    if write:
        table = {str(g): text2img_accuracy(pipe, guidance=g, steps=20) for g in CARD_GUIDANCES}
        print(json.dumps(write_flow_card(table, rows, folder), indent=1))
    card = flow_model.defaults(folder)
    r = text2img_accuracy(pipe, guidance=card["guidance_scale"], steps=card["steps"])
    worst = min(r["object_per_prompt"].items(), key=lambda kv: kv[1])
    print(f"flow model at its card ({card['steps']} steps, guidance {card['guidance_scale']}): object {r['object']:.3f}, "
          f"size {r['size']:.3f}, background {r['background']:.3f}, unseen pairs {r['unseen_pairs']:.3f}, weakest "
          f"{worst}")
    g, n = card["guidance_scale"], card["steps"]
    plain = text2img_accuracy(pipe, guidance=1.0, steps=n)
    print(f"guidance gap at {n} steps: object {plain['object']:.3f} at guidance 1, {r['object']:.3f} at {g}")
    print("negative prompt:", negative_prompt_effect(pipe, guidance=g, steps=n))
    print("prompt walks:", prompt_walks(pipe, guidance=g, steps=n))
    print("walk around:", walk_around_effect(pipe, guidance=g, steps=n))
    ddpm_guidance = text2img_defaults()["guidance_scale"]
    print(f"steps guidance | evaluations: flow object, DDPM object (guidance {ddpm_guidance} where on)")
    for row in rows:
        other = text2img_accuracy(ddpm, guidance=row["guidance"] if row["guidance"] <= 1 else ddpm_guidance,
                                  steps=row["steps"], per_prompt=8)
        print(f"{row['steps']:>5} {row['guidance']:>8} | {row['nfe']:>3}: {row['object']:.3f}, {other['object']:.3f}")
    print("fewest evaluations to 85% object accuracy, flow model:", fewest_evaluations(rows))
    return 0


def main(argv: list[str] | None = None) -> int:
    import argparse

    from helpers.pipelines import load_pipeline
    from helpers.teaching.text2img import defaults

    parser = argparse.ArgumentParser(prog="python -m helpers.teaching.quality", description=__doc__.splitlines()[0])
    parser.add_argument("--write-card", action="store_true")
    parser.add_argument("--text2img", type=Path, metavar="DIR",
                        help="measure this text-to-image folder instead of the shipped one (its card, its gates)")
    parser.add_argument("--flow", nargs="?", const=True, type=Path, metavar="DIR",
                        help="measure the teaching flow model (or this folder of one) instead")
    args = parser.parse_args(argv)
    torch.set_flush_denormal(True)
    if args.flow is not None:
        return flow_main(None if args.flow is True else args.flow, args.write_card)
    pipe = load_pipeline(args.text2img or "teaching", device="cpu", dtype=torch.float32)
    pipe.set_progress_bar_config(disable=True)
    table = guidance_sweep(pipe) if args.write_card else {}
    if args.write_card:
        print(json.dumps(write_card(table, args.text2img), indent=1))
    g = defaults(args.text2img)["guidance_scale"]
    at_default = table.get(str(g)) or text2img_accuracy(pipe, guidance=g)  # the sweep measured it already
    print(f"guidance {g}: weakest prompt", min(at_default["object_per_prompt"].items(), key=lambda kv: kv[1]))
    print("negative prompt:", negative_prompt_effect(pipe, guidance=g))
    print("prompt walks:", prompt_walks(pipe, guidance=g))
    print("walk around:", walk_around_effect(pipe, guidance=g))
    print("lerp vs slerp:", lerp_vs_slerp_noise(pipe, guidance=g))
    if args.text2img is not None:  # a text-to-image retrain: the unCLIP parts are not its business
        return 0
    unclip = load_pipeline("teaching-unclip", device="cpu", dtype=torch.float32)
    print("CLIP zero-shot:", clip_zero_shot(unclip))
    print("unCLIP round trip:", unclip_round_trip(unclip))
    text = load_pipeline("teaching-unclip-text", device="cpu", dtype=torch.float32)
    print("prior:", prior_accuracy(text))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
