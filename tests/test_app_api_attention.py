"""The real server's /attention_maps endpoint (shipped model), driven with gradio_client."""
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_server import running_app


@pytest.fixture(scope="module")
def client():
    with running_app() as url:
        yield Client(url, verbose=False)


def words_of(legend) -> list[str]:
    """The legend comes as a component update: its words and their overlay colours."""
    assert set(legend["color_map"]) == {item["token"] for item in legend["value"]}
    return [item["token"] for item in legend["value"]]


def test_attention_maps_return_the_overlay_the_chosen_words_map_and_every_words_map(client):
    overlay, heat, gallery, legend, word, step, status, = client.predict(
        prompt="a red circle on a blue background", negative_prompt="green", word="circle", steps=10,
        api_name="/attention_maps")
    assert words_of(legend) == ["a", "red", "circle", "on", "a (2)", "blue", "background", "green (negative)"]
    assert word == "circle" and step == 0 and "manual engine" in status
    assert [item["caption"] for item in gallery] == words_of(legend)
    assert Image.open(heat).size == (256, 256)  # the 128x128 image drawn at twice the size
    assert Image.open(overlay).height > 256  # with the legend underneath


def test_one_steps_map_differs_from_all_steps_together(client):
    common = dict(prompt="a yellow square", word="square", steps=5, seed=4, api_name="/attention_maps")
    every_step = Image.open(client.predict(**common)[1])
    first_step = client.predict(**common, step=1)
    assert first_step[5] == 1
    assert Image.open(first_step[1]).tobytes() != every_step.tobytes()


@pytest.mark.parametrize("arguments, message", [
    (dict(prompt=""), "no words to map"),
    (dict(prompt="a red star", word="7"), "out of range: there are 3 words"),
    (dict(prompt="a red star", word="blue"), "not a word of the prompt"),
    (dict(prompt="a red star", steps=3, step=9), "Step 9 is out of range: this run has 3 steps"),
])
def test_bad_requests_get_a_clear_message_and_the_server_keeps_serving(client, arguments, message):
    with pytest.raises(AppError, match=message):
        client.predict(**arguments, api_name="/attention_maps")
    assert words_of(client.predict(prompt="a star", steps=2, api_name="/attention_maps")[3]) == ["a", "star"]
