"""Two seeds, frames of spherical interpolation (slerp) between their initial noise, one prompt: the noise
sets the composition, and a walk between two noises morphs one picture into the other.

Why slerp, not a straight line: the initial noise is a Gaussian sample, whose norm is nearly fixed in
high dimensions; the midpoint of a straight line between two samples has only ~0.71 of that norm, and
the model, handed too little noise, paints washed-out images. slerp walks the arc and keeps the norm.
All frames run in one batch; frame 0 is seed A's image and the last frame seed B's, exactly. Ancestral
schedulers (Euler a) also add fresh noise at every step; each frame takes it from the nearer seed.
"""
import math
from dataclasses import dataclass, replace

import torch
from PIL import Image

from diffusion_core import images as image_ops
from diffusion_core import sampling, seeds
from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import GenerationResult, generate, latent_shape

DEFAULT_FRAMES = 8
MAX_FRAMES = 16
PARALLEL = 0.9995  # cosine above which two noises are treated as parallel: slerp's sin(angle) -> 0


def slerp(a: torch.Tensor, b: torch.Tensor, t: float) -> torch.Tensor:
    """Spherical interpolation from a (t=0) to b (t=1); a straight line where they are nearly parallel."""
    if t in (0, 1):  # the seeds' own noise, bit for bit
        return (a if t == 0 else b).clone()
    cosine = torch.sum(a * b) / (a.norm() * b.norm())
    if cosine.abs() > PARALLEL:
        return (1 - t) * a + t * b
    angle = torch.arccos(cosine)
    return (torch.sin((1 - t) * angle) * a + torch.sin(t * angle) * b) / torch.sin(angle)


@dataclass
class SeedInterpolation:
    fractions: list[float]  # t of each frame, 0 ... 1
    seed_a: int
    seed_b: int
    result: GenerationResult
    strip: Image.Image
    animation_gif: bytes

    def captions(self) -> list[str]:
        return [f"t={t:.2f}" + (f" (seed {self.seed_a})" if t == 0 else f" (seed {self.seed_b})" if t == 1 else "")
                for t in self.fractions]


def interpolated_noise(model, params, seed_b: int, frames: int) -> tuple[list[float], torch.Tensor]:
    shape = latent_shape(model, params.width, params.height)
    a, b = (sampling.initial_noise(seeds.generators_for([seed]), shape, "cpu", torch.float32)[0]
            for seed in (params.seed, seed_b))
    fractions = [i / (frames - 1) for i in range(frames)]
    return fractions, torch.stack([slerp(a, b, t) for t in fractions])


def checked_frames(frames) -> int:
    try:
        count = float(frames)
    except (TypeError, ValueError):
        raise InvalidRequest(f"Frames must be a whole number (got {frames!r}).") from None
    if not math.isfinite(count) or count != int(count) or not 2 <= count <= MAX_FRAMES:
        raise InvalidRequest(f"Frames must be a whole number from 2 to {MAX_FRAMES} (got {frames!r}).")
    return int(count)


def seed_interpolation(model, params, seed_b: int, frames: int = DEFAULT_FRAMES, on_step=None,
                       milliseconds_per_frame: int = 150) -> SeedInterpolation:
    frames = checked_frames(frames)
    seed_b = replace(params, seed=seed_b).validated().seed
    params = replace(params, num_images=frames).validated()
    if seed_b == params.seed:
        raise InvalidRequest(f"Seed A and seed B are both {seed_b}: every frame would be the same image. "
                             "Pick two different seeds.")
    fractions, noise = interpolated_noise(model, params, seed_b, frames)
    nearer = [params.seed if t < 0.5 else seed_b for t in fractions]
    result = generate(model, params, None, on_step, seeds=nearer, noise=noise)
    if result.params[0].scheduler == "euler-a":
        result.notes.append("Euler a adds fresh noise at every step, which no slerp of the starting noise covers: "
                            "frames before the middle take it from seed A, the rest from seed B.")
    for image, t in zip(result.images, fractions):  # the PNG's Seed is the nearer one; say where the noise came from
        image_ops.with_parameters(image, f"{image.info['parameters']}, Seed A: {params.seed}, Seed B: {seed_b}, "
                                         f"Slerp t: {t:.4g}")
    interpolation = SeedInterpolation(fractions, params.seed, seed_b, result, None, b"")
    interpolation.strip = image_ops.table([result.images], [""], [f"t={t:.2f}" for t in fractions],
                                          [[f"seed {params.seed}" if t == 0 else f"seed {seed_b}" if t == 1 else ""
                                            for t in fractions]])
    interpolation.animation_gif = image_ops.gif_bytes(result.images, milliseconds_per_frame)
    return interpolation
