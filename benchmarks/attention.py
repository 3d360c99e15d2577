"""Attention capture vs a plain run of the shipped model (128², 25 steps, guidance 7.5), side by side.

    python -m benchmarks.attention [--repeats 11]

Rows: the whole attention_maps() call (capture, per-word maps, no pictures) / generate(); the untraced
(eager) generate() / the traced one, which is the part of the cost that running the UNet's Python
processors at all brings. Medians of times, median of per-pair ratios (benchmarks.run.side_by_side).
Then single UNet calls (batch 2, the guidance batch), traced, eager and capturing, in turn for
--calls rounds: on a busy machine, calls milliseconds apart drift less than images a second apart.
"""
import statistics
import time
import argparse
import json
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

from benchmarks.run import side_by_side
from diffusion_core import GenerationParams, generate, load_model, unet_trace
from diffusion_core.attention import capturing_attention
from diffusion_core.attention_maps import attention_maps

TARGET = 1.5  # the bound on capture / plain


def untraced(model, params):
    enabled = unet_trace.ENABLED
    unet_trace.ENABLED = False
    try:
        return generate(model, params)
    finally:
        unet_trace.ENABLED = enabled


def unet_calls(model, rounds: int) -> dict:
    """Median milliseconds per batch-2 UNet call: traced, eager, capturing (recording 10 tokens)."""
    generator = torch.Generator().manual_seed(0)
    sample = torch.randn(2, 4, 16, 16, generator=generator)
    embeddings = torch.randn(2, 77, model.unet.config.cross_attention_dim, generator=generator)
    timestep = torch.tensor(500)
    traced, eager = unet_trace.noise_predictor(model.unet), unet_trace.EagerNoisePredictor(model.unet)
    times = {"traced": [], "eager": [], "capture": []}
    with torch.no_grad(), capturing_attention(model.unet, tokens=10) as capture:
        calls = {"traced": traced, "eager": eager, "capture": capture}
        for call in calls.values():  # warm-up (records the trace)
            call(sample, timestep, embeddings)
        for _ in range(rounds):
            for name, call in calls.items():
                started = time.perf_counter()
                call(sample, timestep, embeddings)
                times[name].append(time.perf_counter() - started)
            capture.step_maps.clear()
    ms = {name: 1000 * statistics.median(values) for name, values in times.items()}
    return {**{f"{name}_ms": round(value, 2) for name, value in ms.items()},
            "capture/traced": round(ms["capture"] / ms["traced"], 3), "capture/eager": round(ms["capture"] / ms["eager"], 3)}


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=11)
    parser.add_argument("--calls", type=int, default=40)
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
    rows["UNet calls"] = unet_calls(model, args.calls)
    print(f"UNet calls: {rows['UNet calls']}", flush=True)
    ratio = rows["attention_maps / generate"]["ratio"]
    print(json.dumps({"threads": torch.get_num_threads(), "repeats": args.repeats, "rows": rows,
                      "target": TARGET, "met": ratio <= TARGET}, indent=1))


if __name__ == "__main__":
    main()
