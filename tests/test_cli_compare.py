"""The comparison subcommands, run as real subprocesses on the tiny model."""
from PIL import Image

from tests.test_cli import cli

TINY = ["--size", "64x64", "--prompt", "a red circle"]


def test_compare_schedulers_writes_a_sheet_and_prints_each_cells_time(tiny_model_dir, tmp_path):
    run = cli("compare-schedulers", "--model", tiny_model_dir, *TINY, "--schedulers", "ddim,Euler a",
              "--step-counts", "1,2", "--out", tmp_path / "grid.png")
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert [line.split(" · ")[:2] for line in lines[:4]] == [["DDIM", "1 steps"], ["Euler a", "1 steps"],
                                                           ["DDIM", "2 steps"], ["Euler a", "2 steps"]]
    assert all(line.endswith(" s") for line in lines[:4])
    assert Image.open(tmp_path / "grid.png").width > 2 * 64


def test_strength_sweep_reports_the_steps_each_strength_ran(tiny_model_dir, tmp_path):
    Image.new("RGB", (64, 64), "blue").save(tmp_path / "init.png")
    run = cli("strength-sweep", "--model", tiny_model_dir, *TINY, "--steps", 4, "--image", tmp_path / "init.png",
              "--strengths", "0.5,1", "--out", tmp_path / "sweep.png")
    assert run.returncode == 0, run.stderr
    assert "strength 0.5: 2 of 4 steps ran" in run.stdout and "strength 1: 4 of 4 steps ran" in run.stdout


def test_seed_interpolation_writes_a_strip_and_an_animation(tiny_model_dir, tmp_path):
    run = cli("seed-interpolation", "--model", tiny_model_dir, *TINY, "--steps", 2, "--seed", 3, "--seed-b", 4,
              "--frames", 3, "--out", tmp_path / "strip.png", "--gif", tmp_path / "walk.gif")
    assert run.returncode == 0, run.stderr
    assert Image.open(tmp_path / "walk.gif").n_frames == 4  # forward, then back
    assert "t=0.00 (seed 3)" in run.stdout and "t=1.00 (seed 4)" in run.stdout


def test_a_bad_comparison_request_exits_with_one_line(tiny_model_dir, tmp_path):
    """One through the CLI (each start costs seconds); test_compare.py has every bad value through the core."""
    run = cli("seed-interpolation", "--seed", 5, "--seed-b", 5, "--model", tiny_model_dir, *TINY, "--out", tmp_path / "x.png")
    assert run.returncode == 2 and "both 5" in run.stderr and "Traceback" not in run.stderr, run.stderr
    assert len(run.stderr.strip().splitlines()) == 1
