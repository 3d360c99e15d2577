"""`python -m diffusion_core attention`, run as a real subprocess on the tiny model."""
from PIL import Image

from diffusion_core import GenerationParams
from tests.test_cli import cli


def test_attention_writes_the_image_the_overlay_and_one_map_per_word(tiny_model_dir, tmp_path):
    run = cli("attention", "--model", tiny_model_dir, "--prompt", "a red circle", "--negative", "blue",
              "--steps", 2, "--size", "64x64", "--step", 2, "--out", tmp_path / "maps")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in (tmp_path / "maps").iterdir()) == [
        "00-a.png", "01-red.png", "02-circle.png", "03-blue-negative.png", "image.png", "overlay.png"]
    assert "step 2 of 3" in run.stdout  # PNDM: steps + 1 UNet calls
    image = Image.open(tmp_path / "maps" / "image.png")
    assert GenerationParams.from_png_text(image.info["parameters"]).prompt == "a red circle"
    assert Image.open(tmp_path / "maps" / "01-red.png").size == (256, 256)


def test_attention_refuses_an_empty_prompt_and_a_step_past_the_end(tiny_model_dir, tmp_path):
    for args, message in ((["--prompt", ""], "no words to map"), (["--prompt", "red", "--step", 9], "Step 9")):
        run = cli("attention", "--model", tiny_model_dir, "--steps", 1, "--size", "64x64", *args,
                  "--out", tmp_path / "x")
        assert run.returncode == 2 and message in run.stderr and "Traceback" not in run.stderr, run.stderr
