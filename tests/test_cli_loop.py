"""`python -m diffusion_core loop`: one run's filmstrip, GIF, MP4 and schedule chart, as a real subprocess."""
import av
from PIL import Image

from tests.test_cli import cli


def test_loop_writes_the_strip_the_animation_and_the_video(tiny_model_dir, tmp_path):
    run = cli("loop", "--model", tiny_model_dir, "--prompt", "a red circle", "--steps", 9, "--size", "64x64",
              "--scheduler", "euler", "--out", tmp_path)
    assert run.returncode == 0, run.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["every-step.mp4", "filmstrip.gif", "filmstrip.png",
                                                         "result.png", "schedule.png"]
    strip = Image.open(tmp_path / "filmstrip.png")
    assert len(strip.info["filmstrip"].splitlines()) == 9  # every 9 // 8 = 1 step
    assert Image.open(tmp_path / "filmstrip.gif").n_frames == 9
    with av.open(str(tmp_path / "every-step.mp4")) as video:
        assert sum(1 for _ in video.decode(video=0)) == 9

