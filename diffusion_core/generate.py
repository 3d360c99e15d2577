"""One entry point per task: text-to-image (and image variation) and the guidance grid.

Each call validates its parameters, picks the engine (our manual loop, or
diffusers' pipelines as the fallback), and returns images that carry their
parameters.
"""
from dataclasses import dataclass, field, replace

import torch
from PIL import Image

from diffusion_core import images as image_ops
from diffusion_core import prompts, sampling, seeds, staggered, unet_trace
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
             on_step: sampling.StepCallback | None = None, *, seeds: list[int] | None = None,
             noise: torch.Tensor | None = None, strengths: list[float] | None = None) -> GenerationResult:
    """num_images images of one prompt (seeds seed, seed+1, ...), from noise or from init_image.

    For comparisons, one entry per image (manual loop only): `seeds` instead of seed, seed+1, ...;
    `noise`, initial latent noise instead of the seeds' draws (a seed interpolation); `strengths`,
    one strength per image of a variation, run in one batch (diffusion_core/staggered.py).
    """
    params = _checked(model, params, init_image)
    count = params.num_images
    for name, given in (("seeds", seeds), ("noise", noise), ("strengths", strengths)):
        if given is not None and len(given) != count:
            raise ValueError(f"{name}: {len(given)} entries for {count} images")
    if strengths is not None and init_image is None:
        raise InvalidRequest("Strength applies to image variation only; give an init image.")
    if strengths is not None:
        strengths = [replace(params, strength=s).validated().strength for s in strengths]
    seeds = seeds if seeds is not None else [params.seed + i for i in range(count)]
    return _run(model, params, [params.guidance] * count, seeds, init_image, on_step, strengths, noise)


def guidance_grid(model, params: GenerationParams, guidances=SEED_GRID,
                  on_step: sampling.StepCallback | None = None) -> GenerationResult:
    """One image per guidance value, all from the same seed's noise, in one batch."""
    guidances = [float(g) for g in guidances]
    if not 1 <= len(guidances) <= 16:
        raise InvalidRequest("Give between 1 and 16 guidance values.")
    params = _checked(model, replace(params, num_images=len(guidances), guidance=max(guidances)), None)
    for g in guidances:
        replace(params, guidance=g).validated()
    return _run(model, params, guidances, [params.seed] * len(guidances), None, on_step)


def _checked(model, params: GenerationParams, init_image) -> GenerationParams:
    params = replace(params, model=params.model or model.name,
                     scheduler=params.scheduler or model.defaults["scheduler"]).validated()
    if init_image is not None and params.strength is None:
        params = replace(params, strength=model.defaults["strength"])
    if init_image is None and params.strength is not None:
        raise InvalidRequest("Strength applies to image variation only; give an init image.")
    return params


def _run(model, params, guidances, image_seeds, init_image, on_step, strengths=None, noise=None) -> GenerationResult:
    """image_seeds: image i's seed (a grid gives every cell the same one)."""
    notes = []
    engine = params.engine
    if engine == "manual" and not model.can_run_manual_loop:
        engine = "pipeline"
        notes.append(f"The manual loop cannot drive {model.pipeline_class_name} (it needs extra conditioning "
                     "such as SDXL's pooled embeddings); diffusers' pipeline made these images.")
    if engine == "pipeline" and (strengths is not None or noise is not None):
        raise InvalidRequest("Per-image strengths and given noise run on the manual CFG loop only; pick that engine "
                             "(models the loop cannot drive, such as SDXL, cannot run this comparison).")
    if init_image is not None:
        init_image = image_ops.prepare_init_image(init_image, params.width, params.height)
    generators = seeds.generators_for(image_seeds)
    scheduler = make_scheduler(params.scheduler, model.scheduler.config)
    info = prompts.describe_prompt(model.tokenizer, params.prompt)
    if info.truncated:
        notes.append(info.message())

    if engine == "manual":
        pixels, steps_run, cfg_applied = _manual(model, params, guidances, scheduler, generators, init_image, on_step,
                                                 strengths, noise)
        images = image_ops.to_pil(pixels)
    else:
        images, steps_run, cfg_applied = _pipeline(model, params, guidances, scheduler, generators, init_image, on_step)
        if any(0 < g <= 1 for g in guidances) and any(g != 1 for g in guidances if g <= 1):
            notes.append("diffusers' pipeline turns guidance off at values of 1 or less, so those images "
                         "all equal guidance 1; the manual loop blends toward the unconditional prediction.")

    per_image = [replace(params, seed=image_seeds[i], guidance=g, num_images=1, engine=engine,
                         strength=params.strength if strengths is None else strengths[i])
                 for i, g in enumerate(guidances)]
    for image, image_params in zip(images, per_image):
        image_ops.with_parameters(image, image_params.to_png_text())
    return GenerationResult(images, per_image, engine, cfg_applied, steps_run, info, notes)


