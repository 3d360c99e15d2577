"""One entry point per task: text-to-image (and image variation) and the guidance grid.

Each call validates its parameters, picks the engine (our manual loop, or
diffusers' pipelines as the fallback), and returns images that carry their
parameters.
"""
from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from diffusion_core import images as image_ops
from diffusion_core import prompts, sampling, seeds, unet_trace
from diffusion_core.errors import InvalidRequest
from diffusion_core.params import GenerationParams
from diffusion_core.prompts import PromptInfo
from diffusion_core.schedulers import make_scheduler

SEED_GRID = (0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0)  # the seed article's guidance grid


@dataclass
class GenerationResult:
    images: list[Image.Image]
    params: list[GenerationParams]  # one per image, each reproducing it alone
    engine: str  # "manual" or "pipeline"
    cfg_applied: list[bool]  # per image: did guidance blend in an unconditional prediction?
    steps_run: int  # img2img runs only the last `strength` part of the schedule
    prompt_info: PromptInfo
    notes: list[str] = field(default_factory=list)


def generate(model, params: GenerationParams, init_image: Image.Image | None = None,
             on_step: sampling.StepCallback | None = None) -> GenerationResult:
    """num_images images of one prompt (seeds seed, seed+1, ...), from noise or from init_image."""
    params = _checked(model, params, init_image)
    return _run(model, params, [params.guidance] * params.num_images, False, init_image, on_step)


def guidance_grid(model, params: GenerationParams, guidances=SEED_GRID,
                  on_step: sampling.StepCallback | None = None) -> GenerationResult:
    """One image per guidance value, all from the same seed's noise, in one batch."""
    guidances = [float(g) for g in guidances]
    if not 1 <= len(guidances) <= 16:
        raise InvalidRequest("Give between 1 and 16 guidance values.")
    params = _checked(model, replace(params, num_images=len(guidances), guidance=max(guidances)), None)
    for g in guidances:
        replace(params, guidance=g).validated()
    return _run(model, params, guidances, True, None, on_step)


def _checked(model, params: GenerationParams, init_image) -> GenerationParams:
    params = replace(params, model=params.model or model.name,
                     scheduler=params.scheduler or model.defaults["scheduler"]).validated()
    if init_image is not None and params.strength is None:
        params = replace(params, strength=model.defaults["strength"])
    if init_image is None and params.strength is not None:
        raise InvalidRequest("Strength applies to image variation only; give an init image.")
    return params


def _run(model, params, guidances, same_seed: bool, init_image, on_step) -> GenerationResult:
    """same_seed: every image starts from the seed's noise (a grid); else image i from seed + i."""
    notes = []
    engine = params.engine
    if engine == "manual" and not model.can_run_manual_loop:
        engine = "pipeline"
        notes.append(f"The manual loop cannot drive {model.pipeline_class_name} (it needs extra conditioning "
                     "such as SDXL's pooled embeddings); diffusers' pipeline made these images.")
    if init_image is not None:
        init_image = image_ops.prepare_init_image(init_image, params.width, params.height)
    make_generators = seeds.same_seed_generators if same_seed else seeds.generators
    generators = make_generators(params.seed, len(guidances))
    scheduler = make_scheduler(params.scheduler, model.scheduler.config)
    info = prompts.describe_prompt(model.tokenizer, params.prompt)
    if info.truncated:
        notes.append(info.message())

    if engine == "manual":
        pixels, steps_run, cfg_applied = _manual(model, params, guidances, scheduler, generators, init_image, on_step)
        images = image_ops.to_pil(pixels)
    else:
        images, steps_run, cfg_applied = _pipeline(model, params, guidances, scheduler, generators, init_image, on_step)
        if any(0 < g <= 1 for g in guidances) and any(g != 1 for g in guidances if g <= 1):
            notes.append("diffusers' pipeline turns guidance off at values of 1 or less, so those images "
                         "all equal guidance 1; the manual loop blends toward the unconditional prediction.")

    per_image = [replace(params, seed=params.seed if same_seed else params.seed + i, guidance=g, num_images=1,
                         engine=engine) for i, g in enumerate(guidances)]
    for image, image_params in zip(images, per_image):
        image_ops.with_parameters(image, image_params.to_png_text())
    return GenerationResult(images, per_image, engine, cfg_applied, steps_run, info, notes)


def _manual(model, params, guidances, scheduler, generators, init_image, on_step):
    unet, vae, device = model.unet, model.vae, model.device
    count = len(guidances)
    use_cfg = any(g != 1 for g in guidances)
    if use_cfg:  # prompt and negative prompt through the text encoder in one batch
        text, uncond = prompts.encode(model.tokenizer, model.text_encoder,
                                      [params.prompt, params.negative_prompt]).repeat_interleave(count, dim=0).chunk(2)
    else:
        text, uncond = prompts.encode(model.tokenizer, model.text_encoder, [params.prompt]).repeat(count, 1, 1), None
    scheduler.set_timesteps(params.steps, device=device)
    vae_scale = 2 ** (len(vae.config.block_out_channels) - 1)  # 8 for SD
    latent_shape = (unet.config.in_channels, params.height // vae_scale, params.width // vae_scale)

    steps_run = params.steps
    if init_image is None:
        timesteps = scheduler.timesteps
        latents = sampling.initial_noise(generators, latent_shape, device, text.dtype) * scheduler.init_noise_sigma
    else:
        timesteps, steps_run = sampling.img2img_timesteps(scheduler, params.steps, params.strength)
        if steps_run == 0:
            raise InvalidRequest(f"Strength {params.strength:g} with {params.steps} steps runs no step; "
                                 "raise the strength or the steps.")
        pixels = image_ops.to_pixels(init_image).to(device, vae.dtype)
        with torch.no_grad():
            clean = torch.cat([vae.encode(pixels).latent_dist.sample(g) for g in generators])
        clean = clean * vae.config.scaling_factor
        noise = sampling.initial_noise(generators, latent_shape, device, text.dtype)
        latents = scheduler.add_noise(clean, noise, timesteps[:1].repeat(count))

    latents = sampling.denoise(unet_trace.noise_predictor(unet), scheduler, latents, timesteps, text, uncond,
                               torch.tensor(guidances), generators, on_step)
    return image_ops.decode_latents(vae, latents), steps_run, [g != 1 for g in guidances]


def _pipeline(model, params, guidances, scheduler, generators, init_image, on_step):
    """Pipelines take one guidance value per call, so a grid is one call per value."""
    from diffusion_core import pipeline_engine  # imports every auto pipeline: seconds, so only when asked

    images = []
    steps_run = params.steps
    if len(set(guidances)) == 1:
        images = pipeline_engine.run(model, params, scheduler, generators, init_image, on_step, guidances[0])
    else:
        for generator, g in zip(generators, guidances):
            fresh = make_scheduler(params.scheduler, model.scheduler.config)
            images += pipeline_engine.run(model, params, fresh, [generator], init_image, on_step, g)
    if init_image is not None:
        steps_run = sampling.img2img_steps_run(params.steps, params.strength)
    return images, steps_run, [g > 1 for g in guidances]
