"""Benchmarks: manual loop vs diffusers pipeline, batched grid, shipped-model speed, cold start,
CPU options, and (where CUDA exists) a GPU section. Prints a table and writes JSON.

    python -m benchmarks.run [--repeats 5] [--json benchmarks/results.json] [--skip shipped,sd15,gpu,cold-start,cpu-options,sd15-compile,sd15-bf16] [--update]

These machines are noisy: every ratio is measured side by side in the same run,
alternating the two sides, and reported as the median of per-pair ratios.
"""
import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch

from diffusion_core import GenerationParams, generate, guidance_grid, load_model, unet_trace
from diffusion_core.generate import SEED_GRID

ROOT = Path(__file__).resolve().parent.parent


def timed(fn) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def side_by_side(a, b, repeats):
    """Median time of a, of b, and median of the per-pair ratios a/b (alternating order)."""
    a(), b()  # warm-up
    times_a, times_b, ratios = [], [], []
    for i in range(repeats):
        if i % 2:
            tb, ta = timed(b), timed(a)
        else:
            ta, tb = timed(a), timed(b)
        times_a.append(ta); times_b.append(tb); ratios.append(ta / tb)
    return statistics.median(times_a), statistics.median(times_b), statistics.median(ratios)


def build_sd15_architecture(folder: Path) -> Path:
    """SD-1.5's UNet, VAE and CLIP text encoder shapes with random weights (no download)."""
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    tokenizer = CLIPTokenizer.from_pretrained(ROOT / "assets" / "shapes-sd" / "tokenizer")
    torch.manual_seed(0)
    unet = UNet2DConditionModel(sample_size=64, cross_attention_dim=768, attention_head_dim=8)
    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                        up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4,
                        sample_size=512)
    text_encoder = CLIPTextModel(CLIPTextConfig(vocab_size=49408, hidden_size=768, intermediate_size=3072,
                                                num_hidden_layers=12, num_attention_heads=12,
                                                max_position_embeddings=77, hidden_act="quick_gelu",
                                                bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet, scheduler=scheduler,
                            safety_checker=None, feature_extractor=None,
                            requires_safety_checker=False).save_pretrained(folder)
    return folder


def engines(model, params, repeats):
    manual = lambda: generate(model, params)
    pipeline = lambda: generate(model, replace(params, engine="pipeline"))
    t_manual, t_pipeline, ratio = side_by_side(manual, pipeline, repeats)
    return {"manual_s": t_manual, "pipeline_s": t_pipeline, "ratio": ratio}


def grid_vs_sequential(model, params, repeats):
    batched = lambda: guidance_grid(model, params, SEED_GRID)
    sequential = lambda: [generate(model, replace(params, guidance=g, engine="pipeline")) for g in SEED_GRID]
    t_batched, t_sequential, ratio = side_by_side(batched, sequential, repeats)
    return {"batched_s": t_batched, "sequential_pipeline_s": t_sequential, "ratio": ratio}


def cold_start(**env):
    """python app.py launch -> first image through gradio_client; the server's peak RSS."""
    import psutil
    from gradio_client import Client
    from tests.app_server import free_port

    port = free_port()
    started = time.perf_counter()
    server = subprocess.Popen([sys.executable, "app.py", "--port", str(port)], cwd=ROOT, env={**os.environ, **env},
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    peak = 0
    try:
        while True:
            try:
                client = Client(f"http://127.0.0.1:{port}/", verbose=False)
                ready = time.perf_counter() - started
                break
            except Exception:
                peak = max(peak, psutil.Process(server.pid).memory_info().rss)
                time.sleep(0.2)
        client.predict(prompt="a red circle", api_name="/txt2img")
        seconds = time.perf_counter() - started
        peak = max(peak, psutil.Process(server.pid).memory_info().rss)
    finally:
        server.terminate(); server.wait(timeout=20)
    return {"seconds_to_serving": ready, "seconds_to_first_image": seconds, "server_rss_mb": peak / 2**20}


def cpu_options(model_dir, params, repeats, try_compile=True, try_bf16=True):
    """Each option against the default, side by side; image change in 1/255 units."""
    import numpy as np
    results = {}
    base_model = load_model(model_dir, device="cpu")
    base_image = np.asarray(generate(base_model, params).images[0], np.int16)
    threads = torch.get_num_threads()

    def option(name, model, setup=lambda: None, teardown=lambda: None):
        def with_option():  # set up and torn down around each run, so the default's runs go without it
            setup()
            try:
                return generate(model, params)
            finally:
                teardown()

        image = np.asarray(with_option().images[0], np.int16)
        t_option, t_base, ratio = side_by_side(with_option, lambda: generate(base_model, params), repeats)
        results[name] = {"option_s": t_option, "default_s": t_base, "ratio": ratio,
                         "max_pixel_change": int(np.abs(image - base_image).max())}

    option("1 thread", base_model, lambda: torch.set_num_threads(1), lambda: torch.set_num_threads(threads))
    traced = unet_trace.ENABLED
    option("UNet eager, not traced", base_model, lambda: setattr(unet_trace, "ENABLED", False),
           lambda: setattr(unet_trace, "ENABLED", traced))
    cl_model = load_model(model_dir, device="cpu")
    cl_model.unet.to(memory_format=torch.channels_last)
    cl_model.vae.to(memory_format=torch.channels_last)
    option("channels_last", cl_model)
    if try_bf16:
        option("bf16 weights", load_model(model_dir, device="cpu", bf16_on_cpu=True))
    else:
        results["bf16 weights"] = {"error": "skipped (--skip sd15-bf16)"}
    if not try_compile:
        results["torch.compile unet"] = {"error": "skipped (--skip sd15-compile)"}
        return results
    compiled = load_model(model_dir, device="cpu")
    compiled.components["unet"] = torch.compile(compiled.unet)
    try:
        option("torch.compile unet", compiled)
    except Exception as error:  # compile needs a C++ toolchain and time; report, don't fail
        results["torch.compile unet"] = {"error": f"{type(error).__name__}: {error}"[:200]}
    return results


def gpu_section(report, model_dir, steps=50, size=512, device="cuda"):
    """Each result goes into the report as soon as it is measured: a compile that runs long or fails
    leaves the rows before it."""
    for dtype_name, dtype in (("fp16", torch.float16), ("bf16", torch.bfloat16)):
        model = load_model(model_dir, device=device, dtype=dtype)
        params = GenerationParams(prompt="an astronaut on mars", seed=0, steps=steps, guidance=7.5, width=size, height=size)
        eager_unet = model.unet
        for compile_unet in (False, True):
            for engine in ("manual", "pipeline"):
                if compile_unet:
                    # A fresh compile per row. Session 9's H100 run shared one: the second engine's calls
                    # recompiled it and ran slower (33.7 vs 59.4 it/s), bf16 recompiled fp16's graph, and
                    # the pipeline engine's cached pipeline still held the eager UNet.
                    torch._dynamo.reset()
                    model.components["unet"] = torch.compile(eager_unet)
                    model.__dict__.pop("_base_pipeline", None)
                key = f"gpu: {dtype_name} {'compiled' if compile_unet else 'eager'} {engine}"
                try:
                    report[key] = gpu_rates(model, replace(params, engine=engine))
                except Exception as error:  # report, go on with the next row
                    report[key] = {"error": f"{type(error).__name__}: {error}"[:300]}


def gpu_rates(model, params):
    stamps = []

    def on_step(step):  # it/s of the denoising loop alone, as public figures count it
        torch.cuda.synchronize()
        stamps.append(time.perf_counter())

    run = lambda: generate(model, params, on_step=on_step)
    warm_up = timed(run); torch.cuda.synchronize()  # includes a compile where there is one
    torch.cuda.reset_peak_memory_stats()
    times, rates = [], []
    for _ in range(3):
        stamps.clear()
        torch.cuda.synchronize(); t = timed(run); torch.cuda.synchronize(); times.append(t)
        rates.append((len(stamps) - 1) / (stamps[-1] - stamps[0]))
    return {"seconds_per_image": statistics.median(times), "it_per_s": statistics.median(rates),
            "peak_gb": torch.cuda.max_memory_allocated() / 2**30, "first_run_s": warm_up}


def cuda_equivalence(model_dir, device="cuda"):
    """The shipped model on the GPU: manual loop vs pipeline (max pixel difference, 1/255 units) and vs the
    CPU's image, in fp32 and fp16, and seconds per image."""
    import numpy as np

    params = GenerationParams(prompt="a red circle on a blue background", seed=1, steps=25, guidance=7.5,
                              width=128, height=128)
    pixels = lambda result: np.asarray(result.images[0], np.int16)
    cpu_image = pixels(generate(load_model(model_dir, device="cpu"), params))
    results = {}
    for dtype_name, dtype in (("fp32", torch.float32), ("fp16", torch.float16)):
        model = load_model(model_dir, device=device, dtype=dtype)
        manual, pipeline = pixels(generate(model, params)), pixels(generate(model, replace(params, engine="pipeline")))
        torch.cuda.synchronize()
        seconds = statistics.median(timed(lambda: (generate(model, params), torch.cuda.synchronize()))
                                    for _ in range(5))
        results[dtype_name] = {"manual_vs_pipeline_max_diff": int(np.abs(manual - pipeline).max()),
                               "manual_vs_cpu_max_diff": int(np.abs(manual - cpu_image).max()),
                               "seconds_per_image": seconds}
    return results


def sd15_cpu_sections(report, sd15_dir, repeats, skip):
    sd15 = load_model(sd15_dir, device="cpu")
    medium = GenerationParams(prompt="an astronaut riding a horse", seed=1, steps=4, guidance=7.5,
                              width=256, height=256)
    report["sd1.5 arch: manual vs pipeline (256², 4 steps)"] = engines(sd15, medium, max(3, repeats // 2))
    report["sd1.5 arch: batched 9-value grid vs 9 pipeline calls"] = grid_vs_sequential(
        sd15, replace(medium, steps=2), 1)
    if "cpu-options" not in skip:
        report["cpu options, sd1.5 arch"] = cpu_options(sd15_dir, replace(medium, steps=2), 1,
                                                        try_compile="sd15-compile" not in skip,
                                                        try_bf16="sd15-bf16" not in skip)


def cpu_model_name() -> str:
    """/proc/cpuinfo's model name where there is one (platform.processor() is empty on Linux)."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_description() -> str:
    # The CPU rows depend on the vector unit: the same 2 cores ran one image in 0.48-0.66 s with AVX2
    # and 0.3 s with AVX-512, so every result file names it.
    return (f"{cpu_model_name()}, {os.cpu_count()} cores, {torch.backends.cpu.get_cpu_capability()}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads")


class Report(dict):
    """Writes itself to disk after every section, so a long run that fails late keeps what it measured."""

    def __init__(self, path: Path, update: bool, **items):
        # --update keeps the sections of an earlier run that this run skips.
        super().__init__(json.loads(path.read_text()) if update and path.is_file() else {})
        self.path = path
        for key, value in items.items():
            self[key] = value

    def __setitem__(self, key, value):
        super().__setitem__(key, value)
        print(f"{key}: {json.dumps(value)}", flush=True)
        self.path.write_text(json.dumps(self, indent=2) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, default=ROOT / "benchmarks" / "results.json")
    parser.add_argument("--skip", default="",
                        help="comma-separated: shipped, sd15, gpu, cold-start, cpu-options, sd15-compile, sd15-bf16")
    parser.add_argument("--update", action="store_true", help="keep the earlier sections in --json this run skips")
    args = parser.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    shipped_dir = str(ROOT / "assets" / "shapes-sd")
    report = Report(args.json, args.update, machine=machine_description())
    small = GenerationParams(prompt="a red circle on a blue background", seed=1, steps=25, guidance=7.5,
                             width=128, height=128)
    if "shipped" not in skip:
        shipped = load_model(shipped_dir, device="cpu")
        report["shipped: manual vs pipeline (128², 25 steps)"] = engines(shipped, small, args.repeats)
        report["shipped: batched 9-value grid vs 9 pipeline calls"] = grid_vs_sequential(shipped, small, args.repeats)
        one = statistics.median(timed(lambda: generate(shipped, small)) for _ in range(args.repeats))
        nine = statistics.median(timed(lambda: generate(shipped, replace(small, num_images=9))) for _ in range(3))
        report["shipped: 1 image, 25 steps with CFG"] = {"seconds": one, "goal_s": 0.5}
        report["shipped: batch of 9"] = {"images_per_s": 9 / nine}
        if "cpu-options" not in skip:
            report["cpu options, shipped"] = cpu_options(shipped_dir, small, args.repeats)
    if not {"sd15", "gpu"} <= skip:  # both need the SD-1.5-architecture folder
        with tempfile.TemporaryDirectory() as folder:
            sd15_dir = str(build_sd15_architecture(Path(folder) / "sd15"))
            if "sd15" not in skip:
                sd15_cpu_sections(report, sd15_dir, args.repeats, skip)
            if "gpu" not in skip:
                if torch.cuda.is_available():
                    report["gpu: shipped model, cuda vs cpu and manual vs pipeline"] = cuda_equivalence(shipped_dir)
                    gpu_section(report, sd15_dir)
                else:
                    report["gpu"] = "not run: no CUDA device"
    if "cold-start" not in skip:
        report["cold start"] = cold_start()
        # The first image also records the UNet's trace (~1 s); the same launch without it:
        report["cold start, UNet not traced"] = cold_start(DIFFUSION_TRACE="0")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
