"""The numbers the notebooks' prose relies on, read back from what each executed notebook printed.

Each :class:`Claim` names a printed line (a regular expression whose groups are the numbers), what the prose says
about it, and the condition that makes the sentence true. ``tests/test_notebooks.py`` checks every claim after
executing a notebook: on the teaching backend all of them; on the tiny random pipelines (the real models' code
path) only the ones marked ``everywhere`` — facts of the code, such as a by-hand loop matching the library, which
hold for any weights. A sentence whose effect depends on the backend prints a verdict computed from its numbers
instead, and is not listed here.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass

NUM = r"(-?[0-9.]+(?:e[+-]?\d+)?|nan)"


@dataclass(frozen=True)
class Claim:
    pattern: str  # a printed line; NUM groups are parsed as floats
    holds: Callable[..., bool]  # called with the groups
    says: str  # what the prose says, in a few words
    everywhere: bool = False  # also checked on the tiny random pipelines


def _tiny(x: float) -> bool:
    return abs(x) < 1e-4


CLAIMS: dict[str, list[Claim]] = {
    "01_diffusion_basics": [
        Claim(rf"ᾱ_t from the product of \(1 − β_i\) vs the scheduler's: largest difference {NUM}", _tiny,
              "ᾱ_t is the product of (1 − β)", everywhere=True),
        Claim(rf"μ̃ from ε vs DDPMScheduler.step's mean at t = 1, 100, 500, 999: largest difference {NUM}", _tiny,
              "the posterior mean derived from Bayes, in its ε form, is DDPMScheduler.step's", everywhere=True),
        Claim(rf"β̃ vs DDPMScheduler's variance: largest difference {NUM}", _tiny,
              "the posterior variance derived from Bayes is DDPMScheduler's", everywhere=True),
        Claim(rf"x_t by hand vs DDPMScheduler.add_noise: largest difference {NUM}", _tiny,
              "q(x_t | x_0) written out is diffusers' add_noise", everywhere=True),
        Claim(rf"training loss at the end \(mean of the last \d+ steps\): {NUM}", lambda loss: 0.3 < loss < 0.4,
              "the toy loss stops near 0.35"),
        Claim(rf"loss averaged over t, on fresh points: best possible {NUM}, trained network {NUM} "
              rf"\(training loss at the end: {NUM}\)",
              lambda best, net, train: 0.25 < best < 0.45 and abs(net - best) < 0.05 and abs(train - best) < 0.05,
              "the ≈ 0.35 floor is the best possible predictor's loss, and the network sits on it"),
        Claim(rf"best possible loss at t = \d+: {NUM}; at t = \d+: {NUM}", lambda low_t, high_t: low_t > 0.8 > 0.02 > high_t,
              "the noise is nearly unpredictable at small t and predictable at large t", everywhere=True),
        Claim(rf"1000 DDPM steps by hand vs DDPMScheduler.step: largest difference {NUM}", _tiny,
              "the reverse loop written out is DDPMScheduler.step", everywhere=True),
        Claim(rf"50 DDIM steps by hand vs DDIMScheduler.step: largest difference {NUM}", _tiny,
              "the DDIM step written out is DDIMScheduler.step", everywhere=True),
        Claim(rf"guided sampling by hand vs the pipeline .*: largest pixel difference {NUM}", _tiny,
              "the CFG loop written out is the pipeline", everywhere=True),
        Claim(rf"DDIM from the same noise twice, largest difference: {NUM}", lambda d: d == 0,
              "DDIM is deterministic", everywhere=True),
        Claim(rf"fit ratios: DDPM 1000 {NUM}, DDIM 50 {NUM}, DDIM 10 {NUM}",
              lambda ddpm, ddim50, ddim10: ddpm < ddim50 and ddim10 - ddim50 < (ddim50 - ddpm) / 2,
              "DDIM fits worse than DDPM; going from 50 to 10 DDIM steps costs much less than the gap"),
        Claim(rf"DDPM's update with fresh noise on the same 50 steps \(DDIM with η = 1\): fit {NUM} "
              rf"\(DDIM 50, η = 0: {NUM}; DDPM 1000: {NUM}\)",
              lambda noisy, ddim50, ddpm: noisy < ddim50 - 0.1 and abs(noisy - ddpm) < 0.1,
              "on DDIM's 50 steps, fresh noise fits about as well as 1000 DDPM steps: the noise makes the gap"),
        Claim(rf"written-out cross-attention vs diffusers' processor: max pixel difference {NUM}", _tiny,
              "cross-attention written out is diffusers' processor", everywhere=True),
        Claim(rf"neighbours t=0 and t=100: {NUM}; far apart, t=0 and t=999: {NUM}", lambda near, far: near > far,
              "nearby timesteps get more similar embeddings on the whole"),
        Claim(rf"'apple': {NUM}x as much attention inside the drawn apple", lambda r: r > 1.5,
              "the object word attends to the object"),
        Claim(rf"'blue': {NUM}x as much attention inside the drawn apple", lambda r: r < 1,
              "the background word attends to the background"),
        Claim(r"below half its first distance: coarse layout at t = (\d+), fine detail at t = (\d+)",
              lambda coarse, fine: coarse > fine and coarse >= 750,
              "x̂₀ settles coarse to fine: the layout within the first steps, the detail later"),
    ],
    "02_slerp_and_latent_geometry": [
        Claim(rf"θ = 90°: lerp midpoint norm {NUM} = cos\(45°\) = √2/2; slerp midpoint norm {NUM}",
              lambda lerp, slerp: abs(lerp - math.sqrt(0.5)) < 1e-3 and abs(slerp - 1) < 1e-3,
              "the chord's midpoint has norm cos(θ/2), the arc's stays 1", everywhere=True),
        Claim(rf"angle between two independent latents: {NUM}° ± {NUM}°", lambda a, s: abs(a - 90) < 3,
              "two noises are nearly perpendicular"),
        Claim(rf"lerp midpoint: \|x\|/√d = {NUM}, i.e. {NUM} standard deviations below", lambda n, k: n < 0.8 and k > 5,
              "the lerp midpoint falls far inside the shell (≈ 0.71 √d)"),
        Claim(rf"slerp midpoint: \|x\|/√d = {NUM}", lambda n: 0.9 < n < 1.1, "the slerp midpoint stays on the shell"),
        Claim(rf"b = a \+ tiny nudge +{NUM} .*relative error {NUM}", lambda naive, err: math.isnan(naive) and err < 1e-6,
              "the naive formula breaks for nearly parallel vectors, helpers.slerp does not", everywhere=True),
        Claim(rf"image 0: mean {NUM}, std {NUM}", lambda m, s: s < 0.95,
              "inverted latents are not fresh unit Gaussian noise"),
        Claim(rf"DDIM inversion by hand vs backend.invert: largest difference {NUM}", _tiny,
              "DDIM inversion written out is the helper's", everywhere=True),
    ],
    "03_unclip_image_interpolation": [
        Claim(r"each image's most similar caption is its own for (\d+) of (\d+) images", lambda k, n: k == n,
              "CLIP pairs every example scene with its own caption"),
        Claim(rf"contrastive loss: true pairs {NUM}, shuffled pairs {NUM}, chance ln 8 = {NUM}",
              lambda true, shuffled, chance: true < chance < shuffled, "the trained CLIP's loss is far below chance"),
        *(Claim(rf"image {name}, mean squared error from the input \(pixels in \[0, 1\]\): fixed-noise endpoint {NUM}, "
                rf"inverted reconstruction {NUM}", lambda fixed, inverted: inverted < 0.01 and fixed > 10 * inverted,
                f"inverted latents redraw image {name} up to a small error, over ten times below the fixed-noise endpoint's")
          for name in "AB"),
        Claim(rf"eta = 0.0: mean pixel std across the 3 seeds = {NUM}", lambda s: s == 0,
              "η = 0 decodes the same frame from any seed", everywhere=True),
        Claim(rf"eta = 0.5: mean pixel std across the 3 seeds = {NUM}, largest {NUM}\n"
              rf"eta = 1.0: mean pixel std across the 3 seeds = {NUM}", lambda half, _, one: 0 < half < one,
              "η > 0 draws variations, and η = 1 strays further than η = 0.5"),
        Claim(rf"mean cosine with the pictures of the same caption: z_t {NUM}, prior samples {NUM} "
              rf"\(two pictures of one caption: {NUM}\)",
              lambda text, prior, pictures: text < prior - 0.1 and abs(prior - pictures) < 0.03,
              "the prior's samples are about as similar to the pictures as two pictures are, z_t much less"),
        Claim(rf"z_t {NUM}, centre of the prior samples {NUM}; the directions from the pictures to z_t: mean cosine "
              rf"between captions {NUM}", lambda text, prior, shared: text > 3 * prior and shared > 0.5,
              "z_t is several times farther from its pictures than the prior's samples, by a largely shared shift"),
        Claim(rf"spread \(mean distance to the cloud's centre\), mean of \d+ captions: pictures {NUM}, prior samples {NUM}",
              lambda pictures, prior: 0.01 < prior < 0.5 * pictures,
              "the prior's samples differ from seed to seed but spread well under half as far as the pictures"),
        Claim(r"the judge finds the captioned object decoded from z_t in \d+%, from the prior's z_i in (\d+)%",
              lambda prior: prior > 50, "the prior's embedding decodes to the captioned object mostly"),
        Claim(r"the prior predicts 'sample', the decoder 'epsilon', super-res 'sample'", lambda: True,
              "the teaching prior and upsampler predict the clean sample, the decoder the noise", everywhere=True),
        Claim(rf"P\(red heart\): {NUM} at λ = 0 → {NUM} at λ = 1", lambda a, b: a > 0.5 > b,
              "the prior walk starts at the first caption's object"),
        Claim(rf"P\(blue heart\): {NUM} at λ = 0 → {NUM} at λ = 1", lambda a, b: a < 0.5 < b,
              "the prior walk ends at the second caption's object"),
    ],
    "04_prompt_walks": [
        Claim(rf"step 0.001: .*positive − negative changed by at most {NUM}", _tiny,
              "the cookbook's walk leaves the positive − negative difference where it was", everywhere=True),
        Claim(rf"the (\d+) position\(s\) before the first different token change by at most {NUM}; from it to the "
              rf"end-of-text token by {NUM}% on average, the \d+ padding positions after the end-of-text token by {NUM}%",
              lambda k, before, words, padding: k >= 1 and _tiny(before) and words > 1 and padding > 1,
              "causal attention: positions before the first different word stay, the padding after the end moves",
              everywhere=True),
        Claim(r"naive chaining: \d+ frames, (\d+) repeated", lambda k: k >= 1,
              "chaining two-prompt walks repeats the join frame", everywhere=True),
        Claim(r"interpolation_path: \d+ frames, (\d+) repeated", lambda k: k == 0,
              "interpolation_path repeats no frame", everywhere=True),
        Claim(rf"every frame is {NUM}–{NUM} × \|embedding\| away from the prompt \(RADIUS = {NUM}\)",
              lambda lo, hi, r: abs(lo - r) < 0.01 and abs(hi - r) < 0.01, "the loop keeps a constant radius",
              everywhere=True),
    ],
    "05_circular_noise_walks": [
        Claim(rf"circular_walk: wrap-around step / mean step = {NUM}", lambda r: 0.9 < r < 1.1,
              "in a seamless loop the wrap-around is an ordinary step"),
        Claim(rf"steps from {NUM} to {NUM} \(± {NUM}% of the mean\)", lambda lo, hi, pct: pct < 10,
              "the loop's steps are nearly equal"),
        Claim(rf"with the endpoint: wrap-around step = {NUM}", lambda s: s == 0,
              "including 2π repeats the first frame", everywhere=True),
    ],
    "06_interactive_explorer": [
        Claim(r"scrubbed λ through 7 positions: (\d+) new render\(s\)", lambda k: k == 0,
              "scrubbing λ re-renders nothing", everywhere=True),
        Claim(r"changed seed B and back: (\d+) new render\(s\)", lambda k: k == 1,
              "going back to a seed is served from the cache", everywhere=True),
        Claim(r"vs render_frames with seed \d+: largest pixel difference (\d+)", lambda d: d == 0,
              "a live frame is the pipeline's own picture", everywhere=True),
        Claim(r"(\d+) rendered, (\d+) dropped; rendered \+ dropped = sent: True", lambda r, d: r >= 1,
              "every position of a drag is rendered or dropped, none queued", everywhere=True),
    ],
    "07_smooth_interpolation": [
        Claim(r"the two largest of the (\d+) steps carry (\d+)% of the walk's path length \(in an even walk: (\d+)%\)",
              lambda n, share, even: share > even, "the uniform walk does not move evenly"),
        Claim(rf"the judge: P\(.+?\) falls below ½ at λ = {NUM}, P\(.+?\) rises above ½ at λ = {NUM}; the largest "
              rf"step is λ {NUM} → {NUM}; in between it reads '.+?', whose P rises above ½ at λ = {NUM}",
              lambda leave, arrive, lo, hi, middle: leave < middle < arrive and lo <= middle <= hi,
              "the judge goes from the first object to a third, then to the second; the largest step is the third's"),
        Claim(rf"morph: rendered \d+ frames \(budget \d+\); CV {NUM} → {NUM}, jump ratio {NUM} → {NUM}",
              lambda cv, cv_after, jump, jump_after: cv_after < cv / 3 and jump_after < jump,
              "re-timing evens the morph out plainly"),
        Claim(rf"prompt walk: rendered \d+ frames \(budget \d+\); CV {NUM} → {NUM}, jump ratio",
              lambda before, after: after < before, "re-timing evens the prompt walk out"),
        Claim(rf"no frame's λ moved by more than {NUM}", lambda shift: shift < 0.15,
              "re-timing the prompt walk moves its frames' λ only a little"),
        Claim(rf"morph, slerped noises: brightness strays up to {NUM}, contrast up to {NUM} .*; CV {NUM}\n"
              rf"morph, AdaIN noises: brightness strays up to {NUM}, contrast up to {NUM} .*; CV {NUM}\n"
              rf"AdaIN's frames differ from the slerped ones by {NUM} on average .*; its morph is no more even",
              lambda b, c, cv, b_adain, c_adain, cv_adain, gap: max(b, c, b_adain, c_adain) < 0.05 and cv_adain >= cv
              and gap < 0.02,
              "no drift to fix: frames within a few hundredths of the line, AdaIN's nearly the same, no more even"),
        Claim(r"frames with 0.25 < λ < 0.75: (\d+) of \d+ under Beta\(3, 3\), (\d+) under uniform λ",
              lambda beta, uniform: beta > uniform, "Beta(3, 3) packs the frames in the middle", everywhere=True),
    ],
    "08_morph_your_own_images": [
        Claim(rf"VAE round trip \(encode → decode\) {NUM}, inversion round trip \(encode → invert → render → decode\) "
              rf"{NUM}\nDDIM's own part, the inversion's round trip against the VAE's: {NUM}",
              lambda vae, inversion, ddim: vae > inversion / 2 and ddim < vae / 2,
              "the VAE's round trip makes most of the endpoint error; DDIM's way up and down adds a small part"),
        Claim(rf"max \|by hand - processor\| = {NUM}", _tiny,
              "attention interpolation written out is the installed processor", everywhere=True),
        Claim(rf"mean pixel change of the middle frames {NUM}, of the endpoints {NUM}",
              lambda middle, ends: ends < 1e-4, "attention interpolation leaves the endpoints untouched",
              everywhere=True),
        Claim(rf"PDV {NUM} → {NUM}, 1 - Gini {NUM} → {NUM}, endpoint MSE {NUM} → {NUM}",
              lambda p0, p1, s0, s1, e0, e1: p1 < p0 and s1 > s0 and abs(e1 - e0) < 1e-4,
              "the full method is more even and keeps the endpoints"),
    ],
    "09_timelines_and_music": [
        Claim(rf"plan by hand vs helpers.plan_frames: segments equal: True, largest λ difference {NUM}", _tiny,
              "the plan written out is helpers.plan_frames", everywhere=True),
        Claim(rf"comes back at pixel MSE {NUM}; the prompt keyframes beside it are {NUM} away",
              lambda mse, others: mse < 0.01 and others > 5 * mse, "the picture comes back in its frame"),
        Claim(rf"turns the noise by {NUM}°; ease-out's last step of a {NUM}° segment is .* = {NUM}°; "
              rf"smallest step of the loop {NUM}°",
              lambda step, _theta, expected, smallest: abs(step - expected) < 1e-3 and smallest > 0,
              "the loop closes with the last segment's own last step, no frame repeated", everywhere=True),
        Claim(rf"the MP4 plays {NUM} s of video and {NUM} s of sound", lambda v, a: abs(v - a) <= 1 / 8,
              "the sound track lasts as long as the video, within a frame", everywhere=True),
        Claim(rf"correlation of frame distance with onset strength: r = {NUM}", lambda r: r > 0.6,
              "the frames move on the beats"),
    ],
    "10_flow_matching": [
        Claim(rf"target ε − x₀ vs the path's derivative by finite differences: largest difference {NUM}",
              lambda d: d < 1e-3, "the flow target is the straight path's velocity", everywhere=True),
        Claim(rf"mean straightness: flow model {NUM}, DDPM model in flow coordinates {NUM}",
              lambda f, d: f < 0.7 and abs(f - d) < 0.1, "the learned paths bend, and no less than DDIM's"),
        Claim(rf"mean straightness after reflow: {NUM}", lambda s: s > 0.9, "reflow straightens the paths"),
        Claim(rf"two steps: the reflowed model fits {NUM}, the flow model {NUM}", lambda r, f: r < f / 3,
              "after reflow two steps come close to fifty"),
        Claim(rf"50 steps: Euler in flow coordinates vs DDIMScheduler: largest difference {NUM}", _tiny,
              "DDIM is Euler on the flow ODE", everywhere=True),
        Claim(rf"lerp midpoint {NUM}, slerp midpoint {NUM}", lambda lerp, slerp: lerp < 0.8 and abs(slerp - 1) < 0.1,
              "the noise end is the same Gaussian shell", everywhere=True),
        Claim(rf"reverse Euler by hand vs helpers.flow.integrate: largest difference {NUM}", _tiny,
              "the reverse Euler loop written out is helpers.flow.integrate", everywhere=True),
        Claim(rf"from 8 to 16 steps the error falls {NUM}x \(Euler\) and {NUM}x \(midpoint\)",
              lambda e, m: m > 2 * e and e > 1.5, "the midpoint solver's error falls faster than Euler's"),
        Claim(rf"FireFlow by hand vs helpers.flow.integrate: largest difference {NUM}", _tiny,
              "the FireFlow loop written out is helpers.flow.integrate", everywhere=True),
        Claim(rf"FireFlow, 8 steps \({NUM} evaluations\), MSE {NUM}; midpoint, 4 steps \({NUM} evaluations\), MSE {NUM}",
              lambda n_fire, fire, n_mid, mid: n_fire <= n_mid + 1 and fire < mid / 5,
              "at the same cost FireFlow's round trip is far closer than the midpoint method's"),
        Claim(rf"pixel MSE {NUM} and {NUM}", lambda a, b: max(a, b) < 0.01, "the morph's endpoints are the pictures"),
        Claim(rf"1 − Gini: slerp {NUM}, with attention on the image tokens {NUM}", lambda a, b: b > a + 0.03,
              "attention interpolation on the image tokens evens the morph out"),
    ],
}


def failed_claims(notebook: str, backend: str, printed: str) -> list[str]:
    """What is wrong with ``notebook``'s claims in its printed text (empty: every claim holds)."""
    problems = []
    for claim in CLAIMS.get(notebook, []):
        if backend != "teaching" and not claim.everywhere:
            continue
        match = re.search(claim.pattern, printed)
        if match is None:
            problems.append(f"{notebook}: no printed line for {claim.says!r} (/{claim.pattern}/)")
        elif not claim.holds(*map(float, match.groups())):
            problems.append(f"{notebook}: {claim.says!r} is false on {backend}: {match.group(0)!r}")
    return problems
