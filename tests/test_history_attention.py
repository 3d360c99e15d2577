"""A run's attention maps kept with its history (tiny random model): the scrubbed step's maps are attention_maps'
own, runs that cannot or did not capture say so, and bad choices get clear messages."""
from dataclasses import replace

import numpy as np
import pytest
import torch

from diffusion_core import GenerationParams, InvalidRequest, generate, history_views
from diffusion_core.attention_maps import attention_maps
from diffusion_core.history import Recorder
from diffusion_core.history_attention import (MAX_ATTENTION_BYTES, NOT_RECORDED, attention_summary, record_run,
                                              step_attention)

PARAMS = GenerationParams(prompt="a red circle", negative_prompt="blue", scheduler="dpm++2m", steps=6, guidance=5.0,
                          width=64, height=64, seed=3)


def recorded(model, params=PARAMS, attention=True):
    recorder = Recorder(model, params)
    result = record_run(model, recorder, attention=attention)
    return result, recorder.history


def same_picture(a, b) -> bool:
    return a.size == b.size and np.array_equal(np.asarray(a), np.asarray(b))


def test_scrubbed_steps_attention_is_attention_maps_own_map_of_that_step(tiny_model):
    _, history = recorded(tiny_model)
    reference = attention_maps(tiny_model, PARAMS)
    kept = history.attention
    assert kept.steps == history.total == reference.steps
    torch.testing.assert_close(kept.step_maps, reference.step_maps, rtol=0, atol=0)
    for number in (1, 4, history.total):
        shown = step_attention(history, number, "circle")
        index = number - 1
        assert same_picture(shown.overlay, reference.overlay_image(step=index))
        assert same_picture(shown.heat_map, reference.heat_map_image(reference.word_index("circle"), step=index))
        assert shown.word == "circle" and f"step {number}/{history.total}" in shown.note


def test_a_run_with_capture_keeps_every_step_and_its_last_x_t_decodes_to_the_image(tiny_model):
    result, history = recorded(tiny_model)
    assert history.engine == "manual" and sorted(history.steps) == list(range(history.total))
    last = history_views.decoded(tiny_model, history, history.step(history.total))
    assert same_picture(last, result.images[0]) and same_picture(history.attention.image, result.images[0])


def test_negative_prompt_words_are_kept_unless_guidance_is_one(tiny_model):
    _, history = recorded(tiny_model)
    assert step_attention(history, 2).words == ["a", "red", "circle", "blue (negative)"]
    assert step_attention(history, 2, "blue (negative)").word == "blue (negative)"
    _, at_one = recorded(tiny_model, replace(PARAMS, guidance=1.0))
    assert step_attention(at_one, 2).words == ["a", "red", "circle"]


def test_blank_word_picks_the_first_and_a_number_picks_by_position(tiny_model):
    _, history = recorded(tiny_model)
    assert step_attention(history, 3).word == "a" and step_attention(history, 3, "1").word == "red"


def test_a_run_without_capture_says_so_and_refuses_a_word(tiny_model):
    _, history = recorded(tiny_model, attention=False)
    assert history.attention is None and attention_summary(history) == NOT_RECORDED
    shown = step_attention(history, 2)
    assert shown.overlay is None and shown.heat_map is None and shown.words == []
    assert "kept no attention maps" in shown.note and "Record attention maps" in shown.note
    with pytest.raises(InvalidRequest, match="kept no attention maps; tick “Record attention maps” and run again"):
        step_attention(history, 2, "red")


def test_the_pipeline_engine_runs_without_capture_and_says_why(tiny_model):
    _, history = recorded(tiny_model, replace(PARAMS, engine="pipeline"))
    assert history.engine == "pipeline" and history.attention is None
    assert "pipeline engine records no attention maps" in attention_summary(history)
    assert "manual CFG loop" in step_attention(history, 1).note


def test_an_empty_prompt_runs_and_says_there_is_nothing_to_map(tiny_model):
    result, history = recorded(tiny_model, replace(PARAMS, prompt="", negative_prompt=""))
    assert len(result.images) == 1 and history.attention is None
    assert "no words to map" in step_attention(history, 1).note


@pytest.mark.parametrize("word, message", [("green", "'green' is not a word of the prompt. Its words are: a, red, "
                                                     "circle, blue \\(negative\\)"),
                                           ("9", "Word number 9 is out of range: there are 4 words")])
def test_a_word_not_in_the_prompt_gets_the_prompts_words(tiny_model, word, message):
    _, history = recorded(tiny_model)
    with pytest.raises(InvalidRequest, match=message):
        step_attention(history, 2, word)


@pytest.mark.parametrize("number", [0, 7, "x"])
def test_a_step_out_of_range_gets_the_runs_range(tiny_model, number):
    _, history = recorded(tiny_model)
    with pytest.raises(InvalidRequest, match="Step must be"):
        step_attention(history, number)


def test_maps_that_would_not_fit_are_refused_before_the_run(tiny_model):
    long = replace(PARAMS, prompt=" ".join(["a red circle"] * 20), negative_prompt="", steps=100, width=512,
                   height=512)  # 60 words x 100 steps x 64x64: 94 MiB of maps, 19 MiB of latents
    recorder = Recorder(tiny_model, long)
    seen = []
    recorder.then = seen.append
    with pytest.raises(InvalidRequest, match=f"at most {MAX_ATTENTION_BYTES // 2**20} MiB of them.*untick"):
        record_run(tiny_model, recorder)
    assert seen == []  # not a single step ran
    quick = replace(long, steps=2, width=64, height=64)
    assert len(generate(tiny_model, quick).images) == 1
