"""The attention loss of the unet-attention stage: which words it supervises, its masks, and that it teaches."""
import math
import random
from pathlib import Path

import numpy as np
import torch
from diffusers.models.attention_processor import AttnProcessor2_0
from transformers import CLIPTokenizer

from diffusion_core import DEFAULT_MODEL
from training import attention_supervision as supervision
from training import model_configs, shapes_data, train
from training.attention_supervision import BACKGROUND, SHAPE

SCENE = shapes_data.ShapeScene("circle", "red", "blue", size=0.5, centre=(64.0, 64.0))


def test_words_that_name_a_region_are_supervised_and_the_rest_left_free():
    assert supervision.word_regions("a red circle on a blue background", SCENE) == [
        (2, SHAPE), (3, SHAPE), (6, BACKGROUND), (7, BACKGROUND)]
    assert supervision.word_regions("red on a blue background", SCENE) == [(1, SHAPE), (4, BACKGROUND), (5, BACKGROUND)]
    assert supervision.word_regions("a circle", SCENE) == [(2, SHAPE)]
    assert supervision.word_regions("", SCENE) == []


def test_every_caption_word_is_one_token_so_word_positions_are_token_positions():
    tokenizer = CLIPTokenizer.from_pretrained(f"{DEFAULT_MODEL}/tokenizer")
    rng = random.Random(0)
    for index in range(50):
        scene = shapes_data.sample(index)[2]
        caption = shapes_data.random_caption(scene, rng)
        ids = tokenizer(caption).input_ids
        assert len(ids) == len(caption.split()) + 2, caption  # start, one token a word, end
        for position, _ in supervision.word_regions(caption, scene):
            assert tokenizer.decode([ids[position]]).strip() == caption.split()[position - 1]


def test_shape_mask_covers_the_shapes_area_where_the_renderer_draws_it():
    mask = supervision.shape_mask(SCENE)
    radius = 0.5 * shapes_data.IMAGE_SIZE / 2
    assert abs(mask.sum().item() - math.pi * radius ** 2) / (math.pi * radius ** 2) < 0.01
    assert mask[64, 64] == 1 and mask[2, 2] == 0
    picture = torch.from_numpy(np.asarray(shapes_data.render(SCENE))).float()
    red = (picture[..., 0] > 150) & (picture[..., 2] < 120)  # the rendered circle's pixels
    assert ((mask > 0.5) == red).float().mean() > 0.99
    masks = supervision.region_masks([SCENE])
    assert masks.shape == (1, 2, 128, 128) and torch.allclose(masks.sum(1), torch.ones(1, 128, 128))


def test_recording_keeps_the_unets_output_and_hands_out_each_cross_attention_layers_probabilities():
    torch.manual_seed(0)
    unet = model_configs.make_unet()
    latents, text = torch.randn(2, 4, 16, 16), torch.randn(2, 77, model_configs.TEXT_HIDDEN)
    with torch.no_grad():
        plain = unet(latents, 500, encoder_hidden_states=text).sample
        tape = supervision.record_cross_attention(unet)
        recorded = unet(latents, 500, encoder_hidden_states=text).sample
    assert torch.allclose(plain, recorded, atol=1e-5)
    calls = tape.take()
    assert len(calls) == 4 and tape.take() == []  # down, mid and two up layers, all at 8x8
    for probabilities, heads in calls:
        assert heads == model_configs.UNET_HEADS and probabilities.shape == (2 * heads, 64, 77)
        assert torch.allclose(probabilities.sum(-1), torch.ones(2 * heads, 64))


def test_attention_loss_is_zero_for_maps_inside_their_regions_and_one_for_maps_outside():
    masks = supervision.region_masks([SCENE])
    coverage = masks[0, SHAPE].flatten()  # as the maps of one 128x128 layer
    probabilities = torch.zeros(1, 128 * 128, 77)
    probabilities[0, :, 3] = (coverage > 0.99).float()  # "circle": only on the shape
    probabilities[0, :, 7] = (coverage > 0.99).float()  # "background": on the shape (wrong)
    assert supervision.attention_loss([(probabilities, 1)], masks, [[(3, SHAPE)]]).item() < 1e-6
    assert supervision.attention_loss([(probabilities, 1)], masks, [[(7, BACKGROUND)]]).item() > 1 - 1e-6
    assert supervision.attention_loss([(probabilities, 1)], masks, [[]]).item() == 0  # an empty caption


