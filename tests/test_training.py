"""The training recipe: the UNet stage and the decoder stage run, checkpoint, resume; the decoder's edge-weighted loss."""
import numpy as np
import torch
from transformers import CLIPTokenizer

from diffusion_core import DEFAULT_MODEL
from training import model_configs, shapes_data, train


def test_unet_stage_trains_checkpoints_and_resumes(tmp_path):
    tokenizer = CLIPTokenizer.from_pretrained(f"{DEFAULT_MODEL}/tokenizer")
    count = 8
    data = {"count": count, "mean": torch.randn(count, 4, 16, 16), "std": torch.full((count, 4, 16, 16), 0.1),
            "scaling_factor": 0.4, "scenes": [shapes_data.sample(i)[2].__dict__ for i in range(count)]}
    stage = train.UNetStage("unet-offset", 2, lr=5e-4, noise_offset=0.15, snr_gamma=5.0, on_means=True)

    torch.manual_seed(0)
    untrained = model_configs.make_unet()
    torch.manual_seed(0)  # the stage builds its UNet with the same initial weights
    unet, _ = train.train_unet(tmp_path, tokenizer, data, stage, batch=4, device="cpu")

    state = torch.load(tmp_path / "unet-offset.pt")
    assert state["step"] == 2
    assert all(torch.isfinite(p).all() for p in unet.parameters())
    assert not torch.equal(state["unet"]["conv_in.weight"], untrained.conv_in.weight)  # it did learn
    resumed, _ = train.train_unet(tmp_path, tokenizer, data, stage, batch=4, device="cpu")
    assert torch.equal(resumed.conv_in.weight, unet.conv_in.weight)  # finished stage: loaded, not retrained


def test_edge_band_marks_shape_outlines_not_flat_regions():
    picture, _, scene = shapes_data.sample(3)
    images = train.to_tensor(np.array(picture)[None])
    band = train.edge_band(images)[0, 0]
    assert band[:3, :].sum() == 0 and band[:, :3].sum() == 0  # the plain background along the border
    assert 0.01 < band.mean() < 0.25  # a band around the one shape
    x, y = (int(c) for c in scene.centre)
    assert band[y, x] == 0  # so is the shape's middle


def test_decoder_loss_counts_errors_near_edges_more():
    picture, _, _ = shapes_data.sample(3)
    images = train.to_tensor(np.array(picture)[None])
    band = train.edge_band(images).bool().expand_as(images)
    near_edges, in_flat = images.clone(), images.clone()
    near_edges[band] += 0.2
    in_flat[~band] += 0.2 * band.sum() / (~band).sum()  # the same total error, spread over the flat pixels
    plain = train.decoder_loss(near_edges, images), train.decoder_loss(in_flat, images)
    weighted = train.decoder_loss(near_edges, images, 4.0), train.decoder_loss(in_flat, images, 4.0)
    assert weighted[0] / weighted[1] > 2 * plain[0] / plain[1]
    exact = train.decoder_loss(images, images, 4.0)
    assert exact == 0


def test_decoder_stage_trains_and_checkpoints(tmp_path):
    count = 4
    torch.manual_seed(0)
    vae = model_configs.make_vae()
    train.save_checkpoint(tmp_path / "vae.pt", vae=vae.state_dict())
    data = {"count": count, "mean": torch.randn(count, 4, 16, 16), "std": torch.full((count, 4, 16, 16), 0.1)}
    trained = train.finetune_decoder(tmp_path, model_configs.make_vae(), data, 2, 2, stage="decoder-sharp",
                                     on_means=True, start_from="vae", edge_weight=4.0)
    state = torch.load(tmp_path / "decoder-sharp.pt")
    assert state["step"] == 2
    assert torch.equal(state["vae"]["encoder.conv_in.weight"], vae.encoder.conv_in.weight)  # encoder frozen
    assert not torch.equal(trained.decoder.conv_out.weight, vae.decoder.conv_out.weight)  # decoder learned