def _manual(model, params, guidances, scheduler, generators, init_image, on_step, strengths=None, noise=None):
    unet, vae, device = model.unet, model.vae, model.device
    count = len(guidances)
    use_cfg = any(g != 1 for g in guidances)
    if use_cfg:  # prompt and negative prompt through the text encoder in one batch
        text, uncond = prompts.encode(model.tokenizer, model.text_encoder,
                                      [params.prompt, params.negative_prompt]).repeat_interleave(count, dim=0).chunk(2)
    else:
        text, uncond = prompts.encode(model.tokenizer, model.text_encoder, [params.prompt]).repeat(count, 1, 1), None
    scheduler.set_timesteps(params.steps, device=device)
    shape = latent_shape(model, params.width, params.height)
    predict_noise = unet_trace.noise_predictor(unet)

    clean = None
    if init_image is not None:
        pixels = image_ops.to_pixels(init_image).to(device, vae.dtype)
        with torch.no_grad():
            posterior = vae.encode(pixels).latent_dist
        clean = torch.cat([posterior.sample(g) for g in generators]) * vae.config.scaling_factor
    # Drawn even when `noise` is given, so each generator is where a plain run's would be (ancestral steps).
    drawn = sampling.initial_noise(generators, shape, device, text.dtype)
    noise = drawn if noise is None else noise.to(device, text.dtype)

    steps_run = params.steps
    if init_image is None:
        timesteps = scheduler.timesteps
        latents = noise * scheduler.init_noise_sigma
    elif strengths is None or len(set(strengths)) == 1:  # one start timestep for the whole batch
        strength = strengths[0] if strengths else params.strength
        timesteps, steps_run = sampling.img2img_timesteps(scheduler, params.steps, strength)
        _check_steps_run(steps_run, params, strength)
        latents = scheduler.add_noise(clean, noise, timesteps[:1].repeat(count))
    else:  # cells start at different timesteps of one schedule
        for strength in strengths:
            _check_steps_run(sampling.img2img_steps_run(params.steps, strength), params, strength)
        scheduler = staggered.StaggeredScheduler(
            [make_scheduler(params.scheduler, model.scheduler.config) for _ in strengths], params.steps, strengths, device)
        timesteps, steps_run = scheduler.timesteps, max(scheduler.steps_run)
        latents = scheduler.add_noise(clean, noise)
        predict_noise = scheduler.started_only(predict_noise)

    latents = sampling.denoise(predict_noise, scheduler, latents, timesteps, text, uncond,
                               torch.tensor(guidances), generators, on_step)
    return image_ops.decode_latents(vae, latents), steps_run, [g != 1 for g in guidances]


def latent_shape(model, width: int, height: int) -> tuple[int, int, int]:
    """One image's latents: the UNet's channels at the VAE's downsampled size."""
    vae_scale = 2 ** (len(model.vae.config.block_out_channels) - 1)  # 8 for SD
    return model.unet.config.in_channels, height // vae_scale, width // vae_scale


def _check_steps_run(steps_run, params, strength):
    if steps_run == 0:
        raise InvalidRequest(f"Strength {strength:g} with {params.steps} steps runs no step; "
                             "raise the strength or the steps.")


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
