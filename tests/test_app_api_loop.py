"""The Inside-the-loop tab's API on the real server (python app.py, shipped model) through gradio_client."""
import av
import pytest
from gradio_client import Client
from gradio_client.exceptions import AppError
from PIL import Image

from tests.app_server import running_app

STEPS = 25
STEP_VIEW = ["title", "xt", "x0", "cheap", "uncond", "text", "guided", "heat", "explanation", "chart", "channels",
             "table", "attention_overlay", "attention_word", "attention_heat", "attention_note"]
OUTPUTS = ["run_id", "scrubber", "status", "final", "strip", "gif", "video", "gallery", *STEP_VIEW]
WORDS = ["a", "red", "circle", "on", "a (2)", "blue", "background"]


@pytest.fixture(scope="module")
def app_url(tiny_model_dir):
    with pytest.MonkeyPatch.context() as patch:  # the server may load the tiny model too (another model)
        patch.setenv("DIFFUSION_MODEL_ROOTS", str(tiny_model_dir.parent))
        with running_app() as url:
            yield url


@pytest.fixture(scope="module")
def run(app_url):
    """One 25-step run at guidance 7.5, opened at step 10, and the client (its session holds the run)."""
    client = Client(app_url, verbose=False)
    values = client.predict(prompt="a red circle on a blue background", guidance=7.5, steps=STEPS, step=10,
                            api_name="/inside_the_loop")
    return client, dict(zip(OUTPUTS[1:], values))  # the run's id is session state, not an API output


def shown(output):
    """An output the page may hide comes back as gradio's update; its value (None when hidden)."""
    if isinstance(output, dict) and output.get("__type__") == "update":
        assert output["visible"] == (output["value"] is not None)
        return output["value"]
    return output


def frames_of(path) -> int:
    with av.open(path) as video:
        return sum(1 for _ in video.decode(video=0))


def test_run_returns_filmstrip_animation_video_gallery_and_schedule(run):
    _, out = run
    strip = Image.open(out["strip"])
    labels = strip.info["filmstrip"].splitlines()
    kept = [1, 4, 7, 10, 13, 16, 19, 22, 25]  # every 25 // 8 = 3 steps, and the last
    assert [label.split()[1] for label in labels] == [f"{k}/{STEPS}" for k in kept]
    assert all(" t " in label and " σ " in label for label in labels)
    assert strip.width == 92 + len(kept) * 128 and strip.height == 2 * 128 + 30  # x_t row, x0 row, labels
    assert Image.open(out["gif"]).n_frames == len(kept)
    assert frames_of(out["video"]) == STEPS
    assert len(out["gallery"]) == STEPS
    assert [row[0] for row in out["table"]["data"]] == list(range(1, STEPS + 1))
    assert Image.open(out["final"]).size == (128, 128)
    assert "manual engine" in out["status"] and "all 25 steps kept" in out["status"]


def test_run_opens_the_chosen_step_with_its_cfg_anatomy(run):
    _, out = run
    assert "Step 10 of 25" in out["title"]
    for name in ("xt", "x0", "cheap", "uncond", "text", "guided", "heat"):
        assert Image.open(shown(out[name])).size == (128, 128), name
    assert "g = 7.5" in out["explanation"] and "x̂0_uncond + g · (x̂0_text − x̂0_uncond)" in out["explanation"]
    assert len(out["channels"]) == 4
    assert Image.open(out["chart"]).width > 400


def test_scrubbing_shows_another_step_without_running(run):
    client, out = run
    view = client.predict(step=3, api_name="/inside_the_loop_step")
    assert "Step 3 of 25" in view[0]
    assert Image.open(view[1]).tobytes() == Image.open(out["gallery"][2]["image"]).tobytes()  # step 3's x_t
    last = client.predict(step=STEPS, api_name="/inside_the_loop_step")
    assert Image.open(last[1]).tobytes() == Image.open(out["final"]).tobytes()


# The run sets the slider's range to its steps, so gradio's own range check answers first.
@pytest.mark.parametrize("step, message", [(0, "less than minimum value 1"), (26, "greater than maximum value 25"),
                                           (-3, "less than minimum value 1")])
def test_a_step_out_of_range_gets_a_clear_message(run, step, message):
    client, _ = run
    with pytest.raises(AppError, match=message):
        client.predict(step=step, api_name="/inside_the_loop_step")
    assert "Step 2 of 25" in client.predict(step=2, api_name="/inside_the_loop_step")[0]


def test_scrubbing_before_any_run_says_run_first(app_url):
    with pytest.raises(AppError, match="Run first"):
        Client(app_url, verbose=False).predict(step=1, api_name="/inside_the_loop_step")


def test_guidance_one_says_there_is_no_unconditional_branch(app_url):
    client = Client(app_url, verbose=False)
    out = dict(zip(OUTPUTS[1:], client.predict(prompt="a red circle", guidance=1, steps=8,
                                               api_name="/inside_the_loop")))
    assert "no unconditional branch" in out["explanation"]
    assert shown(out["uncond"]) is None and shown(out["heat"]) is None
    assert Image.open(shown(out["text"])).size == (128, 128)


