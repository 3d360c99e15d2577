"""Measure how well a shapes model follows prompts, with the rule-based classifier.

    python -m training.evaluate --model assets/shapes-sd [--samples 256] [--json out.json]

Prints, per guidance value, how often the shape kind, shape colour and
background colour of generated images match a full caption; then the negative
prompt check ("a circle" with negative "red") and the variation check (red circle
on blue -> "a green circle on a blue background", strength 0.6), and the attention check (where
each word of a full caption acts: on the shape or off it).
"""
import argparse
import itertools
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from diffusion_core import GenerationParams, generate, load_model
from training.shape_classifier import classify, shape_mask
from training.shapes_data import COLOURS, SHAPES

EXAMPLE_INIT = Path(__file__).resolve().parent.parent / "assets" / "examples" / "red_circle_on_blue.png"
COMBINATIONS = [(s, c, b) for s, c, b in itertools.product(SHAPES, COLOURS, COLOURS) if c != b]  # 224


def adherence(model, guidance, samples, steps, scheduler):
    hits = {"shape": 0, "colour": 0, "background": 0, "all": 0}
    for i in range(samples):
        shape, colour, background = COMBINATIONS[i % len(COMBINATIONS)]
        params = GenerationParams(prompt=f"a {colour} {shape} on a {background} background", seed=10_000 + i,
                                  steps=steps, guidance=guidance, scheduler=scheduler, width=128, height=128)
        reading = classify(generate(model, params).images[0])
        right = {"shape": reading.shape == shape, "colour": reading.colour == colour,
                 "background": reading.background == background}
        for key, ok in right.items():
            hits[key] += ok
        hits["all"] += all(right.values())
    return {key: value / samples for key, value in hits.items()}


def negative_check(model, guidance, samples, steps, scheduler):
    red = 0
    for start in range(0, samples, 8):
        params = GenerationParams(prompt="a circle", negative_prompt="red", seed=20_000 + start,
                                  num_images=min(8, samples - start), steps=steps, guidance=guidance,
                                  scheduler=scheduler, width=128, height=128)
        red += sum(classify(image).colour == "red" for image in generate(model, params).images)
    without = 0
    for start in range(0, samples, 8):
        params = GenerationParams(prompt="a circle", seed=20_000 + start, num_images=min(8, samples - start),
                                  steps=steps, guidance=guidance, scheduler=scheduler, width=128, height=128)
        without += sum(classify(image).colour == "red" for image in generate(model, params).images)
    return {"red_with_negative": red / samples, "red_without_negative": without / samples}


def variation_check(model, guidance, samples, steps, scheduler, strength=0.6):
    init = Image.open(EXAMPLE_INIT).convert("RGB")
    hits = 0
    for start in range(0, samples, 8):
        params = GenerationParams(prompt="a green circle on a blue background", seed=30_000 + start,
                                  num_images=min(8, samples - start), steps=steps, guidance=guidance,
                                  scheduler=scheduler, width=128, height=128, strength=strength)
        for image in generate(model, params, init_image=init).images:
            reading = classify(image)
            hits += (reading.shape, reading.colour, reading.background) == ("circle", "green", "blue")
    return {"green_circle_on_blue": hits / samples}


CONCENTRATION = 2.0  # the attention bar: a word's mass on its region >= 2x that region's area share


def share_on_shape(maps, word: str, mask, step: int | None = None) -> float:
    """The word's attention mass inside the shape, over the shape's area share (1 = no preference); over all
    steps, or at one (0-based)."""
    heat = maps.heat_map(maps.word_index(word), step=step)
    return float(heat[mask].sum() / heat.sum() / mask.mean())


def meets_bar(ratio: float, on_shape: bool) -> bool:
    """>= CONCENTRATION for a word of the shape; for the background's, the mirror: <= 1 / CONCENTRATION."""
    return ratio >= CONCENTRATION if on_shape else ratio <= 1 / CONCENTRATION


