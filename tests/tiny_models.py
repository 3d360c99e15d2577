"""Tiny random-weight Stable Diffusion models built from configs, like diffusers' own tests."""
from pathlib import Path

import torch
from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionPipeline, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from training.build_tokenizer import write_tokenizer

# A few real CLIP merges, enough that common words are single tokens.
TINY_MERGES = ["i n", "t h", "a n", "r e", "a r", "e r", "th e</w>", "in g</w>", "o u", "c i", "r c", "l e</w>",
               "ci rc", "circ le</w>", "re d</w>", "b l", "u e</w>", "bl ue</w>"]


def build_tiny_sd(folder: Path, seed: int = 0) -> Path:
    """Write a complete SD-format folder (model_index.json and all parts) with random weights."""
    torch.manual_seed(seed)
    tokenizer = write_tokenizer(folder / "tokenizer_files", TINY_MERGES)
    text_encoder = CLIPTextModel(CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=32, intermediate_size=37, num_hidden_layers=2,
        num_attention_heads=4, max_position_embeddings=77, bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id, projection_dim=32))
    unet = UNet2DConditionModel(
        sample_size=8, in_channels=4, out_channels=4, block_out_channels=(32, 64), layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"), up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=32, attention_head_dim=8, norm_num_groups=16)
    vae = AutoencoderKL(
        block_out_channels=(8, 16, 16, 16), down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4, latent_channels=4, norm_num_groups=8, layers_per_block=1,
        sample_size=64)
    scheduler = PNDMScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                              skip_prk_steps=True, set_alpha_to_one=False, steps_offset=1)
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder / "tiny-sd")
    return folder / "tiny-sd"
