"""Fit the shipped model's cheap latent -> RGB preview (diffusion_core/latent_preview.py) from its own VAE.

Pairs: shapes-data images encoded by the VAE (mean of the posterior, scaled as the loop scales latents),
each latent pixel against the mean of the 8x8 block of the VAE's decode of that same latent. Least squares
with a bias; the fit's error on held-out images is written into the file next to the factors.

    python -m training.fit_latent_preview [--model assets/shapes-sd] [--images 512]
"""
import argparse
import json
from pathlib import Path

import torch

from diffusion_core import images as image_ops
from diffusion_core import load_model
from diffusion_core.latent_preview import FACTORS_FILE
from training.shapes_data import image_batch


@torch.no_grad()
def latent_and_decode(model, start: int, count: int):
    """(N*h*w, 4) latent pixels and (N*h*w, 3) pixels of the decode averaged over each latent pixel's block."""
    vae = model.vae
    pixels = torch.from_numpy(image_batch(start, count, seed=7)).permute(0, 3, 1, 2).float() / 127.5 - 1
    latents = vae.encode(pixels.to(vae.dtype)).latent_dist.mean * vae.config.scaling_factor
    decoded = image_ops.decode_latents(vae, latents).float()
    block = pixels.shape[-1] // latents.shape[-1]
    pooled = torch.nn.functional.avg_pool2d(decoded, block)
    return latents.float().permute(0, 2, 3, 1).reshape(-1, 4), pooled.permute(0, 2, 3, 1).reshape(-1, 3)


def fit(model, count: int, batch: int = 64):
    parts = [latent_and_decode(model, start, batch) for start in range(0, count, batch)]
    latents, rgb = torch.cat([p[0] for p in parts]), torch.cat([p[1] for p in parts])
    design = torch.cat([latents, torch.ones(len(latents), 1)], dim=1)
    solution = torch.linalg.lstsq(design, rgb).solution  # (5, 3): 4 weight rows, then the bias
    held_latents, held_rgb = latent_and_decode(model, 100_000, batch)
    error = (held_latents @ solution[:4] + solution[4] - held_rgb).abs().mean().item() * 127.5
    return solution[:4], solution[4], error


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="assets/shapes-sd")
    parser.add_argument("--images", type=int, default=512)
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    model = load_model(args.model, device="cpu")
    weights, bias, error = fit(model, args.images)
    out = Path(args.model) / FACTORS_FILE
    out.write_text(json.dumps({
        "weights": [[round(v, 5) for v in row] for row in weights.tolist()],
        "bias": [round(v, 5) for v in bias.tolist()],
        # Shapes and layout come through, colours do not (a red circle reads brown): live previews
        # keep the VAE, which costs only milliseconds at this model's 128 pixels.
        "good_enough_to_stream": False,
        "fit": f"least squares on {args.images} shapes images' latents against their 8x8-averaged VAE decodes; "
               f"mean error {error:.1f}/255 per channel on 64 held-out images",
    }, indent=1) + "\n")
    print(f"wrote {out}: mean abs error {error:.2f}/255 on held-out images")


if __name__ == "__main__":
    main()
