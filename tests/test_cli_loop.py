"""`python -m diffusion_core loop`: one run's filmstrip, GIF, MP4, schedule chart and per-step attention overlays,
as a real subprocess."""
import av
from PIL import Image

from tests.test_cli import cli


def test_loop_writes_the_strip_the_animation_and_the_video(tiny_model_dir, tmp_path):
    run = cli("loop", "--model", tiny_model_dir, "--prompt", "a red circle", "--steps", 9, "--size", "64x64",
              "--scheduler", "euler", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["attention", "every-step.mp4", "filmstrip.gif",
                                                         "filmstrip.png", "result.png", "schedule.png"]
    strip = Image.open(tmp_path / "filmstrip.png")
    assert len(strip.info["filmstrip"].splitlines()) == 9  # every 9 // 8 = 1 step
    assert Image.open(tmp_path / "filmstrip.gif").n_frames == 9
    with av.open(str(tmp_path / "every-step.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 9



def test_loop_writes_each_steps_attention_overlay_and_says_when_it_cannot(tiny_model_dir, tmp_path):
    common = ("--model", tiny_model_dir, "--prompt", "a red circle", "--steps", 9, "--size", "64x64",
              "--scheduler", "euler")
    run = cli("loop", *common, "--out", tmp_path / "on")
    assert run.returncode == 0, run.stderr
    overlays = sorted((tmp_path / "on" / "attention").iterdir())
    assert [p.name for p in overlays] == [f"step-{k}.png" for k in range(1, 10)]
    assert Image.open(overlays[0]).tobytes() != Image.open(overlays[-1]).tobytes()  # the attention moves
    assert "each step's attention overlay" in run.stdout
    off = cli("loop", *common, "--no-attention", "--out", tmp_path / "off")
    assert off.returncode == 0 and not (tmp_path / "off" / "attention").exists() and off.stderr == ""
    pipeline = cli("loop", *common, "--engine", "pipeline", "--out", tmp_path / "pipeline")
    assert pipeline.returncode == 0, pipeline.stderr
    assert "pipeline engine records no attention maps" in pipeline.stderr and "Traceback" not in pipeline.stderr
    assert not (tmp_path / "pipeline" / "attention").exists()
