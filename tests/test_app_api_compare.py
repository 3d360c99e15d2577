"""The comparison endpoints of the real server (python app.py, shipped model), driven with gradio_client."""
import pytest
from gradio_client import Client, handle_file
from gradio_client.exceptions import AppError
from PIL import Image

from diffusion_core.compare.guidance_effect import COLUMNS
from tests.app_server import ROOT, running_app
from tests.test_app_api import png_params

EXAMPLE = ROOT / "assets" / "examples" / "red_circle_on_blue.png"


@pytest.fixture(scope="module")
def client():
    with running_app() as url:
        yield Client(url, verbose=False)


def test_compare_schedulers_returns_one_timed_cell_per_scheduler_and_step_count(client):
    sheet, cells, status = client.predict(prompt="a red circle", schedulers=["DDIM", "PNDM"], step_counts="2, 4",
                                          api_name="/compare_schedulers")
    assert [c["caption"].split(" · ")[:2] for c in cells] == [["DDIM", "2 steps"], ["PNDM", "2 steps"],
                                                            ["DDIM", "4 steps"], ["PNDM", "4 steps"]]
    assert all(c["caption"].endswith(" s") for c in cells) and "4 cells" in status
    assert [(png_params(c).scheduler, png_params(c).steps) for c in cells] == [
        ("ddim", 2), ("pndm", 2), ("ddim", 4), ("pndm", 4)]
    assert Image.open(sheet).width > 2 * 128


def test_strength_sweep_says_how_many_steps_each_strength_ran(client):
    sheet, cells, status = client.predict(init_image=handle_file(str(EXAMPLE)), prompt="a green circle on a blue background",
                                          strengths="0.2, 0.6, 1", steps=10, api_name="/strength_sweep")
    assert [c["caption"] for c in cells] == ["strength 0.2: 2 of 10 steps ran", "strength 0.6: 6 of 10 steps ran",
                                             "strength 1: 10 of 10 steps ran"]
    assert [png_params(c).strength for c in cells] == [0.2, 0.6, 1.0]
    assert Image.open(sheet).height > 2 * 128  # noised inits above, results below


def test_seed_interpolation_returns_a_strip_an_animation_and_the_frames(client):
    strip, animation, frames, status = client.predict(prompt="a yellow star", seed=193, seed_b=7, frames=4, steps=10,
                                                      api_name="/seed_interpolation")
    assert len(frames) == 4 and [png_params(f).seed for f in frames] == [193, 193, 7, 7]  # the nearer seed
    assert Image.open(animation).format == "GIF" and Image.open(animation).n_frames == 6
    assert Image.open(strip).width >= 4 * 128


def test_guidance_grid_returns_its_plot_data(client):
    _, cells, _, plot, table = client.predict(prompt="a yellow star on a purple background", guidance_values="1, 4, 12",
                                              steps=10, api_name="/guidance_grid")
    assert table["headers"] == COLUMNS and len(table["data"]) == len(cells) == 3
    guidance_1 = table["data"][0]
    assert guidance_1[0] == 1 and guidance_1[3] == 0  # distance of the reference to itself
    assert all(row[5].startswith("reads: ") for row in table["data"])  # the shapes model: the classifier's verdict
    assert plot is not None


@pytest.mark.parametrize("endpoint, arguments, message", [
    ("/seed_interpolation", dict(prompt="x", seed=5, seed_b=5), "both 5"),
    ("/strength_sweep", dict(init_image=handle_file(str(EXAMPLE)), prompt="x", strengths="0.5, 2"), "at most 1"),
    ("/strength_sweep", dict(init_image=handle_file(str(EXAMPLE)), prompt="x", strengths="0.5, half"), "must be numbers"),
    ("/compare_schedulers", dict(prompt="x", step_counts="1, 2, 3, 4, 5, 6, 7"), "at most 36"),
    ("/guidance_grid", dict(prompt="x", guidance_values=", ".join(str(g) for g in range(2, 18))), "include 1"),
])
def test_bad_comparison_requests_get_a_clear_message_and_the_server_keeps_serving(client, endpoint, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(**arguments, api_name=endpoint)
    assert len(client.predict(prompt="a red circle", steps=2, api_name="/txt2img")[2]) == 1
