"""A cheap look at latents without the VAE: each latent pixel mapped to RGB by one linear 4 -> 3 map plus
a bias (ComfyUI's "Latent2RGB", A1111's "Approx cheap"), and the latent's channels as grey images.

The map is only valid for the VAE it was fitted on. Where the factors come from:
- a model folder's own `latent_rgb.json` (the shipped model's is fitted from its own VAE by least
  squares on pairs of latent and downsampled VAE decode: training/fit_latent_preview.py);
- otherwise SD 1.x/2.x's VAE (scaling factor 0.18215) and SDXL's (0.13025) use the factors ComfyUI
  publishes in comfy/latent_formats.py (SD15, SDXL), which have no bias;
- any other VAE has none (`factors` returns None) and callers decode with the VAE.
Both take the scaled latents the loop carries and give pixels in [-1, 1], like the VAE.
"""
import json
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image

FACTORS_FILE = "latent_rgb.json"
# ComfyUI comfy/latent_formats.py, rows are latent channels, columns R, G, B
PUBLISHED = {
    0.18215: ("ComfyUI's published SD 1.x factors (comfy/latent_formats.py, SD15)",
              [[0.3512, 0.2297, 0.3227], [0.3250, 0.4974, 0.2350], [-0.2829, 0.1762, 0.2721],
               [-0.2120, -0.2616, -0.7177]]),
    0.13025: ("ComfyUI's published SDXL factors (comfy/latent_formats.py, SDXL)",
              [[0.3920, 0.4054, 0.4549], [-0.2634, -0.0196, 0.0653], [0.0568, 0.1687, -0.0755],
               [-0.3112, -0.2359, -0.2076]]),
}


@dataclass(frozen=True)
class LatentRGB:
    weights: torch.Tensor  # (latent channels, 3)
    bias: torch.Tensor  # (3,)
    source: str  # one line: where these factors come from
    good_enough_to_stream: bool  # does a live preview look right with it? (see `live_preview_method`)


def factors(model) -> LatentRGB | None:
    """The model's linear latent -> RGB map, or None where none is known for its VAE (cached)."""
    if "_latent_rgb" not in model.__dict__:
        model.__dict__["_latent_rgb"] = _find_factors(model)
    return model.__dict__["_latent_rgb"]


def _find_factors(model) -> LatentRGB | None:
    own = Path(model.model_id) / FACTORS_FILE
    if own.is_file():
        recorded = json.loads(own.read_text())
        return LatentRGB(torch.tensor(recorded["weights"]), torch.tensor(recorded["bias"]),
                         f"fitted on this model's own VAE ({FACTORS_FILE}: {recorded['fit']})",
                         recorded.get("good_enough_to_stream", False))
    vae = model.vae.config
    for scaling, (source, weights) in PUBLISHED.items():
        if vae.latent_channels == 4 and abs(vae.scaling_factor - scaling) < 1e-5:
            return LatentRGB(torch.tensor(weights), torch.zeros(3), source, True)
    return None


def source(model) -> str:
    found = factors(model)
    return found.source if found else "no linear preview is known for this model's VAE; the VAE decodes"


def live_preview_method(model, requested: str = "auto") -> str:
    """"vae" or "linear" for a live preview. "auto" takes the linear map where it looks right: ComfyUI
    streams SD's with it, while the shipped model's tiny VAE is too far from linear (its fit file says
    so) and its decode costs only milliseconds at 128 pixels."""
    found = factors(model)
    if found is None or requested == "vae":
        return "vae"
    return "linear" if requested == "linear" or found.good_enough_to_stream else "vae"


def to_pixels(model, latents: torch.Tensor) -> torch.Tensor:
    """(B, 4, h, w) latents -> (B, 3, h, w) approximate pixels in [-1, 1], at the latent's resolution."""
    found = factors(model)
    if found is None:
        raise ValueError(source(model))
    latents = latents.detach().float().cpu()
    return torch.einsum("bchw,cr->brhw", latents, found.weights) + found.bias.view(1, 3, 1, 1)


def to_rgb(model, latents: torch.Tensor) -> list[Image.Image]:
    """The cheap preview of each latent, upscaled to the model's image size (bilinear, as it is a blur)."""
    vae_scale = 2 ** (len(model.vae.config.block_out_channels) - 1)
    pixels = ((to_pixels(model, latents) + 1) / 2).clamp(0, 1)
    size = (latents.shape[-1] * vae_scale, latents.shape[-2] * vae_scale)
    return [_image(p.permute(1, 2, 0)).resize(size, Image.BILINEAR) for p in pixels]


def channels(latents: torch.Tensor, vae_scale: int = 8) -> list[Image.Image]:
    """The channels of one latent (C, h, w) as grey images, each stretched over its own min..max, and
    upscaled with nearest so each latent pixel stays a visible square."""
    images = []
    for channel in latents.detach().float().cpu():
        low, high = channel.min(), channel.max()
        scaled = (channel - low) / (high - low) if high > low else torch.zeros_like(channel)
        size = (channel.shape[-1] * vae_scale, channel.shape[-2] * vae_scale)
        images.append(_image(scaled).resize(size, Image.NEAREST))
    return images


def _image(values: torch.Tensor) -> Image.Image:
    return Image.fromarray((values * 255).round().to(torch.uint8).numpy())
