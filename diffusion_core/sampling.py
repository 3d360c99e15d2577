"""The manual classifier-free-guidance denoising loop, shared by text-to-image and image variation.

At every step the UNet predicts the noise twice in one batch, once without the
text (the "unconditional" or negative prompt) and once with it, and guidance
pushes the prediction away from the first and toward the second:

    noise = noise_uncond + guidance * (noise_text - noise_uncond)
"""
import inspect
from dataclasses import dataclass
from typing import Callable

import torch
from diffusers.utils.torch_utils import randn_tensor


@dataclass
class StepInfo:
    index: int  # 0-based step of this run
    total: int  # steps this run will take
    timestep: int
    latents: torch.Tensor  # x_t after this step
    predicted_x0: torch.Tensor | None  # the scheduler's guess of the clean latents, when it gives one
    noise_uncond: torch.Tensor | None  # None when guidance is 1 (no unconditional branch) or unknown
    noise_text: torch.Tensor | None
    sample: torch.Tensor | None = None  # x_t this step started from (what the noise predictions are of)


StepCallback = Callable[[StepInfo], None]


def initial_noise(generators, shape, device, dtype) -> torch.Tensor:
    """One draw per image from its own CPU generator (so image i reproduces alone), as diffusers does."""
    return randn_tensor((len(generators), *shape), generator=generators, device=device, dtype=dtype)


def step_options(scheduler, generators) -> dict:
    """What the scheduler's step accepts: a generator (ancestral samplers), eta=0 (DDIM)."""
    accepted = inspect.signature(scheduler.step).parameters
    options = {}
    if "generator" in accepted:
        options["generator"] = generators
    if "eta" in accepted:
        options["eta"] = 0.0
    return options


@torch.no_grad()
def denoise(predict_noise, scheduler, latents, timesteps, text_embeddings, uncond_embeddings, guidance,
            generators, on_step: StepCallback | None = None) -> torch.Tensor:
    """Run the reverse diffusion from `latents` over `timesteps`.

    `predict_noise(sample, t, embeddings)` is the UNet's call (unet_trace.noise_predictor).
    `guidance` holds one value per image (a guidance grid is one batch).
    `uncond_embeddings` is None to skip the unconditional half (guidance 1 everywhere).
    """
    use_cfg = uncond_embeddings is not None
    embeddings = torch.cat([uncond_embeddings, text_embeddings]) if use_cfg else text_embeddings
    guidance = guidance.to(latents.device, latents.dtype).view(-1, 1, 1, 1)
    options = step_options(scheduler, generators)
    for index, t in enumerate(timesteps):
        model_input = torch.cat([latents] * 2) if use_cfg else latents
        model_input = scheduler.scale_model_input(model_input, t)
        noise = predict_noise(model_input, t, embeddings)
        if use_cfg:
            noise_uncond, noise_text = noise.chunk(2)
            noise = noise_uncond + guidance * (noise_text - noise_uncond)
        else:
            noise_uncond, noise_text = None, noise
        output = scheduler.step(noise, t, latents, **options)
        if on_step:
            on_step(StepInfo(index, len(timesteps), int(t), output.prev_sample,
                             getattr(output, "pred_original_sample", None), noise_uncond, noise_text, latents))
        latents = output.prev_sample
    return latents


def img2img_steps_run(steps: int, strength: float) -> int:
    """How many of `steps` an image variation runs: the last `strength` part, as diffusers' img2img counts."""
    return min(int(steps * strength), steps)


def img2img_timesteps(scheduler, steps: int, strength: float):
    """Skip the first (1 - strength) of the schedule, exactly as diffusers' img2img does."""
    start = steps - img2img_steps_run(steps, strength)
    timesteps = scheduler.timesteps[start * scheduler.order:]
    if hasattr(scheduler, "set_begin_index"):
        scheduler.set_begin_index(start * scheduler.order)
    return timesteps, steps - start
