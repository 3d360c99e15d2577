"""Start a training run's later stages from an exported model folder instead of training the earlier ones.

    python -m training.train --work runs/attention --from-model assets/shapes-sd --out assets/shapes-sd

writes the folder's tokenizer, VAE and UNet + text encoder into --work as the finished checkpoints of the
stages that made them (`vae`, `decoder-sharp` and the given UNet stage), so the recipe goes straight on to
the stages after those: the shipped model's weights stand in for the ~1.5 h of training that made them.
The checkpoints hold the exported (EMA) weights as both the trained and the EMA copy and a fresh optimizer
state, so a stage that starts from them starts from the exported model, as its own training left it.
"""
import shutil
from pathlib import Path

import torch
from diffusers import AutoencoderKL, UNet2DConditionModel
from transformers import CLIPTextModel

from training.train import log, save_checkpoint


def fresh_optimizer_state(modules) -> dict:
    return torch.optim.AdamW([p for m in modules for p in m.parameters()]).state_dict()


def seed_work_from_model(model: Path, work: Path, finished_steps: dict[str, int], unet_stage: str) -> None:
    """finished_steps: the step count each seeded stage is marked as finished at (the recipe's own)."""
    if (work / f"{unet_stage}.pt").exists():
        return  # seeded before: never overwrite a work folder's checkpoints
    work.mkdir(parents=True, exist_ok=True)
    shutil.copytree(model / "tokenizer", work / "tokenizer", dirs_exist_ok=True)
    vae = AutoencoderKL.from_pretrained(model / "vae")
    unet = UNet2DConditionModel.from_pretrained(model / "unet")
    text_encoder = CLIPTextModel.from_pretrained(model / "text_encoder")
    # each optimizer state over the parameters its stage trains (train.train_vae, train.finetune_decoder)
    save_checkpoint(work / "vae.pt", vae=vae.state_dict(), optimizer=fresh_optimizer_state([vae]),
                    step=finished_steps["vae"])
    save_checkpoint(work / "decoder-sharp.pt", vae=vae.state_dict(), step=finished_steps["decoder-sharp"],
                    optimizer=fresh_optimizer_state([vae.decoder, vae.post_quant_conv]))
    save_checkpoint(work / f"{unet_stage}.pt", unet=unet.state_dict(), text_encoder=text_encoder.state_dict(),
                    ema_unet=unet.state_dict(), ema_text=text_encoder.state_dict(),
                    optimizer=fresh_optimizer_state([unet, text_encoder]), step=finished_steps[unet_stage])
    log(f"seeded {work} from {model}: vae, decoder-sharp, {unet_stage}")
