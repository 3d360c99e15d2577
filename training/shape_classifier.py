"""Read back what a shapes image shows: background colour, shape colour, shape kind.

Background: median of the pixels in a thin band along the border. Shape: the pixels closer to the shape's
colour than to the background's. Kind: how much of its bounding box the shape
fills (square ~1, circle ~0.79, triangle ~0.5, five-point star ~0.35).
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.shapes_data import PALETTE

PALETTE_NAMES = list(PALETTE)
PALETTE_RGB = np.array([PALETTE[name] for name in PALETTE_NAMES], dtype=float)
FILL_THRESHOLDS = ((0.9, "square"), (0.64, "circle"), (0.42, "triangle"), (0.0, "star"))
BORDER_BAND = (2, 5)  # pixels from the edge
MIN_AREA = 0.01  # of the image: less than this is "no shape"


@dataclass(frozen=True)
class Reading:
    background: str
    colour: str
    shape: str
    fill: float


def nearest_colour(rgb) -> str:
    return PALETTE_NAMES[int(np.argmin(((PALETTE_RGB - np.asarray(rgb, float)) ** 2).sum(1)))]


def classify(image: Image.Image) -> Reading:
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    # A band just inside the edge: the outermost pixels of a VAE decode carry padding artefacts.
    a, b = BORDER_BAND
    border = np.concatenate([pixels[a:b].reshape(-1, 3), pixels[-b:-a].reshape(-1, 3),
                             pixels[:, a:b].reshape(-1, 3), pixels[:, -b:-a].reshape(-1, 3)])
    background = np.median(border, axis=0)
    distance_to_background = np.sqrt(((pixels - background) ** 2).sum(-1))
    rough = distance_to_background > 30
    if rough.mean() < MIN_AREA:
        return Reading(nearest_colour(background), "none", "none", 0.0)
    shape_rgb = np.median(pixels[rough], axis=0)
    distance_to_shape = np.sqrt(((pixels - shape_rgb) ** 2).sum(-1))
    mask = distance_to_shape < distance_to_background
    if mask.mean() < MIN_AREA:
        return Reading(nearest_colour(background), "none", "none", 0.0)
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    fill = mask.sum() / box
    shape = next(name for threshold, name in FILL_THRESHOLDS if fill >= threshold)
    return Reading(nearest_colour(background), nearest_colour(np.median(pixels[mask], axis=0)), shape, float(fill))
