"""Cross-attention capture on tiny random models: outputs unchanged, processors restored, maps placed right."""
import threading

import numpy as np
import pytest
import torch
from diffusers import UNet2DConditionModel

from diffusion_core import GenerationParams, InvalidRequest, generate, unet_trace
from diffusion_core.attention import AttentionCapture, RecordingProcessor, capturing_attention
from diffusion_core.attention_maps import attention_maps, prompt_words

TOLERANCE = 1e-5  # float32 rounding of the same arithmetic in another order (SDPA vs explicit softmax)


def sd2_style_unet():
    """SD 2.x's attention options in a tiny UNet: linear projections, per-level head sizes, upcast
    attention, cross-attention at two resolutions (so maps are upsampled)."""
    torch.manual_seed(1)
    return UNet2DConditionModel(
        sample_size=16, in_channels=4, out_channels=4, block_out_channels=(32, 64, 64), layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"), cross_attention_dim=32,
        attention_head_dim=(2, 4, 4), use_linear_projection=True, upcast_attention=True, norm_num_groups=16).eval()


@pytest.fixture(params=["sd1-tiny", "sd2-style"])
def unet(request, tiny_model):
    return tiny_model.unet if request.param == "sd1-tiny" else sd2_style_unet()


def inputs(size=16):
    generator = torch.Generator().manual_seed(size)
    return torch.randn(2, 4, size, size, generator=generator), torch.randn(2, 77, 32, generator=generator)


def test_capture_leaves_the_unets_prediction_unchanged_and_restores_its_processors(unet):
    sample, embeddings = inputs()
    before = unet.attn_processors
    with torch.no_grad():
        plain = unet(sample, 400, encoder_hidden_states=embeddings).sample
        with capturing_attention(unet, tokens=5) as capture:
            recording = unet_trace.noise_predictor(unet)
            assert recording is capture  # the eager call, not the trace
            assert any(isinstance(p, RecordingProcessor) for p in unet.attn_processors.values())
            captured = recording(sample, torch.tensor(400), embeddings)
    assert torch.allclose(captured, plain, rtol=TOLERANCE, atol=TOLERANCE), (captured - plain).abs().max()
    after = unet.attn_processors
    assert after.keys() == before.keys() and all(after[name] is before[name] for name in before)
    assert [m.shape for m in capture.step_maps] == [(2, 5, 16, 16)]  # rows, tokens kept, latent size
    assert capture.layers_recorded == sum(name.endswith("attn2.processor") for name in before)
    # each layer's map is a softmax over 77 keys averaged over heads: the kept 5 hold some of it, not more
    total = capture.step_maps[0].sum(1)
    assert (total > 0).all() and (total <= 1 + 1e-3).all()


def test_processors_come_back_when_the_generation_fails(tiny_model):
    before = tiny_model.unet.attn_processors
    with pytest.raises(RuntimeError, match="stop"):
        with capturing_attention(tiny_model.unet):
            raise RuntimeError("stop")
    assert all(tiny_model.unet.attn_processors[name] is p for name, p in before.items())
    assert unet_trace.noise_predictor(tiny_model.unet) is not None
    assert not isinstance(unet_trace.noise_predictor(tiny_model.unet), AttentionCapture)


def test_other_threads_keep_their_traced_call_while_one_captures(tiny_model):
    seen = {}
    with capturing_attention(tiny_model.unet):
        worker = threading.Thread(target=lambda: seen.update(other=unet_trace.noise_predictor(tiny_model.unet)))
        worker.start()
        worker.join()
    assert isinstance(seen["other"], unet_trace.TracedNoisePredictor)


def test_a_recorded_map_puts_each_query_where_it_is_in_the_image():
    """Queries are the layer's pixels in row-major order; an 8x8 map is upsampled to the 16x16 latent."""
    capture = AttentionCapture(unet=None, tokens=4)
    capture._latent_size = (16, 16)
    probabilities = torch.full((2 * 3, 64, 77), 1e-4)  # 2 rows, 3 heads, 8x8 queries
    probabilities[3:, 2 * 8 + 5, 3] = 1.0  # row 1, every head: the pixel at (2, 5) looks at token 3
    capture.record(probabilities, heads=3)
    token_map = capture._sum[1, 3]
    peak = np.unravel_index(int(token_map.argmax()), token_map.shape)
    assert peak[0] in (4, 5) and peak[1] in (10, 11)  # (2, 5) of 8x8 is (4.5, 10.5) of 16x16
    assert capture._sum[0, 3].max() < 1e-3  # row 0 did not look there


