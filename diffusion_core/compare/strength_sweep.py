"""Image variation at several strengths in one batch: the noised init each strength starts from, and the result.

Strength s runs only the last s of the schedule, from the init image noised to that step's timestep, so
low strengths start from an image that is still mostly the init and have few steps to change it. The
batch runs from the largest strength's start; each cell joins at its own (diffusion_core/staggered.py)
and ends where a run of its strength alone ends. The noised init of each cell is read from the step
callback: it is the latents the cell's first step starts from.
"""
import math
from dataclasses import dataclass, replace

import torch
from PIL import Image

from diffusion_core import images as image_ops
from diffusion_core import sampling
from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import GenerationResult, generate
from diffusion_core.schedulers import make_scheduler

DEFAULT_STRENGTHS = (0.2, 0.4, 0.6, 0.8, 1.0)
MAX_STRENGTHS = 10


@dataclass
class StrengthSweep:
    strengths: list[float]
    steps_run: list[int]  # per cell, of params.steps
    start_timesteps: list[int]
    noised: list[Image.Image]  # the init as each cell's first step sees it
    init_image: Image.Image  # at the requested size
    result: GenerationResult
    sheet: Image.Image

    def captions(self) -> list[str]:
        steps = self.result.params[0].steps
        return [f"strength {s:g}: {run} of {steps} steps ran" for s, run in zip(self.strengths, self.steps_run)]


def checked_strengths(strengths) -> list[float]:
    values = []
    for value in strengths:
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise InvalidRequest(f"Strengths must be numbers, e.g. 0.2, 0.4, 0.6 (got {value!r}).") from None
        if not math.isfinite(number) or not 0 < number <= 1:
            raise InvalidRequest(f"Each strength must be above 0 and at most 1 (got {value!r}).")
        if number in values:
            raise InvalidRequest(f"Strength {number:g} is listed twice; give each strength once.")
        values.append(number)
    if not 1 <= len(values) <= MAX_STRENGTHS:
        raise InvalidRequest(f"Give between 1 and {MAX_STRENGTHS} strengths (got {len(values)}).")
    return values


def strength_sweep(model, params, init_image: Image.Image | None, strengths=DEFAULT_STRENGTHS,
                   on_step=None) -> StrengthSweep:
    if init_image is None:
        raise InvalidRequest("The strength sweep needs an init image; upload one or pick an example.")
    strengths = checked_strengths(strengths)
    params = replace(params, num_images=len(strengths), strength=max(strengths),
                     scheduler=params.scheduler or model.defaults["scheduler"]).validated()
    schedule = _schedule(model, params)
    starts = [_start_index(model, params, s) for s in strengths]
    first = min(starts)
    noised_latents = [None] * len(strengths)

    def capture(step):  # a cell's first step starts from its noised init
        for cell, start in enumerate(starts):
            if step.index == start - first:
                noised_latents[cell] = _variance_preserving(step.sample[cell:cell + 1], schedule, start)
        if on_step:
            on_step(step)

    result = generate(model, params, init_image, capture, seeds=[params.seed] * len(strengths), strengths=strengths)
    noised = image_ops.to_pil(image_ops.decode_latents(model.vae, torch.cat(noised_latents)))
    sweep = StrengthSweep(strengths, [sampling.img2img_steps_run(params.steps, s) for s in strengths],
                          [int(schedule.timesteps[start]) for start in starts], noised,
                          image_ops.prepare_init_image(init_image, params.width, params.height), result, None)
    sweep.sheet = _sheet(sweep)
    return sweep


def _schedule(model, params):
    scheduler = make_scheduler(params.scheduler, model.scheduler.config)
    scheduler.set_timesteps(params.steps)
    return scheduler


def _start_index(model, params, strength) -> int:
    """Where in the full schedule a strength's run begins."""
    scheduler = _schedule(model, params)
    timesteps, _ = sampling.img2img_timesteps(scheduler, params.steps, strength)
    return len(scheduler.timesteps) - len(timesteps)


def _variance_preserving(latents, schedule, index):
    """Sigma-type schedulers (Euler, LMS) keep x = x0 + sigma * noise; the VAE expects
    sqrt(alpha_bar) * x0 + sqrt(1 - alpha_bar) * noise, which is x / sqrt(sigma^2 + 1)."""
    if schedule.init_noise_sigma == 1:
        return latents
    sigma = schedule.sigmas[index].to(latents.device, latents.dtype)
    return latents / (sigma ** 2 + 1).sqrt()


def _sheet(sweep: StrengthSweep) -> Image.Image:
    columns = [f"strength {s:g}" for s in sweep.strengths]
    steps = sweep.result.params[0].steps
    sheet = image_ops.table(
        [[sweep.init_image, *sweep.noised], [None, *sweep.result.images]],
        ["noised init", "result"], ["init", *columns],
        [["", *(f"starts at t={t}" for t in sweep.start_timesteps)],
         ["", *(f"{run} of {steps} steps ran" for run in sweep.steps_run)]])
    image_ops.with_parameters(sheet, sweep.result.params[-1].to_png_text())
    return sheet