def attention_check(model, guidance, samples, steps, scheduler):
    """Where the words act: for full captions, share_on_shape of the shape's colour and name (on the shape) and
    of the background's colour (off it), with the shape as the shapes classifier reads the image; how often
    each meets the bar, and all three. Images whose shape the classifier does not read are left out."""
    from diffusion_core.attention_maps import attention_maps  # only here: the other checks need no capture

    roles = (("colour", True), ("shape", True), ("background", False))
    ratios = {role: [] for role, _ in roles}
    for i in range(samples):
        shape, colour, background = COMBINATIONS[(i * 37) % len(COMBINATIONS)]  # spread over all words
        params = GenerationParams(prompt=f"a {colour} {shape} on a {background} background", seed=40_000 + i,
                                  steps=steps, guidance=guidance, scheduler=scheduler, width=128, height=128)
        maps = attention_maps(model, params)
        mask = shape_mask(maps.image)
        if classify(maps.image).shape != shape or not mask.any():
            continue
        for (role, _), word in zip(roles, (colour, shape, background)):
            ratios[role].append(share_on_shape(maps, word, mask))
    met = {role: [meets_bar(r, on_shape) for r in ratios[role]] for role, on_shape in roles}
    images = len(ratios["colour"])
    return {"images": images, "all_three_met": sum(map(all, zip(*met.values()))) / max(1, images),
            **{f"{role}_median": float(np.median(values)) if values else None for role, values in ratios.items()},
            **{f"{role}_met": float(np.mean(hits)) if hits else None for role, hits in met.items()}}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/shapes-sd")
    parser.add_argument("--samples", type=int, default=256)
    parser.add_argument("--steps", type=int, default=25)
    parser.add_argument("--guidance", type=float, nargs="+", default=[7.5, 1.0])
    parser.add_argument("--scheduler", default=None, help="default: the model's own (as in the app)")
    parser.add_argument("--check-samples", type=int, default=64,
                        help="images for the negative and variation checks (0 skips them)")
    parser.add_argument("--check-guidance", type=float, nargs="+", default=None,
                        help="guidance values for the negative and variation checks (default: the first --guidance)")
    parser.add_argument("--attention-samples", type=int, default=32,
                        help="full captions for the attention check, at the first --guidance (0 skips it)")
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    model = load_model(args.model, device="cpu")
    scheduler = args.scheduler or model.defaults["scheduler"]  # what the app and CLI use too
    report = {"model": args.model, "samples": args.samples, "steps": args.steps, "scheduler": scheduler,
              "threads": torch.get_num_threads(), "adherence": {}}
    print(f"{args.samples} samples of full captions, 128x128, {args.steps} steps, scheduler {scheduler}")
    print(f"| guidance | shape kind | shape colour | background | all three | seconds |")
    print(f"|---:|---:|---:|---:|---:|---:|")
    for guidance in args.guidance:
        started = time.time()
        scores = adherence(model, guidance, args.samples, args.steps, scheduler)
        report["adherence"][str(guidance)] = scores
        print(f"| {guidance:g} | {scores['shape']:.1%} | {scores['colour']:.1%} | {scores['background']:.1%} "
              f"| {scores['all']:.1%} | {time.time() - started:.0f} |", flush=True)
    report["negative"], report["variation"] = {}, {}
    for guidance in (args.check_guidance or args.guidance[:1]) if args.check_samples else []:
        negative = negative_check(model, guidance, args.check_samples, args.steps, scheduler)
        report["negative"][str(guidance)] = negative
        print(f"guidance {guidance:g}, negative prompt: 'a circle' + negative 'red' -> red shape in "
              f"{negative['red_with_negative']:.1%} (without the negative: {negative['red_without_negative']:.1%})")
        variation = variation_check(model, guidance, args.check_samples, args.steps, scheduler)
        report["variation"][str(guidance)] = variation
        print(f"guidance {guidance:g}, variation: red circle on blue, 'a green circle on a blue background', "
              f"strength 0.6 -> green circle on blue in {variation['green_circle_on_blue']:.1%}", flush=True)
    if args.attention_samples:
        started = time.time()
        report["attention"] = attention_check(model, args.guidance[0], args.attention_samples, args.steps, scheduler)
        a = report["attention"]
        print(f"guidance {args.guidance[0]:g}, attention (mass on the shape / its area share, {a['images']} images): "
              f"shape colour median {a['colour_median']:.2f} (>= 2 in {a['colour_met']:.0%}), shape name "
              f"{a['shape_median']:.2f} ({a['shape_met']:.0%}), background colour {a['background_median']:.2f} "
              f"(<= 0.5 in {a['background_met']:.0%}); all three in {a['all_three_met']:.0%} "
              f"({time.time() - started:.0f} s)", flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
