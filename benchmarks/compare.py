"""Benchmarks for the comparisons: batched against the same number of separate runs, side by side.

    python -m benchmarks.compare [--repeats 7] [--model assets/shapes-sd]

Strength sweep of 5 (0.2 ... 1.0) in one batch vs 5 image variations one by one; seed interpolation of
8 frames in one batch vs 8 runs from the same interpolated noise. Each ratio is the median of per-pair
ratios, the two sides alternating (benchmarks/run.py side_by_side). Both sides' warm-up runs record the
UNet traces for their batch sizes, so no side pays a trace in the timed runs.
"""
import argparse
import os
from dataclasses import replace

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from PIL import Image  # noqa: E402

from benchmarks.run import ROOT, side_by_side  # noqa: E402
from diffusion_core import DEFAULT_MODEL, GenerationParams, generate, load_model  # noqa: E402
from diffusion_core.compare.seed_interpolation import interpolated_noise, seed_interpolation  # noqa: E402
from diffusion_core.compare.strength_sweep import DEFAULT_STRENGTHS, strength_sweep  # noqa: E402


def sweep_vs_separate(model, params, init, repeats):
    batched = lambda: strength_sweep(model, params, init, DEFAULT_STRENGTHS)  # noqa: E731
    separate = lambda: [generate(model, replace(params, strength=s), init) for s in DEFAULT_STRENGTHS]  # noqa: E731
    return side_by_side(batched, separate, repeats)


def interpolation_vs_separate(model, params, seed_b, frames, repeats):
    fractions, noise = interpolated_noise(model, params, seed_b, frames)
    seeds = [params.seed if t < 0.5 else seed_b for t in fractions]
    batched = lambda: seed_interpolation(model, params, seed_b, frames)  # noqa: E731
    separate = lambda: [generate(model, params, seeds=[s], noise=noise[i:i + 1])  # noqa: E731
                        for i, s in enumerate(seeds)]
    return side_by_side(batched, separate, repeats)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--model", default=DEFAULT_MODEL)
    args = parser.parse_args(argv)
    model = load_model(args.model)
    d = model.defaults
    params = GenerationParams(prompt="a green circle on a blue background", seed=193, steps=d["steps"],
                              guidance=d["guidance"], width=d["width"], height=d["height"])
    init = Image.open(ROOT / "assets" / "examples" / "red_circle_on_blue.png")
    rows = [("strength sweep of 5, one batch / 5 separate variations", *sweep_vs_separate(model, params, init, args.repeats)),
            ("seed interpolation of 8, one batch / 8 separate runs",
             *interpolation_vs_separate(model, replace(params, prompt="a yellow star on a purple background"), 194, 8,
                                        args.repeats))]
    print(f"{model.name} on {model.device.type}, {params.steps} steps, {params.width}x{params.height}, "
          f"{args.repeats} pairs each")
    print(f"{'':60s} {'batched s':>10s} {'separate s':>11s} {'ratio':>7s}")
    for name, batched, separate, ratio in rows:
        print(f"{name:60s} {batched:10.3f} {separate:11.3f} {ratio:7.2f}")


if __name__ == "__main__":
    main()
