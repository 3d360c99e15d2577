"""The comparisons (diffusion_core.compare) on a tiny random model: batched cells equal separate runs."""
import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core import GenerationParams, InvalidRequest, generate, guidance_grid, unet_trace
from diffusion_core.compare import guidance_effect as effect
from diffusion_core.compare.guidance_effect import guidance_effect
from diffusion_core.compare.scheduler_grid import MAX_CELLS, compare_schedulers
from diffusion_core.compare.seed_interpolation import interpolated_noise, seed_interpolation, slerp
from diffusion_core.compare.strength_sweep import MAX_STRENGTHS, strength_sweep
from tests.app_server import ROOT

SMALL = GenerationParams(prompt="a red circle", seed=11, steps=8, guidance=7.5, width=64, height=64)
INIT = Image.open(ROOT / "assets" / "examples" / "red_circle_on_blue.png")


@pytest.fixture(autouse=True)
def eager_unet(monkeypatch):
    """These tests are about batching; each new batch size would cost a trace (~1 s each, more on a busy
    machine). The trace's own tests (test_unet_trace.py) show it gives the eager UNet's numbers."""
    monkeypatch.setattr(unet_trace, "ENABLED", False)


def pixels(image):
    return np.asarray(image, np.int16)


def max_difference(a, b) -> int:
    return int(np.abs(pixels(a) - pixels(b)).max())


def test_slerp_keeps_the_norm_where_lerp_shrinks_it():
    a, b = torch.randn(2, 4, 16, 16, generator=torch.Generator().manual_seed(0))
    for t in (0.1, 0.25, 0.5, 0.9):
        ratio = slerp(a, b, t).norm() / a.norm()
        assert abs(ratio - 1) < 0.02, (t, ratio)  # two Gaussian draws of one size have nearly one norm
    assert (((a + b) / 2).norm() / a.norm()) < 0.75  # the straight line's midpoint: ~1/sqrt(2)
    unit_a, unit_b = a / a.norm(), b / b.norm()
    assert torch.allclose(slerp(unit_a, unit_b, 0.37).norm(), torch.tensor(1.0), atol=1e-5)
    assert torch.equal(slerp(a, b, 0), a) and torch.equal(slerp(a, b, 1), b)


def test_slerp_of_nearly_parallel_noise_is_the_straight_line():
    a = torch.randn(1000, generator=torch.Generator().manual_seed(1))
    b = a + 1e-4 * torch.randn(1000, generator=torch.Generator().manual_seed(2))
    middle = slerp(a, b, 0.5)
    assert torch.isfinite(middle).all() and torch.allclose(middle, (a + b) / 2)


@pytest.mark.parametrize("scheduler", ["dpm++2m", "pndm", "euler-a", "lms"])
def test_each_strength_of_a_batched_sweep_equals_that_strength_run_alone(tiny_model, scheduler):
    params = replace(SMALL, scheduler=scheduler)
    sweep = strength_sweep(tiny_model, params, INIT, [0.25, 0.5, 1.0])
    assert sweep.steps_run == [2, 4, 8] and sweep.captions()[0] == "strength 0.25: 2 of 8 steps ran"
    for strength, image, image_params in zip(sweep.strengths, sweep.result.images, sweep.result.params):
        alone = generate(tiny_model, replace(params, strength=strength), INIT)
        assert max_difference(image, alone.images[0]) <= 1, (scheduler, strength)  # batch-size rounding only
        assert image_params == alone.params[0]


def test_sweep_shows_the_init_noised_to_each_start_and_a_labelled_sheet(tiny_model):
    sweep = strength_sweep(tiny_model, SMALL, INIT, [0.25, 1.0])
    assert sweep.start_timesteps[0] < sweep.start_timesteps[1]
    init = sweep.init_image
    # The VAE is random, so compare each noised init with the init through the same decoder: less noise, closer.
    assert max_difference(init, sweep.noised[0]) > 0
    assert sweep.sheet.width > 3 * 64 and sweep.sheet.height > 2 * 64
    assert len(sweep.noised) == len(sweep.result.images) == 2


@pytest.mark.parametrize("strengths, message", [
    ([], "between 1 and"), ([0, 0.5], "above 0"), ([1.5], "at most 1"), (["x"], "must be numbers"),
    ([math.nan], "above 0"), ([0.5, 0.5], "listed twice"), ([0.05 * i for i in range(1, MAX_STRENGTHS + 2)], "between 1 and"),
    ([0.01], "runs no step"),
])
def test_bad_strength_lists_are_refused_with_a_reason(tiny_model, strengths, message):
    with pytest.raises(InvalidRequest, match=message):
        strength_sweep(tiny_model, SMALL, INIT, strengths)


def test_sweep_needs_an_init_image(tiny_model):
    with pytest.raises(InvalidRequest, match="init image"):
        strength_sweep(tiny_model, SMALL, None)


