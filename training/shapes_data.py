"""The shapes data set: one filled shape on a plain background, with captions.

Everything is generated from a seed, so the data set is reproducible and never
stored. Images are 128x128 RGB.
"""
import math
import random
from dataclasses import dataclass

import numpy as np
from PIL import Image, ImageDraw

IMAGE_SIZE = 128
SHAPES = ("circle", "square", "triangle", "star")
PALETTE = {
    "red": (220, 40, 40),
    "orange": (245, 140, 30),
    "yellow": (240, 220, 40),
    "green": (40, 170, 70),
    "blue": (40, 90, 220),
    "purple": (140, 60, 190),
    "white": (245, 245, 245),
    "black": (20, 20, 20),
}
COLOURS = tuple(PALETTE)
VOCABULARY_WORDS = SHAPES + COLOURS + ("a", "on", "background")
COLOUR_JITTER = 12
EMPTY_CAPTION_RATE = 0.1


@dataclass(frozen=True)
class ShapeScene:
    shape: str
    colour: str
    background: str
    size: float  # fraction of the image side
    centre: tuple  # pixels


def full_caption(scene: ShapeScene) -> str:
    return f"a {scene.colour} {scene.shape} on a {scene.background} background"


def random_caption(scene: ShapeScene, rng: random.Random) -> str:
    """A full or partial caption, or empty (for classifier-free guidance)."""
    if rng.random() < EMPTY_CAPTION_RATE:
        return ""
    s, c, b = scene.shape, scene.colour, scene.background
    forms = [
        (0.45, f"a {c} {s} on a {b} background"),
        (0.12, f"a {c} {s}"),
        (0.10, f"a {s} on a {b} background"),
        (0.07, f"a {s}"),
        (0.07, f"a {b} background"),
        (0.05, f"{c} {s}"),
        (0.04, c),
        (0.04, s),
        (0.03, f"{b} background"),
        (0.03, f"{c} on a {b} background"),
    ]
    weights = [w for w, _ in forms]
    return rng.choices([text for _, text in forms], weights=weights)[0]


def random_scene(rng: random.Random) -> ShapeScene:
    colour, background = rng.sample(COLOURS, 2)
    size = rng.uniform(0.3, 0.7)
    half = size * IMAGE_SIZE / 2
    centre = (rng.uniform(half, IMAGE_SIZE - half), rng.uniform(half, IMAGE_SIZE - half))
    return ShapeScene(rng.choice(SHAPES), colour, background, size, centre)


def shape_polygon(shape: str, centre, size_px: float):
    """Vertices of the shape, fitting a size_px box around centre (None for a circle)."""
    cx, cy = centre
    r = size_px / 2
    if shape == "square":
        return [(cx - r, cy - r), (cx + r, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "triangle":
        return [(cx, cy - r), (cx + r, cy + r), (cx - r, cy + r)]
    if shape == "star":
        # Five points inside the size_px circle; nudged down because the star's
        # box is top-heavy.
        outer, inner = r, r * 0.4
        oy = cy + r * 0.095
        points = []
        for k in range(10):
            radius = outer if k % 2 == 0 else inner
            angle = -math.pi / 2 + k * math.pi / 5
            points.append((cx + radius * math.cos(angle), oy + radius * math.sin(angle)))
        return points
    return None


def jitter(colour, rng: random.Random):
    return tuple(max(0, min(255, v + rng.randint(-COLOUR_JITTER, COLOUR_JITTER))) for v in colour)


def render(scene: ShapeScene, rng: random.Random | None = None, supersample: int = 4) -> Image.Image:
    """Draw the scene antialiased (drawn large, then downsampled)."""
    rng = rng or random.Random(0)
    fill = jitter(PALETTE[scene.colour], rng) if rng else PALETTE[scene.colour]
    back = jitter(PALETTE[scene.background], rng)
    big = IMAGE_SIZE * supersample
    image = Image.new("RGB", (big, big), back)
    draw_shape(ImageDraw.Draw(image), scene, supersample, fill)
    return image.resize((IMAGE_SIZE, IMAGE_SIZE), Image.LANCZOS)


def draw_shape(draw: ImageDraw.ImageDraw, scene: ShapeScene, supersample: int, fill) -> None:
    """The scene's shape, filled, on a canvas supersample times the image's size."""
    centre = (scene.centre[0] * supersample, scene.centre[1] * supersample)
    size_px = scene.size * IMAGE_SIZE * supersample
    polygon = shape_polygon(scene.shape, centre, size_px)
    if polygon is None:
        r = size_px / 2
        draw.ellipse([centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r], fill=fill)
    else:
        draw.polygon(polygon, fill=fill)


def sample(index: int, seed: int = 0):
    """The index-th (image, caption, scene) of the data set with this seed."""
    rng = random.Random(seed * 1_000_003 + index)
    scene = random_scene(rng)
    return render(scene, rng), random_caption(scene, rng), scene


def images_at(indices, seed: int = 0) -> np.ndarray:
    """The images (no captions) of the data set with this seed at these indices, stacked."""
    return np.stack([np.asarray(sample(i, seed)[0]) for i in indices])


def image_batch(start: int, count: int, seed: int = 0) -> np.ndarray:
    return images_at(range(start, start + count), seed)