def test_the_attention_loss_teaches_a_word_to_attend_to_its_region():
    torch.manual_seed(0)
    tokenizer = CLIPTokenizer.from_pretrained(f"{DEFAULT_MODEL}/tokenizer")
    unet, text_encoder = model_configs.make_unet(), model_configs.make_text_encoder(tokenizer)
    tape = supervision.record_cross_attention(unet)
    scenes = [shapes_data.sample(i)[2] for i in range(4)]
    captions = [shapes_data.full_caption(scene) for scene in scenes]
    ids = tokenizer(captions, padding="max_length", max_length=77, return_tensors="pt").input_ids
    masks = supervision.region_masks(scenes)
    regions = [supervision.word_regions(c, s) for c, s in zip(captions, scenes)]
    latents = torch.randn(4, 4, 16, 16)
    optimizer = torch.optim.AdamW(list(unet.parameters()) + list(text_encoder.parameters()), lr=3e-3)
    losses = []
    for _ in range(30):
        unet(latents, 300, encoder_hidden_states=text_encoder(ids)[0])
        loss = supervision.attention_loss(tape.take(), masks, regions)
        train.apply_gradients(loss, list(unet.parameters()) + list(text_encoder.parameters()), optimizer)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0], losses


def test_attention_stage_trains_and_its_ema_unet_keeps_diffusers_processors(tmp_path):
    tokenizer = CLIPTokenizer.from_pretrained(f"{DEFAULT_MODEL}/tokenizer")
    count = 8
    data = {"count": count, "mean": torch.randn(count, 4, 16, 16), "std": torch.full((count, 4, 16, 16), 0.1),
            "scaling_factor": 0.4, "scenes": [shapes_data.sample(i)[2].__dict__ for i in range(count)]}
    stage = train.UNetStage("unet-attention", 2, lr=5e-4, on_means=True, attention_weight=0.1)
    ema_unet, _ = train.train_unet(tmp_path, tokenizer, data, stage, batch=4, device="cpu")
    assert torch.load(tmp_path / "unet-attention.pt")["step"] == 2
    assert all(type(p) is AttnProcessor2_0 for p in ema_unet.attn_processors.values())


def test_later_stages_start_from_the_last_stage_with_a_checkpoint(tmp_path):
    stages = [train.UNetStage(name, 10, lr=1e-3) for name in ("unet", "unet-offset", "unet-attention")]
    assert train.stages_to_run(tmp_path, stages) == stages
    train.save_checkpoint(tmp_path / "unet-offset.pt", step=10)
    assert [s.name for s in train.stages_to_run(tmp_path, stages)] == ["unet-offset", "unet-attention"]


def test_a_work_folder_seeded_from_the_shipped_model_holds_its_weights_as_finished_stages(tmp_path):
    from diffusers import UNet2DConditionModel

    from training.from_model import seed_work_from_model

    steps = {"vae": 7, "decoder-sharp": 8, "unet-offset": 9}
    seed_work_from_model(Path(DEFAULT_MODEL), tmp_path, steps, unet_stage="unet-offset")
    tokenizer = CLIPTokenizer.from_pretrained(tmp_path / "tokenizer")
    # each stage's own resume takes the checkpoint as finished (its optimizer state fits) and trains nothing
    vae = train.train_vae(tmp_path, steps["vae"], batch=2, channels=model_configs.VAE_CHANNELS)
    train.finetune_decoder(tmp_path, vae, None, steps["decoder-sharp"], batch=2, stage="decoder-sharp")
    ema_unet, _ = train.train_unet(tmp_path, tokenizer, {"scenes": []}, train.UNetStage("unet-offset", 9, lr=1e-3),
                                   batch=2)
    shipped = UNet2DConditionModel.from_pretrained(f"{DEFAULT_MODEL}/unet")
    assert all(torch.equal(a, b) for a, b in zip(ema_unet.state_dict().values(), shipped.state_dict().values()))
    stages = [train.UNetStage(name, 9, lr=1e-3) for name in ("unet", "unet-offset", "unet-attention")]
    assert [s.name for s in train.stages_to_run(tmp_path, stages)] == ["unet-offset", "unet-attention"]