@pytest.mark.parametrize("scheduler", ["dpm++2m", "euler-a"])
def test_interpolation_frames_equal_separate_runs_and_end_on_each_seeds_image(tiny_model, scheduler):
    params = replace(SMALL, scheduler=scheduler)
    walk = seed_interpolation(tiny_model, params, seed_b=12, frames=4)
    assert walk.fractions == [0, 1 / 3, 2 / 3, 1]
    _, noise = interpolated_noise(tiny_model, params, 12, 4)
    for i, (image, frame_params) in enumerate(zip(walk.result.images, walk.result.params)):
        alone = generate(tiny_model, params, seeds=[frame_params.seed], noise=noise[i:i + 1])
        assert max_difference(image, alone.images[0]) <= 1, i
    seed_a, seed_b = (generate(tiny_model, replace(params, seed=s)).images[0] for s in (11, 12))
    assert max_difference(walk.result.images[0], seed_a) <= 1 and max_difference(walk.result.images[-1], seed_b) <= 1
    assert "Seed A: 11, Seed B: 12, Slerp t: 0.3333" in walk.result.images[1].info["parameters"]
    assert walk.animation_gif.startswith(b"GIF8") and Image.open(__import__("io").BytesIO(walk.animation_gif)).n_frames == 6


@pytest.mark.parametrize("seed_b, frames, message", [
    (11, 4, "both 11"), (12, 1, "from 2 to 16"), (12, 17, "from 2 to 16"), (12, "many", "whole number"),
    (-1, 4, "Seed must be"),
])
def test_bad_interpolation_requests_are_refused_with_a_reason(tiny_model, seed_b, frames, message):
    with pytest.raises(InvalidRequest, match=message):
        seed_interpolation(tiny_model, SMALL, seed_b=seed_b, frames=frames)


def test_scheduler_grid_times_and_labels_every_cell_and_matches_plain_runs(tiny_model):
    grid = compare_schedulers(tiny_model, SMALL, ["Euler", "ddim"], [2, 3])
    assert [(c.scheduler, c.steps) for c in grid.cells] == [("euler", 2), ("ddim", 2), ("euler", 3), ("ddim", 3)]
    assert all(c.seconds > 0 for c in grid.cells)
    assert grid.cells[0].label.startswith("Euler · 2 steps · ") and grid.cells[0].label.endswith(" s")
    plain = generate(tiny_model, replace(SMALL, scheduler="ddim", steps=3))
    assert max_difference(grid.cells[3].result.images[0], plain.images[0]) == 0
    assert grid.sheet.width > 2 * 64 and grid.sheet.height > 2 * 64


@pytest.mark.parametrize("schedulers, steps, message", [
    (["pndm", "lms", "ddim", "euler", "euler-a", "dpm++2m"], list(range(1, 8)), f"at most {MAX_CELLS}"),
    (["nope"], [5], "Unknown scheduler"), (["ddim"], [0], "Steps must be"), (["ddim", "DDIM"], [5], "listed twice"),
    ([], [5], "at least one"),
])
def test_bad_scheduler_grids_are_refused_with_a_reason(tiny_model, schedulers, steps, message):
    with pytest.raises(InvalidRequest, match=message):
        compare_schedulers(tiny_model, SMALL, schedulers, steps)


def test_image_measures_on_known_images():
    red, grey = Image.new("RGB", (8, 8), (255, 0, 0)), Image.new("RGB", (8, 8), (128, 128, 128))
    assert effect.saturation(red) == 1 and effect.saturation(grey) == 0
    half = Image.new("L", (8, 8), 0)
    half.paste(255, (0, 0, 8, 4))
    assert effect.contrast(half.convert("RGB")) == 0.5 and effect.contrast(grey) == 0
    assert effect.distance(Image.new("RGB", (8, 8), "white"), Image.new("RGB", (8, 8), "black")) == 1


def test_guidance_effect_makes_its_guidance_1_reference_in_the_same_batch(tiny_model):
    with_reference = guidance_grid(tiny_model, SMALL, [2.0, 5.0, 1.0])
    measured = guidance_effect(tiny_model, SMALL, [2.0, 5.0])
    assert measured.reference_added and len(measured.result.images) == len(measured.rows) == 2
    for row, image in zip(measured.rows, with_reference.images):
        assert row["distance to guidance 1"] == pytest.approx(effect.distance(image, with_reference.images[2]), abs=2e-3)
        assert 0 <= row["saturation"] <= 1 and 0 <= row["contrast"] <= 1
        assert row["verdict"] == "" and row["prompt words read back"] is None  # not the shapes model
    included = guidance_effect(tiny_model, SMALL, [1.0, 3.0])
    assert not included.reference_added and included.rows[0]["distance to guidance 1"] == 0
    with pytest.raises(InvalidRequest, match="include 1"):
        guidance_effect(tiny_model, SMALL, [float(g) for g in range(2, 18)])


def test_the_shapes_verdict_compares_the_reading_with_the_prompts_words():
    words = {"shapes": ["circle", "square"], "colours": ["red", "blue", "green"]}
    assert effect.expected_words("a red circle on a blue background", words) == {
        "shape": "circle", "colour": "red", "background": "blue"}
    assert effect.verdict(INIT, "a red circle on a blue background", words) == (
        1.0, "reads: red circle on blue; all 3 match")
    fraction, text = effect.verdict(INIT, "a green square", words)
    assert fraction == 0 and "shape circle not square" in text and "colour red not green" in text
    assert effect.verdict(INIT, "something else", words)[0] is None
