"""Untrusted init images through the real API: each gets a clear message or a sane correction."""
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_server import running_app


@pytest.fixture(scope="module")
def client():
    with running_app() as url:
        yield Client(url, verbose=False)


def make_images(folder):
    base = Image.new("RGB", (96, 80), (220, 40, 40))
    files = {}
    files["rgba"] = folder / "rgba.png"; base.convert("RGBA").save(files["rgba"])
    files["greyscale"] = folder / "grey.png"; base.convert("L").save(files["greyscale"])
    files["palette"] = folder / "palette.png"; base.convert("P").save(files["palette"])
    files["16-bit"] = folder / "sixteen.png"; base.convert("L").point(lambda v: v * 256).convert("I;16").save(files["16-bit"])
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue", "green")]
    files["animated gif"] = folder / "anim.gif"
    frames[0].save(files["animated gif"], save_all=True, append_images=frames[1:], duration=100, loop=0)
    return files


def vary(client, path, **extra):
    return client.predict(init_image=handle_file(str(path)), prompt="a green circle on a blue background",
                          num_images=1, steps=5, **extra, api_name="/image_variation")


def test_unusual_but_valid_images_are_converted_and_run(client, tmp_path):
    for kind, path in make_images(tmp_path).items():
        gallery, status = vary(client, path)
        assert len(gallery) == 1, kind
        image = Image.open(gallery[0]["image"])
        assert image.mode == "RGB" and image.size == (128, 128), kind


@pytest.mark.parametrize("kind", ["corrupt bytes", "text renamed .png"])
def test_unreadable_files_get_a_clear_message(client, tmp_path, kind):
    path = tmp_path / "bad.png"
    path.write_bytes(b"\x89PNG\r\n\x1a\n garbage" if kind == "corrupt bytes" else b"just some text\n")
    with pytest.raises(AppError) as error:
        vary(client, path)
    assert "Traceback" not in str(error.value)
    assert len(vary(client, make_images(tmp_path)["rgba"])[0]) == 1  # still serving


def test_a_decompression_bomb_is_refused(client, tmp_path):
    path = tmp_path / "huge.png"
    Image.new("L", (10_000, 10_000)).save(path, optimize=False)
    with pytest.raises(AppError, match="megapixels|too large|decompression|exceeds"):
        vary(client, path)
    assert len(vary(client, make_images(tmp_path)["rgba"])[0]) == 1
