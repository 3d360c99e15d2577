"""Architecture of the shapes model: Stable Diffusion's parts, shrunk.

Sizes were chosen by timing training steps on 2 CPU cores (see the model card):
the UNet keeps SD's layout (ResNet blocks, cross-attention to CLIP text states)
at 16x16 latents, with attention only at the lower resolution.
"""
from diffusers import AutoencoderKL, DDPMScheduler, DPMSolverMultistepScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

TEXT_HIDDEN = 64
LATENT_CHANNELS = 4


# The widest block at 128, not 64: at 64 the encoder barely kept blue and purple
# apart in its latents, and no decoder training could repaint what it lost (model card).
VAE_CHANNELS = (16, 32, 64, 128)


def make_vae(channels=VAE_CHANNELS) -> AutoencoderKL:
    # Four blocks = three 2x downsamples: SD's 8x, so 128^2 pixels -> 16^2 latents.
    return AutoencoderKL(
        in_channels=3, out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 4,
        up_block_types=("UpDecoderBlock2D",) * 4,
        block_out_channels=tuple(channels),
        # One normalisation group: with one channel per group (16 groups at 16
        # channels) GroupNorm turns every flat colour region into zeros, and the
        # decoder cannot paint flat colours back. These images are all flat colour.
        layers_per_block=1, latent_channels=LATENT_CHANNELS, norm_num_groups=1,
        sample_size=128, mid_block_add_attention=False,
    )


def make_text_encoder(tokenizer) -> CLIPTextModel:
    config = CLIPTextConfig(
        vocab_size=len(tokenizer), hidden_size=TEXT_HIDDEN, intermediate_size=4 * TEXT_HIDDEN,
        num_hidden_layers=2, num_attention_heads=2, max_position_embeddings=tokenizer.model_max_length,
        bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id, projection_dim=TEXT_HIDDEN,
    )
    return CLIPTextModel(config)


# Narrower than the first models' (64, 128): at 16x16 latents the UNet's time goes into its
# 3x3 convolutions, so (48, 96) runs and trains faster, which buys more training steps in the
# same recipe time (measured in the model card).
UNET_CHANNELS = (48, 96)
UNET_HEADS = 4


def make_unet() -> UNet2DConditionModel:
    return UNet2DConditionModel(
        sample_size=16, in_channels=LATENT_CHANNELS, out_channels=LATENT_CHANNELS,
        block_out_channels=UNET_CHANNELS,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        layers_per_block=1, cross_attention_dim=TEXT_HIDDEN,
        # diffusers reads `attention_head_dim` as the number of heads (its naming slip, kept
        # for SD 1.x's configs): 4 heads of 24 channels. The first models' 32 meant 32 heads
        # of 4 channels, which made CPU attention slow for no measured gain.
        attention_head_dim=UNET_HEADS, use_linear_projection=True,
        norm_num_groups=16,
    )


# Stable Diffusion's noise schedule.
SCHEDULE = dict(num_train_timesteps=1000, beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear")


def make_training_scheduler() -> DDPMScheduler:
    return DDPMScheduler(**SCHEDULE, prediction_type="epsilon", clip_sample=False)


def make_shipped_scheduler() -> DPMSolverMultistepScheduler:
    """DPM-Solver++ (2M) on SD 1.x's scheduler options.

    Not SD 1.x's PNDM: PNDM's 4th-order multistep extrapolation is unstable under strong
    guidance (as the DPM-Solver++ paper says of high-order solvers) and at guidance 7.5
    turned this model's images into blotches (shape kind 30 % vs 89 % with DPM++ 2M in
    a 64-image check). The PNDM-only options stay in the config, as in SD 2.x's hub
    configs, so that choosing PNDM in the app still gets SD's PNDM.
    """
    return DPMSolverMultistepScheduler.from_config(dict(
        **SCHEDULE, algorithm_type="dpmsolver++", solver_order=2, timestep_spacing="leading", steps_offset=1,
        skip_prk_steps=True, set_alpha_to_one=False))  # from_config keeps the PNDM-only keys
