"""UI-free core: load Stable Diffusion parts, run a readable classifier-free-guidance loop.

Typical use:

    from diffusion_core import load_model, GenerationParams, generate
    model = load_model("assets/shapes-sd")
    result = generate(model, GenerationParams(prompt="a red circle", seed=1))
    result.images[0].save("out.png")
"""
import os

# Quiet by default: library progress bars and import-time notices are noise in
# a CLI and a web app. Set these variables yourself to see them again.
for _name, _value in (("TRANSFORMERS_VERBOSITY", "error"), ("DIFFUSERS_VERBOSITY", "error"),
                      ("HF_HUB_DISABLE_PROGRESS_BARS", "1")):
    os.environ.setdefault(_name, _value)

from diffusion_core.errors import GenerationCancelled, InvalidRequest, ModelLoadError
from diffusion_core.params import GenerationParams
from diffusion_core.models import DEFAULT_MODEL, LoadedModel, load_model
from diffusion_core.schedulers import SCHEDULER_NAMES
from diffusion_core.generate import GenerationResult, generate, guidance_grid
from diffusion_core.sampling import StepInfo

__all__ = [
    "DEFAULT_MODEL", "GenerationCancelled", "GenerationParams", "GenerationResult", "InvalidRequest",
    "LoadedModel", "ModelLoadError", "SCHEDULER_NAMES", "StepInfo", "generate", "guidance_grid", "load_model",
]
