"""The manual CFG loop must give the same pixels as diffusers' pipelines (fp32, CPU)."""
from dataclasses import replace

import numpy as np
import pytest
from PIL import Image

from diffusion_core import GenerationParams, SCHEDULER_NAMES, generate, guidance_grid

TOLERANCE = 1  # out of 255


def max_pixel_difference(images_a, images_b) -> float:
    assert len(images_a) == len(images_b)
    return max(np.abs(np.asarray(a, np.int16) - np.asarray(b, np.int16)).max() for a, b in zip(images_a, images_b))


def request(**overrides) -> GenerationParams:
    base = GenerationParams(prompt="a red circle", negative_prompt="blue", seed=7, steps=4, guidance=7.5,
                            width=64, height=64)
    return replace(base, **overrides)


@pytest.mark.parametrize("scheduler", SCHEDULER_NAMES)
@pytest.mark.parametrize("guidance", [1.0, 3.0, 7.5])
def test_manual_loop_matches_pipeline_for_same_seed(tiny_model, scheduler, guidance):
    params = request(scheduler=scheduler, guidance=guidance, num_images=2)
    manual = generate(tiny_model, params)
    pipeline = generate(tiny_model, replace(params, engine="pipeline"))
    assert (manual.engine, pipeline.engine) == ("manual", "pipeline")
    assert max_pixel_difference(manual.images, pipeline.images) <= TOLERANCE
    assert manual.cfg_applied == [guidance != 1] * 2


def test_manual_loop_matches_pipeline_without_negative_prompt(tiny_model):
    params = request(negative_prompt="")
    assert max_pixel_difference(generate(tiny_model, params).images,
                                generate(tiny_model, replace(params, engine="pipeline")).images) <= TOLERANCE


@pytest.mark.parametrize("strength", [0.3, 0.6, 1.0])
@pytest.mark.parametrize("scheduler", ["pndm", "euler-a", "dpm++2m"])
def test_image_variation_matches_img2img_pipeline(tiny_model, strength, scheduler):
    init = Image.new("RGB", (80, 72), (200, 40, 40))  # not the target size: both engines get it resized
    params = request(strength=strength, steps=10, scheduler=scheduler, num_images=2)
    manual = generate(tiny_model, params, init_image=init)
    pipeline = generate(tiny_model, replace(params, engine="pipeline"), init_image=init)
    assert manual.steps_run == pipeline.steps_run == int(10 * strength)
    assert manual.images[0].size == (64, 64)
    assert max_pixel_difference(manual.images, pipeline.images) <= TOLERANCE


def test_image_i_of_a_batch_equals_a_single_run_with_seed_plus_i(tiny_model):
    batch = generate(tiny_model, request(num_images=4, scheduler="euler-a"))
    for i, image in enumerate(batch.images):
        alone = generate(tiny_model, request(seed=7 + i, scheduler="euler-a"))
        assert max_pixel_difference([image], alone.images) <= TOLERANCE
        assert batch.params[i].seed == 7 + i
    assert max_pixel_difference(batch.images[:1], batch.images[1:2]) > 10  # different seeds differ


def test_batched_guidance_grid_equals_separate_runs(tiny_model):
    values = (0.25, 0.5, 1.0, 2.0, 4.0, 6.0, 8.0, 10.0, 20.0)
    grid = guidance_grid(tiny_model, request(), values)
    assert len(grid.images) == 9
    for image, cell_params, g in zip(grid.images, grid.params, values):
        alone = generate(tiny_model, request(guidance=g))
        assert cell_params.guidance == g and cell_params.seed == 7
        assert max_pixel_difference([image], alone.images) <= TOLERANCE


def test_guidance_below_one_blends_in_manual_loop_but_not_in_pipeline(tiny_model):
    manual = guidance_grid(tiny_model, request(), (0.25, 1.0))
    pipeline = guidance_grid(tiny_model, request(engine="pipeline"), (0.25, 1.0))
    assert max_pixel_difference(manual.images[:1], manual.images[1:]) > 0  # random tiny weights: small but real
    assert max_pixel_difference(pipeline.images[:1], pipeline.images[1:]) == 0
    assert pipeline.cfg_applied == [False, False] and manual.cfg_applied == [True, False]
    assert any("1 or less" in note for note in pipeline.notes)
