"""The real server (python app.py, shipped model) driven through its API with gradio_client."""
import urllib.error
import urllib.request

import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from diffusion_core import GenerationParams
from diffusion_core.schedulers import LABELS, canonical_name
from tests.app_server import ROOT, running_app

EXAMPLE = ROOT / "assets" / "examples" / "red_circle_on_blue.png"


@pytest.fixture(scope="module")
def app_url():
    with running_app() as url:
        yield url


@pytest.fixture(scope="module")
def client(app_url):
    return Client(app_url, verbose=False)


def png_params(item) -> GenerationParams:
    image = Image.open(item["image"])
    assert image.format == "PNG"
    return GenerationParams.from_png_text(image.info["parameters"])


def test_txt2img_needs_only_a_prompt(client):
    preview, status, gallery = client.predict(prompt="a red circle", api_name="/txt2img")
    assert len(gallery) == 1 and "manual engine" in status
    params = png_params(gallery[0])
    assert (params.prompt, params.width, params.height) == ("a red circle", 128, 128)
    assert Image.open(gallery[0]["image"]).size == (128, 128)


def test_txt2img_several_images_use_consecutive_seeds(client):
    _, _, gallery = client.predict(prompt="a blue square", num_images=3, seed=40, steps=10, api_name="/txt2img")
    assert [png_params(item).seed for item in gallery] == [40, 41, 42]


@pytest.mark.parametrize("live_preview, says_linear", [("auto", False), ("linear approximation (cheap)", True)])
def test_live_preview_streams_each_kept_step_with_the_chosen_decoder(client, live_preview, says_linear):
    job = client.submit(prompt="a red circle", steps=8, preview_every=2, live_preview=live_preview,
                        api_name="/txt2img")
    job.result()
    step_texts = [status for _, status, _ in job.outputs() if status.startswith("step ")]
    assert [text.split(",")[0] for text in step_texts] == ["step 1/8", "step 3/8", "step 5/8", "step 7/8", "step 8/8"]
    assert all(("cheap linear preview" in text) == says_linear for text in step_texts)


def test_guidance_grid_returns_a_labelled_grid_and_nine_cells(client):
    grid, cells, status, plot, table = client.predict(prompt="a yellow star", steps=10, api_name="/guidance_grid")
    assert len(cells) == 9 and len(table["data"]) == 9  # and the measurements under the grid (test_app_api_compare.py)
    assert [png_params(c).guidance for c in cells] == [0.25, 0.5, 1, 2, 4, 6, 8, 10, 20]
    assert len({png_params(c).seed for c in cells}) == 1
    sheet = Image.open(grid)
    assert sheet.width == 3 * 128 and sheet.height > 3 * 128


def test_negative_prompt_shows_pairs_with_the_same_seeds(client):
    without, with_negative, status = client.predict(prompt="a circle", negative_prompt="red", num_images=3,
                                                    steps=10, api_name="/negative_prompt")
    assert len(without) == len(with_negative) == 3
    assert [png_params(i).seed for i in without] == [png_params(i).seed for i in with_negative]
    assert all(png_params(i).negative_prompt == "red" for i in with_negative)


def test_image_variation_reports_the_steps_that_ran(client):
    gallery, status = client.predict(init_image=handle_file(str(EXAMPLE)), prompt="a green circle on a blue background",
                                     strength=0.6, num_images=2, steps=25, api_name="/image_variation")
    assert len(gallery) == 2
    assert "15 of 25 requested steps ran" in status
    assert png_params(gallery[0]).strength == 0.6


@pytest.mark.parametrize("label", list(LABELS.values()))
def test_every_scheduler_makes_an_image_through_the_api(client, label):
    """All six on a fresh install: LMS needs scipy, which only requirements.txt brings."""
    _, status, gallery = client.predict(prompt="a red circle", scheduler=label, steps=5, api_name="/txt2img")
    assert len(gallery) == 1 and "manual engine" in status
    assert png_params(gallery[0]).scheduler == canonical_name(label)


@pytest.mark.parametrize("arguments, message", [
    # Sliders' own range checks answer first, in gradio's words; the core's checks answer the rest.
    (dict(steps=0), "less than minimum value 1"), (dict(width=100), "multiple of 8"),
    (dict(guidance=-1), "less than minimum value 0"), (dict(scheduler="nope"), "Unknown scheduler|not in the list"),
    (dict(num_images=1000), "greater than maximum value 16"), (dict(seed=-5), "Seed|minimum"),
    (dict(live_preview="taesd"), "not in the list|Live preview"),
])
def test_bad_input_gets_a_clear_message_and_the_server_keeps_serving(client, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(prompt="a red circle", **arguments, api_name="/txt2img")
    assert len(client.predict(prompt="a red circle", steps=2, api_name="/txt2img")[2]) == 1


def test_unknown_model_keeps_the_previous_one(client):
    with pytest.raises(AppError, match="previous model is still loaded"):
        client.predict("nobody/no-such-model", api_name="/load_model")
    with pytest.raises(AppError, match="outside the allowed"):
        client.predict("/etc", api_name="/load_model")
    assert len(client.predict(prompt="a red circle", steps=2, api_name="/txt2img")[2]) == 1


@pytest.mark.parametrize("path", ["/etc/passwd", str(ROOT / "app.py"), str(ROOT / "assets/shapes-sd/unet/config.json")])
def test_file_routes_serve_nothing_outside_what_they_must(app_url, path):
    for route in ("gradio_api/file=", "file="):
        try:
            with urllib.request.urlopen(f"{app_url}{route}{path}", timeout=10) as response:
                body = response.read()
                assert b"root:" not in body and b"import" not in body and response.status != 200
        except urllib.error.HTTPError as error:
            assert error.code in (403, 404)
