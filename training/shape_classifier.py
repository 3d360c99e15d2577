"""Read back what a shapes image shows: background colour, shape colour, shape kind.

Background: median of the pixels in a thin band along the border. Shape: the pixels closer to the shape's
colour than to the background's, not counting the outermost pixels (a VAE decode's padding artefacts there
would otherwise stretch the shape's box to the image edge and read any shape as a star). Kind: a star is
the only concave shape, so a shape that fills less than STAR_SOLIDITY of its convex hull is a star (a clean
star ~0.5; one with points rounded off by the VAE ~0.7, while its bounding-box fill ~0.5 looks like a
triangle's); the convex three by how much of their bounding box they fill (square ~1, circle ~0.79,
triangle ~0.5).
"""
from dataclasses import dataclass

import numpy as np
from PIL import Image

from training.shapes_data import PALETTE

PALETTE_NAMES = list(PALETTE)
PALETTE_RGB = np.array([PALETTE[name] for name in PALETTE_NAMES], dtype=float)
FILL_THRESHOLDS = ((0.9, "square"), (0.64, "circle"), (0.0, "triangle"))
STAR_SOLIDITY = 0.8
BORDER_BAND = (2, 5)  # pixels from the edge
MIN_AREA = 0.01  # of the image: less than this is "no shape"


@dataclass(frozen=True)
class Reading:
    background: str
    colour: str
    shape: str
    fill: float
    solidity: float = 1.0


def nearest_colour(rgb) -> str:
    return PALETTE_NAMES[int(np.argmin(((PALETTE_RGB - np.asarray(rgb, float)) ** 2).sum(1)))]


def classify(image: Image.Image) -> Reading:
    background, pixels, mask = _segment(image)
    if mask is None:
        return Reading(nearest_colour(background), "none", "none", 0.0)
    rows, cols = np.nonzero(mask)
    box = (rows.max() - rows.min() + 1) * (cols.max() - cols.min() + 1)
    fill = mask.sum() / box
    solidity = mask.sum() / convex_hull_area(rows, cols)
    if solidity < STAR_SOLIDITY:
        shape = "star"
    else:
        shape = next(name for threshold, name in FILL_THRESHOLDS if fill >= threshold)
    return Reading(nearest_colour(background), nearest_colour(np.median(pixels[mask], axis=0)), shape,
                   float(fill), float(solidity))


def shape_mask(image: Image.Image) -> np.ndarray:
    """The pixels classify reads as the shape, at the image's size (True = shape); the outermost
    BORDER_BAND[0] pixels, which it leaves out, are False, and so is everything where it sees no shape."""
    _, pixels, mask = _segment(image)
    a = BORDER_BAND[0]
    full = np.zeros((pixels.shape[0] + 2 * a, pixels.shape[1] + 2 * a), dtype=bool)
    if mask is not None:
        full[a:-a, a:-a] = mask
    return full


def _segment(image: Image.Image):
    """Background colour, the pixels inside the border, and the shape's mask over them (None: no shape)."""
    pixels = np.asarray(image.convert("RGB"), dtype=float)
    # A band just inside the edge: the outermost pixels of a VAE decode carry padding artefacts.
    a, b = BORDER_BAND
    border = np.concatenate([pixels[a:b].reshape(-1, 3), pixels[-b:-a].reshape(-1, 3),
                             pixels[:, a:b].reshape(-1, 3), pixels[:, -b:-a].reshape(-1, 3)])
    background = np.median(border, axis=0)
    pixels = pixels[a:-a, a:-a]  # the same artefacts would stretch the shape's box to the edge
    distance_to_background = np.sqrt(((pixels - background) ** 2).sum(-1))
    rough = distance_to_background > 30
    if rough.mean() < MIN_AREA:
        return background, pixels, None
    shape_rgb = np.median(pixels[rough], axis=0)
    distance_to_shape = np.sqrt(((pixels - shape_rgb) ** 2).sum(-1))
    mask = distance_to_shape < distance_to_background
    return background, pixels, mask if mask.mean() >= MIN_AREA else None


def convex_hull_area(rows, cols) -> float:
    """Area of the convex hull of the pixels (as unit squares), by Andrew's monotone chain + shoelace."""
    # Each pixel's four corners, so a hull of pixel squares, comparable to the pixel count.
    corners = np.unique(np.concatenate([np.stack([rows + dr, cols + dc], 1) for dr in (0, 1) for dc in (0, 1)]), axis=0)
    points = [tuple(p) for p in corners.tolist()]  # np.unique sorts them lexicographically

    def half(sequence):
        chain = []
        for p in sequence:
            while len(chain) >= 2 and _cross(chain[-2], chain[-1], p) <= 0:
                chain.pop()
            chain.append(p)
        return chain[:-1]

    hull = np.array(half(points) + half(reversed(points)), dtype=float)
    x, y = hull[:, 0], hull[:, 1]
    return 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1)))


def _cross(o, a, b):
    return (a[0] - o[0]) * (b[1] - o[1]) - (a[1] - o[1]) * (b[0] - o[0])
