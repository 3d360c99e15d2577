"""The command line, run as a real subprocess."""
import subprocess
import sys

import pytest
from PIL import Image

from diffusion_core import GenerationParams


def cli(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "diffusion_core", *map(str, args)], capture_output=True,
                          text=True, timeout=120, cwd=cwd)


def test_txt2img_writes_exactly_the_named_file(tiny_model_dir, tmp_path):
    out = tmp_path / "one.png"
    run = cli("txt2img", "--model", tiny_model_dir, "--prompt", "a red circle", "--seed", 5, "--steps", 2,
              "--size", "64x64", "--scheduler", "Euler a", "--out", out)
    assert run.returncode == 0, run.stderr
    params = GenerationParams.from_png_text(Image.open(out).info["parameters"])
    assert (params.seed, params.steps, params.scheduler, params.width) == (5, 2, "euler-a", 64)


def test_several_images_get_numbered_names(tiny_model_dir, tmp_path):
    run = cli("txt2img", "--model", tiny_model_dir, "--prompt", "x", "--steps", 1, "--size", "64x64",
              "--num-images", 2, "--out", tmp_path / "many.png")
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["many-0.png", "many-1.png"]


def test_img2img_reports_the_steps_that_ran(tiny_model_dir, tmp_path):
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "init.png")
    run = cli("img2img", "--model", tiny_model_dir, "--prompt", "x", "--steps", 10, "--size", "64x64",
              "--image", tmp_path / "init.png", "--strength", 0.5, "--out", tmp_path / "var.png")
    assert run.returncode == 0, run.stderr
    assert "5 steps" in run.stdout


def test_img2img_without_strength_uses_the_models_recommended_one(tmp_path):
    Image.new("RGB", (128, 128), "blue").save(tmp_path / "init.png")
    run = cli("img2img", "--prompt", "a red circle", "--steps", 10, "--image", tmp_path / "init.png",
              "--out", tmp_path / "var.png")  # the shipped model recommends 0.6
    assert run.returncode == 0, run.stderr
    assert "6 steps" in run.stdout
    assert GenerationParams.from_png_text(Image.open(tmp_path / "var.png").info["parameters"]).strength == 0.6


@pytest.mark.parametrize("args, message", [
    (["--steps", 0], "Steps"), (["--size", "65x64"], "multiple of 8"), (["--guidance", "nan"], "finite"),
    (["--scheduler", "nope"], "Unknown scheduler"), (["--size", "big"], "size must look like"),
])
def test_bad_values_exit_nonzero_with_one_line(tiny_model_dir, tmp_path, args, message):
    run = cli("txt2img", "--model", tiny_model_dir, "--prompt", "x", *args, "--out", tmp_path / "x.png")
    assert run.returncode != 0
    assert message in run.stderr and "Traceback" not in run.stderr
    assert len(run.stderr.strip().splitlines()) == 1


def test_unknown_model_and_bad_image_and_strength_fail_cleanly(tiny_model_dir, tmp_path):
    (tmp_path / "bad.png").write_bytes(b"garbage")
    for args in (["txt2img", "--model", "nobody/nothing"],
                 ["img2img", "--model", tiny_model_dir, "--image", tmp_path / "bad.png"],
                 ["img2img", "--model", tiny_model_dir, "--image", tmp_path / "missing.png"]):
        run = cli(*args, "--prompt", "x", "--out", tmp_path / "x.png")
        assert run.returncode != 0 and "Traceback" not in run.stderr and run.stderr.startswith("error:"), run.stderr
    Image.new("RGB", (64, 64)).save(tmp_path / "ok.png")
    run = cli("img2img", "--model", tiny_model_dir, "--image", tmp_path / "ok.png", "--strength", 1.5,
              "--prompt", "x", "--size", "64x64", "--out", tmp_path / "x.png")
    assert run.returncode != 0 and "Strength" in run.stderr
