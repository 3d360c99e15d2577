"""The cheap latent -> RGB preview: where its factors come from, and how close it gets to the VAE."""
from dataclasses import replace

import pytest
import torch
from diffusers import AutoencoderKL

from diffusion_core import GenerationParams, generate, latent_preview, load_model
from diffusion_core import images as image_ops
from diffusion_core.models import DEFAULT_MODEL


@pytest.fixture(scope="module")
def shipped():
    return load_model(DEFAULT_MODEL, device="cpu")


def final_latents(model, prompts, seed=193):
    kept = []
    for prompt in prompts:
        generate(model, GenerationParams(prompt, seed=seed, steps=25, width=128, height=128),
                 on_step=lambda step: step.index + 1 == step.total and kept.append(step.latents))
    return torch.cat(kept)


def test_shipped_preview_looks_like_its_own_decode_and_not_like_the_others(shipped):
    latents = final_latents(shipped, ["a red circle on a blue background", "a yellow star on a black background",
                                      "a green square on a white background", "a white triangle on a purple background"])
    decoded = torch.nn.functional.avg_pool2d(image_ops.decode_latents(shipped.vae, latents).float(), 8)
    preview = latent_preview.to_pixels(shipped, latents)
    distances = (preview[:, None] - decoded[None]).abs().mean(dim=(2, 3, 4))  # preview i vs decode j
    assert distances.argmin(dim=1).tolist() == [0, 1, 2, 3]
    # better than no preview at all (the batch's average colour); measured 0.31 vs 0.60 in [-1, 1] units
    average_colour_error = (decoded.mean(dim=(0, 2, 3), keepdim=True) - decoded).abs().mean()
    assert distances.diagonal().mean() < average_colour_error
    images = latent_preview.to_rgb(shipped, latents)
    assert [image.size for image in images] == [(128, 128)] * 4


def test_shipped_factors_are_its_own_fit_and_live_previews_keep_the_vae(shipped):
    assert "fitted on this model's own VAE" in latent_preview.source(shipped)
    assert latent_preview.live_preview_method(shipped) == "vae"
    assert latent_preview.live_preview_method(shipped, "linear") == "linear"


def test_sd_vae_uses_comfyui_published_factors_and_streams_with_them(tiny_model):
    assert tiny_model.vae.config.scaling_factor == pytest.approx(0.18215)
    assert "SD 1.x" in latent_preview.source(tiny_model)
    assert latent_preview.live_preview_method(tiny_model) == "linear"
    pixels = latent_preview.to_pixels(tiny_model, torch.zeros(2, 4, 8, 8))
    assert pixels.shape == (2, 3, 8, 8) and pixels.abs().max() == 0  # no bias in the published factors


def test_unknown_vae_has_no_linear_preview_and_falls_back_to_the_vae(tiny_model):
    other_vae = AutoencoderKL(block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
                              up_block_types=("UpDecoderBlock2D",) * 4, norm_num_groups=8, layers_per_block=1,
                              scaling_factor=0.5)
    model = replace(tiny_model, components={**tiny_model.components, "vae": other_vae})
    assert latent_preview.factors(model) is None
    assert "no linear preview" in latent_preview.source(model)
    assert latent_preview.live_preview_method(model, "linear") == "vae"
    with pytest.raises(ValueError, match="no linear preview"):
        latent_preview.to_pixels(model, torch.zeros(1, 4, 8, 8))


def test_channels_are_four_grey_images_each_over_its_own_range():
    latents = torch.stack([torch.linspace(-3, 3, 64).view(8, 8) * (c + 1) for c in range(4)])
    images = latent_preview.channels(latents)
    assert len(images) == 4
    for image in images:
        assert image.mode == "L" and image.size == (64, 64)
        assert image.getextrema() == (0, 255)
