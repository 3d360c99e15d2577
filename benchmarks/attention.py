"""Attention capture vs a plain run of the shipped model (128², 25 steps, guidance 7.5), side by side.

    python -m benchmarks.attention [--repeats 11]

Rows: the whole attention_maps() call (capture, per-word maps, no pictures) / generate(); the untraced
(eager) generate() / the traced one, which is the part of the cost that running the UNet's Python
processors at all brings. Medians of times, median of per-pair ratios (benchmarks.run.side_by_side).
"""
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

from benchmarks.run import side_by_side
from diffusion_core import GenerationParams, generate, load_model, unet_trace
from diffusion_core.attention_maps import attention_maps

TARGET = 1.5  # the bound on capture / plain


def untraced(model, params):
    enabled = unet_trace.ENABLED
    unet_trace.ENABLED = False
    try:
        return generate(model, params)
    finally:
        unet_trace.ENABLED = enabled


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=11)
    args = parser.parse_args(argv)
    model = load_model(device="cpu")
    params = GenerationParams(prompt="a red circle on a blue background", seed=1, steps=25, guidance=7.5,
                              width=128, height=128)
    rows = {}
    for name, a, b in (("attention_maps / generate", lambda: attention_maps(model, params), lambda: generate(model, params)),
                       ("eager generate / traced generate", lambda: untraced(model, params), lambda: generate(model, params))):
        t_a, t_b, ratio = side_by_side(a, b, args.repeats)
        rows[name] = {"a_s": round(t_a, 3), "b_s": round(t_b, 3), "ratio": round(ratio, 3)}
        print(f"{name}: {t_a:.3f} s vs {t_b:.3f} s, ratio {ratio:.2f}", flush=True)
    ratio = rows["attention_maps / generate"]["ratio"]
    print(json.dumps({"threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows,
                      "target": TARGET, "met": ratio <= TARGET}, indent=1))


if __name__ == "__main__":
    main()