def test_pipeline_engine_keeps_x_t_and_says_it_has_no_branches(app_url):
    client = Client(app_url, verbose=False)
    out = dict(zip(OUTPUTS[1:], client.predict(prompt="a red circle", steps=8, engine="diffusers pipeline",
                                               api_name="/inside_the_loop")))
    assert "callback_on_step_end" in out["explanation"]
    assert shown(out["uncond"]) is None and shown(out["guided"]) is None and shown(out["x0"]) is None
    assert len(out["gallery"]) == 8 and frames_of(out["video"]) == 8
    assert Image.open(out["strip"]).height == 128 + 30  # the x_t row only
    assert "pipeline engine records no attention maps" in out["status"]
    assert shown(out["attention_overlay"]) is None and "choose the manual CFG loop" in out["attention_note"]


def test_a_run_too_big_to_keep_is_refused_before_it_starts_and_the_server_keeps_serving(app_url):
    client = Client(app_url, verbose=False)
    with pytest.raises(AppError, match=r"at most \d+ steps at this size"):
        client.predict(prompt="a red circle", steps=200, width=1024, height=1024, api_name="/inside_the_loop")
    with pytest.raises(AppError, match="between 1 and 8"):
        client.predict(prompt="a red circle", steps=8, step=9, api_name="/inside_the_loop")
    assert len(client.predict(prompt="a red circle", steps=2, api_name="/txt2img")[2]) == 1


def test_txt2img_keeps_its_outputs_and_draws_the_filmstrip_after(app_url):
    client = Client(app_url, verbose=False)
    preview, status, gallery = client.predict(prompt="a red circle", steps=16, api_name="/txt2img")
    assert len(gallery) == 1
    strip = Image.open(client.predict(api_name="/txt2img_filmstrip"))
    assert len(strip.info["filmstrip"].splitlines()) == 9  # every 16 // 8 = 2: steps 1, 3, ..., 15 and 16


def test_scrubbing_a_run_of_another_model_gets_a_clear_message(run, tiny_model_dir):
    client, _ = run
    client.predict(str(tiny_model_dir), api_name="/load_model")
    try:
        with pytest.raises(AppError, match="the loaded model has changed"):
            client.predict(step=3, api_name="/inside_the_loop_step")
    finally:
        client.predict("assets/shapes-sd", api_name="/load_model")
    assert "Step 3 of 25" in client.predict(step=3, api_name="/inside_the_loop_step")[0]


def test_run_returns_the_opened_steps_attention_overlay_and_first_words_map(run):
    _, out = run
    assert f"Attention maps of {len(WORDS)} words kept at every step" in out["status"]
    assert Image.open(shown(out["attention_overlay"])).height > 256  # the 128² image drawn at 256², legend under it
    assert Image.open(shown(out["attention_heat"])).size == (256, 256)
    word = out["attention_word"]
    assert shown(word) == "a" and word["choices"] == [[w, w] for w in WORDS]
    assert "step 10/25" in out["attention_note"]


def test_scrubbed_steps_attention_is_the_attention_tabs_map_of_that_step(run):
    client, _ = run
    view = dict(zip(STEP_VIEW, client.predict(step=3, word="circle", api_name="/inside_the_loop_step")))
    assert shown(view["attention_word"]) == "circle" and "step 3/25" in view["attention_note"]
    overlay, heat, *_ = client.predict(prompt="a red circle on a blue background", guidance=7.5, steps=STEPS,
                                       word="circle", step=3, api_name="/attention_maps")
    for ours, theirs in ((view["attention_overlay"], overlay), (view["attention_heat"], heat)):
        assert Image.open(shown(ours)).tobytes() == Image.open(theirs).tobytes()
    later = dict(zip(STEP_VIEW, client.predict(step=20, word="circle", api_name="/inside_the_loop_step")))
    assert Image.open(shown(later["attention_heat"])).tobytes() != Image.open(heat).tobytes()


@pytest.mark.parametrize("word, message", [("green", "'green' is not a word of the prompt. Its words are: a, red"),
                                           ("12", "Word number 12 is out of range: there are 7 words")])
def test_a_word_not_in_the_prompt_gets_a_clear_message(run, word, message):
    client, _ = run
    with pytest.raises(AppError, match=message):
        client.predict(step=3, word=word, api_name="/inside_the_loop_step")
    assert "Step 4 of 25" in client.predict(step=4, word="red", api_name="/inside_the_loop_step")[0]


def test_a_run_without_attention_says_so_and_a_word_asked_of_it_gets_the_same_message(app_url):
    client = Client(app_url, verbose=False)
    out = dict(zip(OUTPUTS[1:], client.predict(prompt="a red circle", steps=6, record_attention=False,
                                               api_name="/inside_the_loop")))
    message = "This run kept no attention maps; tick “Record attention maps” and run again."
    assert message in out["status"] and out["attention_note"] == message
    assert shown(out["attention_overlay"]) is None and shown(out["attention_heat"]) is None
    assert "Step 2 of 6" in client.predict(step=2, api_name="/inside_the_loop_step")[0]  # the rest scrubs as ever
    with pytest.raises(AppError, match="kept no attention maps; tick"):
        client.predict(step=2, word="red", api_name="/inside_the_loop_step")
