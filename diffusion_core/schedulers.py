"""Scheduler names -> diffusers schedulers built from the model's own scheduler config."""
import diffusers

from diffusion_core.errors import InvalidRequest

# diffusers class names, looked up when first used: importing the classes up front
# pulls in scipy (LMS) and lengthens the app's cold start (benchmarks/README.md).
SCHEDULERS = {
    "pndm": ("PNDMScheduler", "PNDM"),
    "lms": ("LMSDiscreteScheduler", "LMS"),
    "ddim": ("DDIMScheduler", "DDIM"),
    "euler": ("EulerDiscreteScheduler", "Euler"),
    "euler-a": ("EulerAncestralDiscreteScheduler", "Euler a"),
    "dpm++2m": ("DPMSolverMultistepScheduler", "DPM++ 2M"),
}
SCHEDULER_NAMES = tuple(SCHEDULERS)
LABELS = {name: label for name, (_, label) in SCHEDULERS.items()}


def canonical_name(name: str) -> str:
    """Accept our names and their labels in any case ("Euler a", "EULER-A")."""
    key = str(name).strip().lower()
    for canonical, label in LABELS.items():
        if key in (canonical, label.lower(), label.lower().replace(" ", "-"), label.lower().replace(" ", "")):
            return canonical
    raise InvalidRequest(f"Unknown scheduler {name!r}. Choose one of: {', '.join(SCHEDULER_NAMES)}.")


def name_of(scheduler) -> str | None:
    """Our name for a scheduler object's class ("dpm++2m"), or None if we do not offer it."""
    return next((name for name, (cls, _) in SCHEDULERS.items() if type(scheduler).__name__ == cls), None)


def make_scheduler(name: str, model_scheduler_config):
    """A fresh scheduler (they keep per-run state, so each request gets its own)."""
    scheduler_class = getattr(diffusers, SCHEDULERS[canonical_name(name)][0])
    scheduler = scheduler_class.from_config(model_scheduler_config)
    # diffusers' SD pipelines repair two legacy config values on construction
    # (SD latents are not in [-1, 1], so clipping them is wrong); do the same so
    # both engines run the identical scheduler.
    fixes = {}
    if getattr(scheduler.config, "clip_sample", False):
        fixes["clip_sample"] = False
    if getattr(scheduler.config, "steps_offset", 1) != 1:
        fixes["steps_offset"] = 1
    return scheduler_class.from_config(model_scheduler_config, **fixes) if fixes else scheduler
