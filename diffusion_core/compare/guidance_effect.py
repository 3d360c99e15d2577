"""What guidance does, measured per cell of a guidance grid: "more guidance follows the prompt more,
then burns" as curves.

Per image (all on 8-bit RGB scaled to 0-1):
  saturation  mean of HSV saturation
  contrast    standard deviation of luma (PIL's "L": 0.299 R + 0.587 G + 0.114 B)
  distance    mean absolute RGB difference to the guidance-1 image of the same seed (the prediction with
              the text alone, no push), a plain pixel measure, not a learned perceptual one (LPIPS)
and, for the shipped shapes model only, what training/shape_classifier.py reads in the image against
the shape, colour and background words of the prompt.
When the grid has no guidance 1, its reference image is one extra cell of the same batch.
"""
from dataclasses import dataclass, replace

import numpy as np
from PIL import Image

from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import SEED_GRID, GenerationResult, guidance_grid

MAX_VALUES = 16  # the grid's own limit, reference included
COLUMNS = ["guidance", "saturation", "contrast", "distance to guidance 1", "prompt words read back", "verdict"]


@dataclass
class GuidanceEffect:
    result: GenerationResult  # the requested cells only
    rows: list[dict]  # one per cell, keys: COLUMNS
    reference_added: bool  # guidance 1 was not asked for: one extra cell was made for the distances

    def table(self) -> list[list]:
        return [[row[column] for column in COLUMNS] for row in self.rows]


def saturation(image: Image.Image) -> float:
    return float(np.asarray(image.convert("HSV"), float)[..., 1].mean() / 255)


def contrast(image: Image.Image) -> float:
    return float(np.asarray(image.convert("L"), float).std() / 255)


def distance(image: Image.Image, reference: Image.Image) -> float:
    a, b = (np.asarray(i.convert("RGB"), float) for i in (image, reference))
    return float(np.abs(a - b).mean() / 255)


def expected_words(prompt: str, known_words: dict) -> dict:
    """The shape, its colour (the colour word just before the shape) and the background's colour
    (the colour word just before "background") that a shapes prompt asks for."""
    words = prompt.lower().replace(",", " ").split()
    colours, shapes = set(known_words.get("colours", [])), set(known_words.get("shapes", []))
    expected = {}
    for i, word in enumerate(words):
        before = words[i - 1] if i and words[i - 1] in colours else None
        if word in shapes and "shape" not in expected:
            expected["shape"] = word
            if before:
                expected["colour"] = before
        elif word == "background" and before:
            expected["background"] = before
    return expected


def verdict(image: Image.Image, prompt: str, known_words: dict) -> tuple[float | None, str]:
    """(fraction of the prompt's words read back, e.g. 'reads: red circle on blue; prompt: all 3 match')"""
    from training.shape_classifier import classify  # the shipped model's reader; only used for that model

    reading = classify(image)
    read = f"reads: {reading.colour} {reading.shape} on {reading.background}"
    expected = expected_words(prompt, known_words)
    if not expected:
        return None, f"{read} (the prompt names no shape, colour or background)"
    got = {"shape": reading.shape, "colour": reading.colour, "background": reading.background}
    missed = [f"{key} {got[key]} not {value}" for key, value in expected.items() if got[key] != value]
    fraction = 1 - len(missed) / len(expected)
    return fraction, read + (f"; all {len(expected)} match" if not missed else "; " + ", ".join(missed))


def guidance_effect(model, params, guidances=SEED_GRID, on_step=None) -> GuidanceEffect:
    guidances = [float(g) for g in guidances]
    reference_added = 1.0 not in guidances
    if reference_added and len(guidances) >= MAX_VALUES:
        raise InvalidRequest(f"Give at most {MAX_VALUES - 1} guidance values, or include 1: the plot compares every "
                             "cell with the guidance-1 image, made as one more cell of the batch.")
    result = guidance_grid(model, params, guidances + [1.0] if reference_added else guidances, on_step=on_step)
    reference = result.images[len(guidances) if reference_added else guidances.index(1.0)]
    if reference_added:
        count = len(guidances)
        result = replace(result, images=result.images[:count], params=result.params[:count],
                         cfg_applied=result.cfg_applied[:count])
    rows = []
    for g, image in zip(guidances, result.images):
        fraction, text = verdict(image, params.prompt, model.known_words) if model.known_words else (None, "")
        rows.append(dict(zip(COLUMNS, [g, saturation(image), contrast(image), distance(image, reference),
                                       fraction, text])))
    return GuidanceEffect(result, rows, reference_added)
