"""A run's history and its views: per-scheduler x0, the CFG recombination, decodes that match the result,
the filmstrip's and animations' frames, and the limits (byte cap, step range, stored runs, model)."""
from dataclasses import replace

import av
import numpy as np
import pytest
import torch
from PIL import Image

from diffusion_core import GenerationParams, InvalidRequest, generate
from diffusion_core import history as history_module
from diffusion_core import history_plot, history_views, prompts, sampling, unet_trace
from diffusion_core.history import HistoryStore, Recorder, kept_indices
from diffusion_core.schedule import schedule_for
from diffusion_core.schedulers import SCHEDULER_NAMES, make_scheduler

PARAMS = GenerationParams(prompt="a red circle", negative_prompt="blue", scheduler="dpm++2m", steps=6, guidance=5.0, width=64,
                          height=64, seed=3)


def recorded_run(model, params=PARAMS, every=1):
    recorder = Recorder(model, params, every=every)
    result = generate(model, params, on_step=recorder)
    recorder.history.engine = result.engine
    return result, recorder.history


def own_loop(model, name, prediction_type, steps=5, guidance=4.0):
    """Our denoise over the tiny model with a scheduler we hold, yielding (StepInfo, scheduler) per step."""
    config = {**model.scheduler.config, "prediction_type": prediction_type}
    scheduler = make_scheduler(name, config)
    scheduler.set_timesteps(steps)
    text, uncond = prompts.encode(model.tokenizer, model.text_encoder, ["a red circle", ""]).chunk(2)
    generators = [torch.Generator().manual_seed(0)]
    latents = sampling.initial_noise(generators, (4, 8, 8), "cpu", text.dtype) * scheduler.init_noise_sigma
    seen = []

    def on_step(info):  # DPM-Solver keeps its converted x0 as the last model output
        dpm_x0 = scheduler.model_outputs[-1].clone() if hasattr(scheduler, "model_outputs") else None
        seen.append((info, dpm_x0))

    sampling.denoise(unet_trace.noise_predictor(model.unet), scheduler, latents, scheduler.timesteps, text, uncond,
                     torch.tensor([guidance]), generators, on_step)
    fake_model = type("M", (), {"scheduler": type("S", (), {"config": config})()})()
    return seen, schedule_for(fake_model, name, steps)


@pytest.mark.parametrize("prediction_type", ["epsilon", "v_prediction"])
@pytest.mark.parametrize("name", SCHEDULER_NAMES)
def test_guided_x0_matches_the_schedulers_own_prediction(tiny_model, name, prediction_type):
    seen, schedule = own_loop(tiny_model, name, prediction_type)
    assert schedule.total == len(seen)
    for info, dpm_x0 in seen:
        guided = info.noise_uncond + 4.0 * (info.noise_text - info.noise_uncond)
        ours = schedule.x0(info.index, info.sample, guided)
        if info.predicted_x0 is not None:  # DDIM, Euler, Euler a, LMS
            reference = info.predicted_x0
        elif dpm_x0 is not None:  # DPM-Solver++: its converted model output is x0
            reference = dpm_x0
        else:  # PNDM gives none; DDIM's x0 at the same timestep uses the same ᾱ
            ddim = make_scheduler("ddim", {**tiny_model.scheduler.config, "prediction_type": prediction_type})
            ddim.set_timesteps(5)
            reference = ddim.step(guided, info.timestep, info.sample).pred_original_sample
        torch.testing.assert_close(ours, reference, rtol=1e-4, atol=1e-5)


def test_guided_x0_is_the_branches_recombined(tiny_model):
    _, history = recorded_run(tiny_model)
    for step in history.steps.values():
        uncond, text = history.x0(step, "uncond"), history.x0(step, "text")
        torch.testing.assert_close(history.x0(step, "guided"), uncond + PARAMS.guidance * (text - uncond),
                                   rtol=1e-4, atol=1e-5)


def test_last_recorded_x_t_decodes_to_exactly_the_returned_image(tiny_model):
    result, history = recorded_run(tiny_model)
    last = history.step(history.total)
    assert np.array_equal(np.asarray(history_views.decoded(tiny_model, history, last)), np.asarray(result.images[0]))


def test_a_batch_keeps_only_its_first_image(tiny_model):
    result, history = recorded_run(tiny_model, replace(PARAMS, num_images=2))
    last = history.step(history.total)
    assert last.latents.shape == (4, 8, 8) and last.latents.dtype == torch.float32
    decoded = np.asarray(history_views.decoded(tiny_model, history, last), np.int16)
    # The batch was decoded two at a time, whose convolutions round a little differently from one at a time.
    assert np.abs(decoded - np.asarray(result.images[0], np.int16)).max() <= 2
    assert np.abs(decoded - np.asarray(result.images[1], np.int16)).max() > 20


