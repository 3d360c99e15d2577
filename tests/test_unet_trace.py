"""The traced UNet call must predict exactly what the UNet does, and never stand in the way."""
import gc

import pytest
import torch

from diffusion_core import unet_trace


@pytest.fixture
def unet(tiny_model):
    return tiny_model.unet


def inputs(batch, size=8):
    generator = torch.Generator().manual_seed(batch * 100 + size)
    return (torch.randn(batch, 4, size, size, generator=generator),
            torch.randn(batch, 77, 32, generator=generator))


def eager_noise(unet, sample, timestep, embeddings):
    with torch.no_grad():
        return unet(sample, timestep, encoder_hidden_states=embeddings).sample


@pytest.mark.parametrize("batch, size", [(2, 8), (1, 8), (4, 12)])
def test_traced_prediction_equals_the_unets_at_every_timestep(unet, batch, size):
    predict = unet_trace.noise_predictor(unet)
    sample, embeddings = inputs(batch, size)
    with torch.no_grad():
        for t in (torch.tensor(999), torch.tensor(500), torch.tensor(1), torch.tensor(250.5)):
            assert torch.equal(predict(sample, t, embeddings), eager_noise(unet, sample, t, embeddings))
    assert predict.traces  # the calls went through a trace, not the eager fallback
    assert unet_trace.EAGER not in predict.traces.values()


def test_one_trace_per_input_signature(unet):
    predict = unet_trace.noise_predictor(unet)
    predict.traces.clear()
    sample, embeddings = inputs(2)
    with torch.no_grad():
        for t in range(900, 0, -100):
            predict(sample, torch.tensor(t), embeddings)
        assert len(predict.traces) == 1
        predict(sample[:1], torch.tensor(5), embeddings[:1])  # guidance 1: the batch halves
        assert len(predict.traces) == 2
    assert unet_trace.noise_predictor(unet) is predict  # kept with the UNet, across requests


def test_a_failed_trace_falls_back_to_the_eager_unet(unet, monkeypatch):
    def no_tracer(*args, **kwargs):
        raise RuntimeError("this torch cannot trace")

    monkeypatch.setattr(torch.jit, "trace", no_tracer)
    predict = unet_trace.noise_predictor(unet)
    predict.traces.clear()
    sample, embeddings = inputs(3)
    with torch.no_grad():
        noise = predict(sample, torch.tensor(400), embeddings)
    assert list(predict.traces.values()) == [unet_trace.EAGER]
    assert torch.equal(noise, eager_noise(unet, sample, torch.tensor(400), embeddings))


def test_switched_off_the_unet_runs_eagerly(unet, monkeypatch):
    monkeypatch.setattr(unet_trace, "ENABLED", False)
    assert isinstance(unet_trace.noise_predictor(unet), unet_trace.EagerNoisePredictor)


def fresh_unet(folder):
    """A UNet noise_predictor has not seen yet (it decides on a UNet's size once)."""
    from diffusers import UNet2DConditionModel

    return UNet2DConditionModel.from_pretrained(folder, subfolder="unet").eval()


def test_an_sd_sized_unet_runs_eagerly(tiny_model_dir, monkeypatch):
    unet = fresh_unet(tiny_model_dir)
    monkeypatch.setattr(unet_trace, "MAX_TRACED_PARAMETERS", unet.num_parameters() - 1)
    assert isinstance(unet_trace.noise_predictor(unet), unet_trace.EagerNoisePredictor)


def test_traces_do_not_keep_a_dropped_model_alive(tiny_model_dir):
    unet = fresh_unet(tiny_model_dir)
    sample, embeddings = inputs(2)
    with torch.no_grad():
        unet_trace.noise_predictor(unet)(sample, torch.tensor(10), embeddings)
    count = len(unet_trace._predictors)
    del unet
    gc.collect()
    assert len(unet_trace._predictors) == count - 1
