"""What the cheap linear latent preview saves over a VAE decode per live preview, side by side.

    python -m benchmarks.live_preview [--repeats 7]

1. The shipped model, 128², 25 steps, a preview every 25 // 8 = 3 steps (as the Text to image tab
   streams them): whole runs with VAE-decoded previews vs with linear previews.
2. One preview of an SD-1.5-shaped VAE (random weights, no download) at 512²: decode vs linear map.
"""
import argparse
import os

os.environ.setdefault("HF_HUB_OFFLINE", "1")
import torch
from diffusers import AutoencoderKL

from benchmarks.run import machine_description, side_by_side
from diffusion_core import GenerationParams, generate, latent_preview, load_model
from diffusion_core import images as image_ops
from diffusion_core.models import DEFAULT_MODEL


def run_with_previews(model, params, every, method):
    def on_step(step):
        if step.index % every == 0 or step.index + 1 == step.total:
            latents = step.latents[:1]
            if method == "linear":
                latent_preview.to_rgb(model, latents)
            else:
                image_ops.to_pil(image_ops.decode_latents(model.vae, latents))
    return lambda: generate(model, params, on_step=on_step)


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    print(machine_description(), f"torch threads {torch.get_num_threads()}")

    model = load_model(DEFAULT_MODEL, device="cpu")
    params = GenerationParams("a red circle on a blue background", seed=193, steps=25, width=128, height=128)
    plain = lambda: generate(model, params)
    vae_run, linear_run = (run_with_previews(model, params, 25 // 8, m) for m in ("vae", "linear"))
    vae_s, plain_s, vae_ratio = side_by_side(vae_run, plain, args.repeats)
    linear_s, plain2_s, linear_ratio = side_by_side(linear_run, plain, args.repeats)
    print(f"shipped model, 25 steps, 9 previews: plain run {plain_s:.3f} s; with VAE previews {vae_s:.3f} s "
          f"({vae_ratio:.2f}x); with linear previews {linear_s:.3f} s ({linear_ratio:.2f}x of {plain2_s:.3f} s)")

    torch.manual_seed(0)
    sd_vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), down_block_types=("DownEncoderBlock2D",) * 4,
                           up_block_types=("UpDecoderBlock2D",) * 4, layers_per_block=2, latent_channels=4).eval()
    sd_like = type(model)(model_id="sd-1.5-shaped", components={**model.components, "vae": sd_vae},
                          device=model.device, dtype=model.dtype, pipeline_class_name=model.pipeline_class_name)
    latents = torch.randn(1, 4, 64, 64)
    decode_s, linear1_s, ratio = side_by_side(lambda: image_ops.to_pil(image_ops.decode_latents(sd_vae, latents)),
                                              lambda: latent_preview.to_rgb(sd_like, latents), max(3, args.repeats // 2))
    print(f"SD-1.5-shaped VAE, one 512² preview: VAE decode {decode_s:.2f} s, linear map {linear1_s * 1000:.1f} ms "
          f"({ratio:.0f}x)")


if __name__ == "__main__":
    main()
