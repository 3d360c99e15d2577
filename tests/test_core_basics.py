"""Parameters, prompts, schedulers, seeds, model loading and the step callback."""
import math
import time
from dataclasses import replace

import pytest
import torch
from PIL import Image

from diffusion_core import (GenerationCancelled, GenerationParams, InvalidRequest, ModelLoadError, generate,
                            load_model)
from diffusion_core import images as image_ops
from diffusion_core.prompts import describe_prompt
from diffusion_core.schedulers import canonical_name, make_scheduler

SMALL = GenerationParams(prompt="a red circle", seed=3, steps=3, width=64, height=64)


def test_png_parameters_text_round_trips():
    params = GenerationParams(prompt="a red, \"quoted\" circle\non two lines", negative_prompt="blue",
                              seed=193, steps=30, guidance=7.5, scheduler="euler-a", width=128, height=96,
                              strength=0.6, model="assets/shapes-sd").validated()
    text = params.to_png_text()
    assert "Sampler: Euler a" in text and "CFG scale: 7.5" in text and "Negative prompt: blue" in text
    assert GenerationParams.from_png_text(text) == params


def test_saved_png_carries_its_parameters(tiny_model, tmp_path):
    result = generate(tiny_model, SMALL)
    image_ops.save_png(result.images[0], tmp_path / "out.png")
    text = Image.open(tmp_path / "out.png").info["parameters"]
    assert GenerationParams.from_png_text(text) == result.params[0]


@pytest.mark.parametrize("name, class_name", [
    ("PNDM", "PNDMScheduler"), ("lms", "LMSDiscreteScheduler"), ("DDIM", "DDIMScheduler"),
    ("Euler", "EulerDiscreteScheduler"), ("Euler a", "EulerAncestralDiscreteScheduler"),
    ("EULER-A", "EulerAncestralDiscreteScheduler"), ("DPM++ 2M", "DPMSolverMultistepScheduler"),
    ("dpm++2m", "DPMSolverMultistepScheduler"),
])
def test_scheduler_names_are_case_insensitive_and_accept_labels(tiny_model, name, class_name):
    scheduler = make_scheduler(name, tiny_model.scheduler.config)
    assert type(scheduler).__name__ == class_name
    assert scheduler.config.beta_schedule == tiny_model.scheduler.config.beta_schedule  # the model's own config


def test_a_model_folder_s_own_scheduler_is_its_default(tiny_model_dir, tmp_path):
    """SD 2.x ships DDIM, SD 1.x PNDM: requests that name no scheduler get the folder's own."""
    import json
    import shutil
    from diffusers import DDIMScheduler
    folder = shutil.copytree(tiny_model_dir, tmp_path / "ddim-model")
    DDIMScheduler.from_pretrained(folder, subfolder="scheduler").save_pretrained(folder / "scheduler")
    index = json.loads((folder / "model_index.json").read_text())
    index["scheduler"] = ["diffusers", "DDIMScheduler"]
    (folder / "model_index.json").write_text(json.dumps(index))
    model = load_model(str(folder), device="cpu")
    assert model.defaults["scheduler"] == "ddim"
    assert generate(model, SMALL).params[0].scheduler == "ddim"


def test_a_model_s_fingerprint_changes_when_its_files_do(tiny_model_dir, tmp_path):
    """The app keys its example cache by it: a retrained model must not show the old model's pictures."""
    import shutil
    from diffusion_core.models import files_fingerprint
    folder = shutil.copytree(tiny_model_dir, tmp_path / "copy")
    before = files_fingerprint(str(folder))
    assert files_fingerprint(str(folder)) == before
    (folder / "generation_defaults.json").write_text('{"guidance": 3.0}')
    assert files_fingerprint(str(folder)) != before
    assert load_model(str(folder), device="cpu").fingerprint == files_fingerprint(str(folder))


def test_a_misspelt_scheduler_in_generation_defaults_fails_at_load_with_the_file_named(tiny_model_dir, tmp_path):
    import shutil
    folder = shutil.copytree(tiny_model_dir, tmp_path / "typo")
    (folder / "generation_defaults.json").write_text('{"scheduler": "DPM++ 2M"}')
    assert load_model(str(folder), device="cpu").defaults["scheduler"] == "dpm++2m"  # labels are fine
    (folder / "generation_defaults.json").write_text('{"scheduler": "dpm+++"}')
    with pytest.raises(ModelLoadError, match="generation_defaults.json.*Unknown scheduler 'dpm\\+\\+\\+'"):
        load_model(str(folder), device="cpu")


