"""The parameters of one generation, their limits, and the A1111 "parameters" PNG text."""
import math
import re
from dataclasses import dataclass, replace

from diffusion_core.errors import InvalidRequest
from diffusion_core.schedulers import LABELS, canonical_name
from diffusion_core.seeds import MAX_SEED

MAX_STEPS = 200
MAX_IMAGES = 16
MAX_GUIDANCE = 50.0
MIN_SIDE, MAX_SIDE = 64, 1024
MAX_PIXELS = 1024 * 1024  # what a free CPU/GPU host can afford per image


@dataclass(frozen=True)
class GenerationParams:
    prompt: str
    negative_prompt: str = ""
    seed: int = 0
    steps: int = 25
    guidance: float = 7.5
    scheduler: str | None = None  # None: the model's own (its folder's scheduler, or generation_defaults.json)
    width: int = 512
    height: int = 512
    num_images: int = 1
    strength: float | None = None  # set for image variation (img2img)
    model: str = ""
    engine: str = "manual"  # "manual" CFG loop or diffusers "pipeline"

    def validated(self) -> "GenerationParams":
        """A checked copy with canonical names; raises InvalidRequest with a fixable message."""
        if not isinstance(self.prompt, str) or not isinstance(self.negative_prompt or "", str):
            raise InvalidRequest("Prompt and negative prompt must be text.")
        steps, width, height, num_images, seed = (_as_int(v, name) for v, name in (
            (self.steps, "Steps"), (self.width, "Width"), (self.height, "Height"),
            (self.num_images, "Number of images"), (self.seed, "Seed")))
        if not 1 <= steps <= MAX_STEPS:
            raise InvalidRequest(f"Steps must be between 1 and {MAX_STEPS} (got {steps}).")
        for side, name in ((width, "Width"), (height, "Height")):
            if not MIN_SIDE <= side <= MAX_SIDE:
                raise InvalidRequest(f"{name} must be between {MIN_SIDE} and {MAX_SIDE} pixels (got {side}).")
            if side % 8:
                raise InvalidRequest(f"{name} must be a multiple of 8 (got {side}; try {side // 8 * 8}).")
        if width * height > MAX_PIXELS:
            raise InvalidRequest(f"Image too large: {width}x{height}; at most {MAX_PIXELS} pixels (1024x1024).")
        if not 1 <= num_images <= MAX_IMAGES:
            raise InvalidRequest(f"Number of images must be between 1 and {MAX_IMAGES} (got {num_images}).")
        if not 0 <= seed <= MAX_SEED - MAX_IMAGES:
            raise InvalidRequest(f"Seed must be between 0 and {MAX_SEED - MAX_IMAGES} (got {seed}).")
        guidance = _as_float(self.guidance, "Guidance")
        if not 0 <= guidance <= MAX_GUIDANCE:
            raise InvalidRequest(f"Guidance must be between 0 and {MAX_GUIDANCE:g} (got {guidance:g}).")
        strength = self.strength
        if strength is not None:
            strength = _as_float(strength, "Strength")
            if not 0 < strength <= 1:
                raise InvalidRequest(f"Strength must be above 0 and at most 1 (got {strength:g}).")
        if self.engine not in ("manual", "pipeline"):
            raise InvalidRequest(f"Engine must be 'manual' or 'pipeline' (got {self.engine!r}).")
        return replace(self, steps=steps, width=width, height=height, num_images=num_images, seed=seed,
                       guidance=guidance, strength=strength,
                       scheduler=None if self.scheduler is None else canonical_name(self.scheduler),
                       negative_prompt=self.negative_prompt or "")

    def to_png_text(self) -> str:
        """A1111's format: prompt, 'Negative prompt: ...', then 'Key: value, ...'."""
        fields = {
            "Steps": self.steps, "Sampler": LABELS.get(self.scheduler, self.scheduler),
            "CFG scale": f"{self.guidance:g}", "Seed": self.seed, "Size": f"{self.width}x{self.height}",
            "Model": self.model, "Engine": self.engine,
        }
        if self.strength is not None:
            fields["Denoising strength"] = f"{self.strength:g}"
        lines = [self.prompt]
        if self.negative_prompt:
            lines.append(f"Negative prompt: {self.negative_prompt}")
        lines.append(", ".join(f"{key}: {_quote(value)}" for key, value in fields.items()))
        return "\n".join(lines)

    @classmethod
    def from_png_text(cls, text: str) -> "GenerationParams":
        lines = text.strip("\n").split("\n")
        if not lines or not lines[-1].startswith("Steps:"):
            raise InvalidRequest("This text is not in the A1111 'parameters' format.")
        fields = dict(re.findall(r'\s*([\w ]+):\s*("(?:\\.|[^"])*"|[^,]*)(?:,|$)', lines[-1]))
        fields = {key.strip(): _unquote(value.strip()) for key, value in fields.items()}
        body = lines[:-1]
        negative = ""
        for i, line in enumerate(body):
            if line.startswith("Negative prompt:"):
                negative = "\n".join([line[len("Negative prompt:"):].strip()] + body[i + 1:])
                body = body[:i]
                break
        width, height = (int(v) for v in fields.get("Size", "512x512").split("x"))
        strength = fields.get("Denoising strength")
        return cls(
            prompt="\n".join(body), negative_prompt=negative, seed=int(fields.get("Seed", 0)),
            steps=int(fields.get("Steps", 25)), guidance=float(fields.get("CFG scale", 7.5)),
            scheduler=canonical_name(fields.get("Sampler", "pndm")), width=width, height=height,
            strength=float(strength) if strength else None, model=fields.get("Model", ""),
            engine=fields.get("Engine", "manual"),
        )


def _as_int(value, name) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a whole number (got {value!r}).") from None
    if not math.isfinite(number) or number != int(number):
        raise InvalidRequest(f"{name} must be a whole number (got {value!r}).")
    return int(value) if isinstance(value, int) else int(number)


def _as_float(value, name) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidRequest(f"{name} must be a number (got {value!r}).") from None
    if not math.isfinite(number):
        raise InvalidRequest(f"{name} must be a finite number (got {value!r}).")
    return number


def _quote(value) -> str:
    text = str(value)
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"' if ("," in text or '"' in text) else text


def _unquote(value: str) -> str:
    if len(value) >= 2 and value[0] == value[-1] == '"':
        return re.sub(r"\\(.)", r"\1", value[1:-1])
    return value
