"""The training recipe's UNet stage: runs, checkpoints, resumes (a few steps, the shipped architecture)."""
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