def test_unknown_scheduler_lists_the_valid_ones():
    with pytest.raises(InvalidRequest, match="pndm, lms, ddim, euler, euler-a, dpm\\+\\+2m"):
        canonical_name("k_heun")


@pytest.mark.parametrize("field, value, message", [
    ("steps", 0, "Steps must be between"), ("width", 100, "multiple of 8"), ("guidance", math.nan, "finite"),
    ("guidance", -1, "between 0"), ("strength", 1.5, "Strength"), ("seed", -1, "Seed"),
    ("num_images", 0, "Number of images"), ("height", 10**6, "between 64 and 1024"),
])
def test_bad_values_are_refused_with_a_clear_message(field, value, message):
    with pytest.raises(InvalidRequest, match=message):
        replace(SMALL, **{field: value}).validated()


def test_prompt_report_counts_tokens_and_truncation(tiny_model):
    short = describe_prompt(tiny_model.tokenizer, "a red circle")
    assert not short.truncated and short.max_tokens == 75
    long = describe_prompt(tiny_model.tokenizer, "red " * 100)
    assert long.truncated and long.token_count == 100 and "truncated" in long.message()
    result = generate(tiny_model, replace(SMALL, prompt="red " * 100))
    assert result.prompt_info.truncated and any("truncated" in note for note in result.notes)


def test_step_callback_reports_every_step_with_both_guidance_branches(tiny_model):
    seen = []
    generate(tiny_model, replace(SMALL, scheduler="ddim", steps=4), on_step=seen.append)
    assert [s.index for s in seen] == [0, 1, 2, 3] and seen[0].total == 4
    assert all(s.noise_uncond is not None and s.noise_text is not None for s in seen)
    assert seen[0].predicted_x0 is not None  # DDIM gives its x0 estimate
    assert seen[0].timestep > seen[-1].timestep


def test_guidance_one_skips_the_unconditional_branch(tiny_model):
    seen = []
    generate(tiny_model, replace(SMALL, guidance=1.0), on_step=seen.append)
    assert all(s.noise_uncond is None for s in seen)


def test_cancelling_from_the_callback_stops_the_run(tiny_model):
    def stop_at_second_step(step):
        if step.index == 1:
            raise GenerationCancelled()
    with pytest.raises(GenerationCancelled):
        generate(tiny_model, replace(SMALL, steps=10), on_step=stop_at_second_step)
    assert generate(tiny_model, SMALL).images[0].size == (64, 64)  # the model still works afterwards


def test_unknown_hub_id_offline_fails_fast_with_a_clear_message():
    started = time.monotonic()
    with pytest.raises(ModelLoadError, match="CompVis/no-such-model.*offline"):
        load_model("CompVis/no-such-model")
    assert time.monotonic() - started < 10


def test_folder_without_model_index_is_refused(tmp_path):
    with pytest.raises(ModelLoadError, match="model_index.json"):
        load_model(str(tmp_path))


def test_folder_outside_allowed_roots_is_refused(tiny_model_dir, tmp_path):
    with pytest.raises(ModelLoadError, match="outside the allowed"):
        load_model(str(tiny_model_dir), allowed_roots=[tmp_path / "elsewhere"])


def test_model_loads_in_fp32_on_cpu_and_can_run_the_manual_loop(tiny_model):
    assert tiny_model.device.type == "cpu" and tiny_model.dtype == torch.float32
    assert tiny_model.can_run_manual_loop and tiny_model.pipeline_class_name == "StableDiffusionPipeline"


@pytest.mark.parametrize("mode", ["RGBA", "L", "P", "I;16", "CMYK"])
def test_init_images_of_any_mode_become_rgb(tiny_model, mode):
    image = Image.new("RGB", (70, 50), (200, 30, 30)).convert(mode)
    result = generate(tiny_model, replace(SMALL, strength=0.5), init_image=image_ops.load_image(image))
    assert result.images[0].mode == "RGB" and result.images[0].size == (64, 64)


def test_corrupt_image_bytes_are_refused():
    with pytest.raises(InvalidRequest, match="Could not read"):
        image_ops.load_image(b"not an image at all")


def test_labelled_grid_has_one_cell_per_image():
    cells = [Image.new("RGB", (64, 64), (i * 20, 0, 0)) for i in range(9)]
    sheet = image_ops.grid(cells, [str(i) for i in range(9)])
    assert sheet.width == 3 * 64 and sheet.height > 3 * 64
