"""A decode that overflows in fp16 is recomputed in fp32, never returned as a silent black image."""
import copy

import pytest
import torch

from diffusion_core import images as image_ops


def overflowing_fp16_vae(tiny_model):
    vae = copy.deepcopy(tiny_model.vae)
    with torch.no_grad():
        vae.decoder.conv_out.weight.mul_(3e4)  # outputs beyond fp16's 65504, fine in fp32
    vae.register_to_config(force_upcast=False)
    return vae.to(torch.float16)


def test_fp16_overflow_is_recomputed_in_fp32(tiny_model):
    vae = overflowing_fp16_vae(tiny_model)
    latents = torch.randn(1, 4, 8, 8, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        raw = vae.decode((latents / vae.config.scaling_factor).half(), return_dict=False)[0]
    assert not torch.isfinite(raw).all()  # the failure this guards against really happens
    pixels = image_ops.decode_latents(vae, latents)
    assert torch.isfinite(pixels).all()
    assert vae.dtype == torch.float16  # the VAE went back to its own dtype afterwards


def test_a_decode_that_stays_non_finite_tells_the_user(tiny_model):
    vae = copy.deepcopy(tiny_model.vae)
    latents = torch.full((1, 4, 8, 8), float("nan"))
    with pytest.raises(FloatingPointError, match="NaN/inf"):
        image_ops.decode_latents(vae, latents)
