"""The noise schedule of one run, step by step, and each step's clean-image estimate x0.

Schedulers write the same forward process in two forms. DDPM-type ones (PNDM, DDIM,
DPM-Solver) keep x_t = √ᾱ·x0 + √(1−ᾱ)·ε; sigma-type ones (Euler, Euler a, LMS) keep
x_t = x0 + σ·ε and scale the UNet's input by 1/√(σ²+1). Both share σ = √((1−ᾱ)/ᾱ),
so one table serves every scheduler, but x0 must be solved in the scheduler's own
form: the ᾱ formula on a sigma scheduler gives washed-out previews.

x0 is affine in the noise prediction, so the guided x0 is the same blend of the two
branches' x0 as the guided noise is of the two noises.
"""
import math
from dataclasses import dataclass

import torch

from diffusion_core.errors import InvalidRequest
from diffusion_core.schedulers import canonical_name, make_scheduler

SIGMA_FORM = {"EulerDiscreteScheduler", "EulerAncestralDiscreteScheduler", "LMSDiscreteScheduler"}
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class Schedule:
    scheduler: str  # our name ("dpm++2m")
    timesteps: tuple[int, ...]  # one per step the loop runs (PNDM runs steps + 1)
    sigmas: tuple[float, ...]  # σ of each step: the noise level of the x_t the UNet is shown
    sigma_form: bool  # x_t = x0 + σ·ε (Euler, LMS) rather than √ᾱ·x0 + √(1−ᾱ)·ε
    prediction_type: str  # what the UNet predicts: "epsilon", "v_prediction" or "sample"

    @property
    def total(self) -> int:
        return len(self.timesteps)

    def alpha_bar(self, index: int) -> float:
        return 1.0 / (1.0 + self.sigmas[index] ** 2)

    def snr(self, index: int) -> float:
        """Signal-to-noise ratio ᾱ/(1−ᾱ) = 1/σ² (infinite at σ = 0)."""
        sigma = self.sigmas[index]
        return math.inf if sigma == 0 else 1.0 / sigma ** 2

    def x0(self, index: int, sample: torch.Tensor, prediction: torch.Tensor) -> torch.Tensor:
        """The clean latents implied by one noise prediction of `sample` (x_t at the start of step `index`)."""
        sigma = self.sigmas[index]
        if self.prediction_type == "sample":
            return prediction
        if self.sigma_form:
            if self.prediction_type == "epsilon":
                return sample - sigma * prediction
            return prediction * (-sigma / (sigma ** 2 + 1) ** 0.5) + sample / (sigma ** 2 + 1)
        alpha_bar = self.alpha_bar(index)
        signal, noise = alpha_bar ** 0.5, (1 - alpha_bar) ** 0.5
        if self.prediction_type == "epsilon":
            return (sample - noise * prediction) / signal
        return signal * sample - noise * prediction

    def rows(self) -> list[dict]:
        """The schedule as a table, one row per step (step is 1-based, as the UI counts)."""
        return [{"step": i + 1, "timestep": t, "sigma": self.sigmas[i], "one_minus_alpha_bar": 1 - self.alpha_bar(i),
                 "snr": self.snr(i)} for i, t in enumerate(self.timesteps)]


def schedule_for(model, scheduler_name: str, steps: int) -> Schedule:
    """The schedule a txt2img run of `steps` steps walks, read from a fresh scheduler of the model's config.

    A fresh one is exactly the run's: the schedule depends only on the config and the step count.
    """
    scheduler = make_scheduler(scheduler_name, model.scheduler.config)
    scheduler.set_timesteps(steps)
    prediction_type = scheduler.config.prediction_type
    if prediction_type not in PREDICTION_TYPES:
        raise InvalidRequest(f"This model predicts {prediction_type!r}; the loop views know "
                             f"{', '.join(PREDICTION_TYPES)}.")
    timesteps = tuple(int(t) for t in scheduler.timesteps)
    sigma_form = type(scheduler).__name__ in SIGMA_FORM
    if hasattr(scheduler, "sigmas"):  # the scheduler's own σ per step (Euler, LMS, DPM-Solver)
        sigmas = tuple(float(s) for s in scheduler.sigmas[:len(timesteps)])
    else:  # DDIM, PNDM: ᾱ at each timestep
        alphas = scheduler.alphas_cumprod[list(timesteps)].double()
        sigmas = tuple(float(s) for s in ((1 - alphas) / alphas).sqrt())
    return Schedule(canonical_name(scheduler_name), timesteps, sigmas, sigma_form, prediction_type)
