"""Integration: the shipped model's cross-attention maps, checked against the shape the image shows."""
import numpy as np
import pytest

from diffusion_core import GenerationParams, generate, load_model
from diffusion_core.attention_maps import attention_maps
from training.shape_classifier import classify, shape_mask

# (prompt, shape colour, shape, background colour): the kind of prompt, one per shape.
PROMPTS = [("a red circle on a blue background", "red", "circle", "blue"),
           ("a yellow square on a black background", "yellow", "square", "black"),
           ("a green triangle on a white background", "green", "triangle", "white"),
           ("a purple star on a orange background", "purple", "star", "orange")]
CONCENTRATION = 2.0  # the bar: a word's attention mass on its region >= 2x that region's area share


@pytest.fixture(scope="module")
def shipped():
    return load_model()


@pytest.fixture(scope="module")
def runs(shipped):
    """Per prompt: its maps and the shape's mask, as the shapes classifier reads the image."""
    found = []
    for prompt, *words in PROMPTS:
        maps = attention_maps(shipped, GenerationParams(prompt=prompt, seed=0, width=128, height=128))
        assert classify(maps.image).shape == words[1]  # the image shows the shape (else the test means nothing)
        found.append((prompt, words, maps, shape_mask(maps.image)))
    return found


def share_on_shape(maps, word: str, mask) -> float:
    """The word's attention mass inside the shape, over the shape's area share (1 = no preference)."""
    heat = maps.heat_map(maps.word_index(word))
    return float(heat[mask].sum() / heat.sum() / mask.mean())


def test_capture_changes_no_pixel_of_the_shipped_models_image(shipped, runs):
    prompt, _, maps, _ = runs[0]
    plain = generate(shipped, GenerationParams(prompt=prompt, seed=0, width=128, height=128)).images[0]
    assert np.abs(np.asarray(plain, int) - np.asarray(maps.image, int)).max() <= 1  # rounding of one 1/255 at most


def test_the_shape_words_attention_prefers_the_shape(runs):
    """Weaker than the issue's 2x (see the next test): more mass on the shape than uniform attention puts."""
    for prompt, (_, shape, _), maps, mask in runs:
        assert share_on_shape(maps, shape, mask) > 1, prompt


@pytest.mark.xfail(strict=True, reason=(
    "Not met by the shipped model (measured 2026-12-03, seed 0; ratio = mass on the shape / its area share): "
    "shape colour red 1.63, yellow 1.71, green 0.64, purple 0.74; shape circle 1.33, square 1.78, triangle "
    "2.94, star 2.79; background colour on the shape blue 1.18, black 1.67, white 0.68, orange 2.23. Every "
    "token after the shape's noun ('on', 'a', 'background', the background colour) attends to the shape, "
    "the words before it to the background: the tiny causal text encoder carries the shape in later tokens."))
def test_colour_and_shape_words_sit_on_the_shape_and_the_background_colour_off_it(runs):
    for prompt, (colour, shape, background), maps, mask in runs:
        assert share_on_shape(maps, colour, mask) >= CONCENTRATION, prompt
        assert share_on_shape(maps, shape, mask) >= CONCENTRATION, prompt
        assert share_on_shape(maps, background, mask) <= 1 / CONCENTRATION, prompt  # the mirror: half of uniform