def test_each_step_starts_from_the_previous_steps_latents_stored_once(tiny_model):
    _, history = recorded_run(tiny_model)
    for index in range(1, history.total):
        assert history.steps[index].sample is history.steps[index - 1].latents
    assert history.nbytes() == 4 * 4 * 8 * 8 * (3 * history.total + 1)


def test_filmstrip_gif_and_video_have_one_frame_per_kept_step(tiny_model, tmp_path):
    _, history = recorded_run(tiny_model, replace(PARAMS, steps=17))
    kept = history_views.strip_indices(history)  # every 17 // 8 = 2 steps, and the last
    assert [i + 1 for i in kept] == [1, 3, 5, 7, 9, 11, 13, 15, 17]
    strip = history_views.filmstrip(tiny_model, history)
    assert strip.size == (92 + 9 * 64, 2 * 64 + 30)
    assert strip.info["filmstrip"].splitlines()[1].startswith("step 3/17 t ")
    assert Image.open(history_views.animation_gif(tiny_model, history, tmp_path / "a.gif")).n_frames == 9
    with av.open(str(history_views.video_mp4(tiny_model, history, tmp_path / "a.mp4"))) as video:
        assert sum(1 for _ in video.decode(video=0)) == 17
    assert len(history_views.step_gallery(tiny_model, history)) == 17


def test_every_k_recording_keeps_only_the_strips_steps(tiny_model):
    _, history = recorded_run(tiny_model, replace(PARAMS, steps=10), every=3)
    assert sorted(history.steps) == kept_indices(10, 3) == [0, 3, 6, 9]
    with pytest.raises(InvalidRequest, match="was not kept"):
        history.step(2)
    assert history.x0(history.step(4), "guided") is not None  # its own start x_t was kept


def test_anatomy_explains_the_blend_and_guidance_one_says_there_is_no_branch(tiny_model):
    _, history = recorded_run(tiny_model)
    anatomy = history_views.anatomy(tiny_model, history, 3)
    assert all(image.size == (64, 64) for image in anatomy.images.values()) and anatomy.heat_map.size == (64, 64)
    assert "g = 5" in anatomy.explanation and "negative prompt “blue”" in anatomy.explanation
    _, plain = recorded_run(tiny_model, replace(PARAMS, guidance=1))
    anatomy = history_views.anatomy(tiny_model, plain, 3)
    assert anatomy.images["uncond"] is None and anatomy.heat_map is None
    assert "no unconditional branch" in anatomy.explanation


def test_schedule_rows_and_chart(tiny_model):
    _, history = recorded_run(tiny_model)
    rows = history_plot.schedule_rows(history)
    assert [r["step"] for r in rows] == list(range(1, history.total + 1))
    assert all(r["sigma"] > 0 and abs(r["snr"] - 1 / r["sigma"] ** 2) < 1e-6 * r["snr"] for r in rows)
    assert all(a["sigma"] > b["sigma"] for a, b in zip(rows, rows[1:]))  # noise falls step by step
    assert history_plot.schedule_chart(history, 2).size == (640, 340)


def test_a_step_out_of_range_is_refused(tiny_model):
    _, history = recorded_run(tiny_model)
    for bad in (0, history.total + 1, -1, "x"):
        with pytest.raises(InvalidRequest, match="Step must be"):
            history.step(bad)


def test_a_history_that_would_not_fit_is_refused_before_the_run(tiny_model, monkeypatch):
    monkeypatch.setattr(history_module, "MAX_HISTORY_BYTES", 4 * 4 * 8 * 8 * 31)  # 10 steps' worth
    with pytest.raises(InvalidRequest, match="at most 10 steps at this size"):
        Recorder(tiny_model, replace(PARAMS, steps=11))
    Recorder(tiny_model, replace(PARAMS, steps=10))


def test_store_keeps_the_last_runs_and_says_run_first(tiny_model):
    store = HistoryStore(max_runs=2)
    _, history = recorded_run(tiny_model)
    ids = [store.add(history) for _ in range(3)]
    (store.folder(ids[2]) / "f").write_text("x")
    with pytest.raises(InvalidRequest, match="Run first"):
        store.get(None)
    with pytest.raises(InvalidRequest, match="no longer kept"):
        store.get(ids[0])
    assert store.get(ids[1]) is history and len(store) == 2
    store.add(history), store.add(history)
    assert not (store._files / ids[2]).exists()  # a dropped run's files go with it


def test_a_history_from_another_model_is_refused(tiny_model):
    _, history = recorded_run(tiny_model)
    other = replace(tiny_model, fingerprint="another")
    with pytest.raises(InvalidRequest, match="loaded model has changed"):
        history.check_model(other)
    history.check_model(tiny_model)