def test_words_sum_their_sub_tokens_and_leave_out_start_end_and_padding(tiny_model):
    tokenizer = tiny_model.tokenizer
    words = prompt_words(tokenizer, "a red square, a circle", "prompt")
    assert [w.label for w in words] == ["a", "red", "square,", "a (2)", "circle"]
    square = tokenizer("square,", add_special_tokens=False).input_ids
    assert len(words[2].positions) == len(square) > 1  # one word, several CLIP tokens
    ids = tokenizer("a red square, a circle").input_ids
    assert [p for w in words for p in w.positions] == list(range(1, len(ids) - 1))  # not 0 (start) nor the end
    assert prompt_words(tokenizer, "   ", "prompt") == []
    long = prompt_words(tokenizer, " ".join(["red"] * 80), "negative")
    assert len(long) == 75 and long[-1].positions == (75,) and long[0].label == "red (negative)"


@pytest.fixture(scope="module")
def tiny_maps(tiny_model):
    params = GenerationParams(prompt="a red circle", negative_prompt="blue", seed=2, steps=3, width=64, height=64)
    return params, attention_maps(tiny_model, params)


def test_attention_maps_hold_every_step_for_prompt_and_negative_words(tiny_model, tiny_maps):
    params, maps = tiny_maps
    assert [w.label for w in maps.words] == ["a", "red", "circle", "blue (negative)"]
    assert maps.step_maps.shape == (4, 4, 8, 8)  # PNDM runs steps + 1 UNet calls: one map per call
    assert maps.heat_map(1).shape == (64, 64) and (maps.heat_map(1, step=2) >= 0).all()
    assert maps.overlay_image().width == maps.heat_map_image(3).width == 256  # drawn at a readable size
    plain = generate(tiny_model, params).images[0]
    assert np.abs(np.asarray(plain, int) - np.asarray(maps.image, int)).max() <= 1  # capture changes no pixel


def test_with_guidance_1_there_is_no_negative_branch_to_map(tiny_model):
    maps = attention_maps(tiny_model, GenerationParams(prompt="red", negative_prompt="blue", guidance=1, steps=1,
                                                       width=64, height=64))
    assert [w.label for w in maps.words] == ["red"] and "negative prompt is not used" in maps.notes[-1]


def test_bad_choices_get_messages_that_say_what_to_pick(tiny_model, tiny_maps):
    _, maps = tiny_maps
    assert maps.word_index("circle") == 2 and maps.word_index("3") == 3 and maps.word_index("") == 0
    assert maps.step_index(0) is None and maps.step_index(0.0) is None and maps.step_index("4") == 3
    for call, message in ((lambda: maps.word_index(7), "out of range: there are 4 words"),
                          (lambda: maps.word_index("square"), "not a word of the prompt"),
                          (lambda: maps.step_index(9), "Step 9 is out of range"),
                          (lambda: maps.step_index("x"), "whole number"),
                          (lambda: maps.step_index(float("inf")), "whole number"),
                          (lambda: maps.step_index(1.5), "whole number")):
        with pytest.raises(InvalidRequest, match=message):
            call()
    with pytest.raises(InvalidRequest, match="no words to map"):
        attention_maps(tiny_model, GenerationParams(prompt="", steps=1, width=64, height=64))


def test_each_steps_map_is_there_when_its_step_callback_runs(tiny_model):
    """What a per-step view (the loop's history) relies on: step k's map exists at StepInfo.index k."""
    seen = []
    params = GenerationParams(prompt="a red circle", steps=2, width=64, height=64)
    with capturing_attention(tiny_model.unet, tokens=4) as capture:
        generate(tiny_model, params, on_step=lambda step: seen.append((step.index, len(capture.step_maps))))
    assert seen == [(0, 1), (1, 2), (2, 3)]  # PNDM: 3 UNet calls for 2 steps
