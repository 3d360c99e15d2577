"""Train the shapes model from scratch and export it in Stable Diffusion's format.

    python -m training.train --work runs/shapes --out assets/shapes-sd

Stages, each resumable from checkpoints in --work (rerun the same command after
an interruption): tokenizer -> VAE -> latents of the data set -> UNet + text
encoder (unet, unet-offset, unet-attention) -> export (diffusers' layout: fp32 weights, fp16 copies as
the `fp16` variant). `--from-model DIR` starts from an exported model's weights instead of the stages up
to unet-offset (training/from_model.py). `--only export` writes
the current checkpoint out, e.g. to try a model while training goes on.
"""
import argparse
import copy
import json
import math
import random
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from diffusers import StableDiffusionPipeline
from transformers import CLIPTokenizer

from training import attention_supervision, build_tokenizer, model_configs, shapes_data

DATA_SEED = 0  # the latents' data set
VAE_DATA_SEED = 1  # images seen by the VAE
DECODER_LR = 5e-4
# decoder-sharp's loss counts pixels near the target's colour edges 1 + this many times (model card:
# "Why an edge-weighted decoder loss"); 0 is the plain L1 + MSE of the releases before
DECODER_EDGE_WEIGHT = 4.0
# strength 0.6: the weakest variation that recoloured the evaluator's circles (model card, strength sweep)
DEFAULTS = {"steps": 25, "guidance": 7.5, "width": 128, "height": 128, "scheduler": "dpm++2m", "strength": 0.6}


def log(message):
    print(time.strftime("%H:%M:%S"), message, flush=True)


def to_tensor(images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(images).permute(0, 3, 1, 2).float() / 127.5 - 1


def save_checkpoint(path: Path, **state):
    tmp = path.with_suffix(".tmp")
    torch.save(state, tmp)
    tmp.replace(path)  # atomic: an interrupted save never corrupts the last checkpoint


def resume(path: Path, optimizer, start_from: Path | None = None, **modules) -> int:
    """Load a stage's checkpoint if there is one and return the step it reached; a stage that has
    not started yet takes its modules' weights from an earlier stage's checkpoint, if given."""
    if not path.exists():
        if start_from is not None:
            earlier = torch.load(start_from, map_location="cpu")
            for key, module in modules.items():
                module.load_state_dict(earlier[key])
        return 0
    state = torch.load(path, map_location="cpu")
    for key, module in modules.items():
        module.load_state_dict(state[key])
    optimizer.load_state_dict(state["optimizer"])
    return state["step"]


def apply_gradients(loss, params, optimizer):
    loss.backward()
    torch.nn.utils.clip_grad_norm_(params, 1.0)
    optimizer.step()
    optimizer.zero_grad()


class Progress:
    """Logs a stage's loss and seconds per step every `every` steps."""

    def __init__(self, stage, steps, every=50):
        self.stage, self.steps, self.every, self.started = stage, steps, every, time.time()

    def __call__(self, step, loss, **parts):
        if step % self.every == 0:
            seconds = (time.time() - self.started) / self.every
            named = "".join(f", {name} {value.item():.4f}" for name, value in parts.items())
            log(f"{self.stage} step {step}/{self.steps} loss {loss.item():.4f}{named} ({seconds:.2f}s/step)")
            self.started = time.time()


def ema_update(ema, model, decay):
    with torch.no_grad():
        for e, p in zip(ema.parameters(), model.parameters()):
            e.lerp_(p, 1 - decay)


def train_vae(work: Path, steps: int, batch: int, channels):
    path = work / "vae.pt"
    vae = model_configs.make_vae(channels)
    optimizer = torch.optim.AdamW(vae.parameters(), lr=2e-3, weight_decay=0.0)
    step = resume(path, optimizer, vae=vae)
    if step >= steps:
        return vae
    log(f"VAE: step {step} of {steps}")
    rng = np.random.default_rng(step)
    full_size_from = int(steps * 0.85)  # crops are 4x cheaper; finish on whole images
    progress = Progress("VAE", steps)
    while step < steps:
        lr = 2e-3 * cosine(step, steps)
        for group in optimizer.param_groups:
            group["lr"] = lr
        if step < full_size_from:
            images = to_tensor(shapes_data.image_batch(step * batch, batch, VAE_DATA_SEED))
            y, x = rng.integers(0, 65, size=2)
            images = images[:, :, y : y + 64, x : x + 64]
        else:
            images = to_tensor(shapes_data.image_batch(step * batch, batch // 2, VAE_DATA_SEED))
        posterior = vae.encode(images).latent_dist
        decoded = vae.decode(posterior.sample()).sample
        loss = F.l1_loss(decoded, images) + 0.5 * F.mse_loss(decoded, images) + 1e-6 * posterior.kl().mean()
        apply_gradients(loss, list(vae.parameters()), optimizer)
        step += 1
        progress(step, loss)
        if step % 200 == 0 or step == steps:
            save_checkpoint(path, vae=vae.state_dict(), optimizer=optimizer.state_dict(), step=step)
    return vae


@torch.no_grad()
def encode_dataset(work: Path, vae, count: int):
    path = work / "latents.pt"
    if path.exists():
        data = torch.load(path)  # read once: it is the whole data set's latents
        if data["count"] == count:
            return data
    log(f"encoding {count} images")
    vae.eval()
    means, stds, scenes = [], [], []
    for start in range(0, count, 64):
        n = min(64, count - start)
        samples = [shapes_data.sample(i, DATA_SEED) for i in range(start, start + n)]
        images = to_tensor(np.stack([np.asarray(image) for image, _, _ in samples]))
        dist = vae.encode(images).latent_dist
        means.append(dist.mean); stds.append(dist.std)
        scenes += [scene for _, _, scene in samples]
    mean, std = torch.cat(means), torch.cat(stds)
    # SD's trick: scale latents to unit variance for the diffusion model.
    scaling_factor = float(1 / mean.std())
    data = {"count": count, "mean": mean, "std": std, "scaling_factor": scaling_factor,
            "scenes": [scene.__dict__ for scene in scenes]}
    torch.save(data, path)
    log(f"latents {tuple(mean.shape)}, scaling_factor {scaling_factor:.4f}")
    return data


def finetune_decoder(work: Path, vae, data, steps: int, batch: int, stage="decoder", on_means=False,
                     start_from=None, device="cpu", edge_weight=0.0):
    """Train the decoder further on the frozen encoder's latents (as SD's ft-MSE VAE did).

    The latents the UNet learns from do not change, so this stage can run beside
    the UNet's. Stage "decoder" decodes sampled latents (mean + std * noise) and
    sharpens colours and image borders, which the short first stage leaves rough;
    stage "decoder-sharp" decodes the posterior means, which the UNet's second
    stage learns to generate, so edges need not be blurred over the sampling noise.
    On a GPU only the arithmetic moves, as in train_unet.
    """
    path = work / f"{stage}.pt"
    decoder_parts = [vae.decoder, vae.post_quant_conv]
    params = [p for part in decoder_parts for p in part.parameters()]
    optimizer = torch.optim.AdamW(params, lr=DECODER_LR, weight_decay=0.0)
    step = resume(path, optimizer, start_from=start_from and work / f"{start_from}.pt", vae=vae.to(device))
    if step >= steps:
        return vae
    log(f"{stage}: step {step} of {steps}")
    generator = torch.Generator().manual_seed(3000 + step)
    progress = Progress(stage, steps)
    while step < steps:
        for group in optimizer.param_groups:
            group["lr"] = DECODER_LR * warmup(step, 100 if start_from else 0) * cosine(step, steps)
        index = torch.randint(0, data["count"], (batch,), generator=generator)
        images = dataset_images(index.tolist()).to(device)
        latents = latent_batch(data, index, generator, on_means).to(device)
        loss = decoder_loss(vae.decode(latents).sample, images, edge_weight)
        apply_gradients(loss, params, optimizer)
        step += 1
        progress(step, loss)
        if step % 100 == 0 or step == steps:
            save_checkpoint(path, vae=vae.state_dict(), optimizer=optimizer.state_dict(), step=step)
    return vae


def dataset_images(indices) -> torch.Tensor:
    """The latents' data set images (DATA_SEED) at these indices, as [-1, 1] pixels."""
    return to_tensor(shapes_data.images_at(indices, DATA_SEED))


def edge_band(images) -> torch.Tensor:
    """1 within 2 px of a colour edge of the [-1, 1] target images (shape outlines, star points), else 0."""
    step_down = (images[:, :, 1:, :] - images[:, :, :-1, :]).abs().amax(1, keepdim=True)
    step_right = (images[:, :, :, 1:] - images[:, :, :, :-1]).abs().amax(1, keepdim=True)
    edges = ((F.pad(step_down, (0, 0, 0, 1)) + F.pad(step_right, (0, 1, 0, 0))) > 0.1).float()
    return F.max_pool2d(edges, 5, stride=1, padding=2)


def decoder_loss(decoded, images, edge_weight=0.0):
    """L1 + MSE; with edge_weight, a weighted mean that counts pixels near colour edges 1 + edge_weight times.

    Star points are a few pixels of a 128-px image: the plain mean lets the decoder round them off for
    almost nothing, and the classifier (and a person) then reads a circle or a triangle.
    """
    if not edge_weight:
        return F.l1_loss(decoded, images) + F.mse_loss(decoded, images)
    weight = 1 + edge_weight * edge_band(images)
    error = decoded - images
    return (weight * (error.abs() + error ** 2)).mean() / weight.mean()


def latent_batch(data, index, generator, on_means):
    """Unscaled latents of these data set images: posterior means, or samples around them."""
    mean = data["mean"][index]
    return mean if on_means else mean + data["std"][index] * torch.randn(mean.shape, generator=generator)


def warmup(step, steps):
    return min(1.0, (step + 1) / steps) if steps else 1.0


def cosine(step, steps):
    return 0.5 * (1 + math.cos(math.pi * step / steps))


@dataclass(frozen=True)
class UNetStage:
    """One stage of UNet + text encoder training; later stages start from an earlier one's weights."""
    name: str
    steps: int
    lr: float
    warmup_steps: int = 200
    # Offset noise (as diffusers' train_text_to_image --noise_offset): SD's schedule leaves ~7 % of the
    # signal at t=999, so the mean of each latent channel (here: the background colour) leaks through
    # the noisiest step and the model learns to read it from the starting noise instead of the prompt.
    # A random per-channel offset on the noise hides it, so the prompt has to decide the background.
    noise_offset: float = 0.0
    snr_gamma: float | None = None  # min-SNR loss weighting (Hang et al. 2023): faster convergence
    on_means: bool = False  # learn the posterior means (what the sharpened decoder expects)
    # weight of attention_supervision's loss on the cross-attention maps of the words that name a region
    attention_weight: float = 0.0
    start_from: str | None = None


def train_unet(work: Path, tokenizer, data, stage: UNetStage, batch: int, device="cpu"):
    """On a GPU (`--device cuda`) only the arithmetic moves: batches, captions and noise are still
    drawn on the CPU from the same seeded generators, so the recipe is the same one."""
    path = work / f"{stage.name}.pt"
    unet, text_encoder = model_configs.make_unet(), model_configs.make_text_encoder(tokenizer)
    ema_unet, ema_text = copy.deepcopy(unet), copy.deepcopy(text_encoder)
    # after the copies: the EMA (exported) UNet keeps diffusers' own processors
    tape = attention_supervision.record_cross_attention(unet) if stage.attention_weight else None
    modules = dict(unet=unet, text_encoder=text_encoder, ema_unet=ema_unet, ema_text=ema_text)
    for module in modules.values():
        module.to(device)
    params = list(unet.parameters()) + list(text_encoder.parameters())
    optimizer = torch.optim.AdamW(params, lr=stage.lr, weight_decay=1e-2)
    step = resume(path, optimizer, start_from=stage.start_from and work / f"{stage.start_from}.pt", **modules)
    if step >= stage.steps:
        return ema_unet, ema_text
    log(f"{stage.name}: step {step} of {stage.steps}")
    scheduler = model_configs.make_training_scheduler()
    snr = scheduler.alphas_cumprod / (1 - scheduler.alphas_cumprod)
    scenes = [shapes_data.ShapeScene(**s) for s in data["scenes"]]
    caption_rng = random.Random(1000 + step)
    generator = torch.Generator().manual_seed(2000 + step)
    progress = Progress(stage.name, stage.steps)
    unet.train(); text_encoder.train()
    while step < stage.steps:
        for group in optimizer.param_groups:
            group["lr"] = stage.lr * warmup(step, stage.warmup_steps) * cosine(step, stage.steps)
        index = torch.randint(0, data["count"], (batch,), generator=generator)
        captions = [shapes_data.random_caption(scenes[i], caption_rng) for i in index.tolist()]
        ids = tokenizer(captions, padding="max_length", max_length=tokenizer.model_max_length,
                        truncation=True, return_tensors="pt").input_ids
        latents = latent_batch(data, index, generator, stage.on_means) * data["scaling_factor"]
        noise = torch.randn(latents.shape, generator=generator)
        if stage.noise_offset:
            noise = noise + stage.noise_offset * torch.randn(batch, latents.shape[1], 1, 1, generator=generator)
        timesteps = torch.randint(0, scheduler.config.num_train_timesteps, (batch,), generator=generator)
        noisy = scheduler.add_noise(latents, noise, timesteps)
        noisy, noise, ids, t = noisy.to(device), noise.to(device), ids.to(device), timesteps.to(device)
        prediction = unet(noisy, t, encoder_hidden_states=text_encoder(ids)[0]).sample
        loss_per_image = F.mse_loss(prediction, noise, reduction="none").mean(dim=(1, 2, 3))
        if stage.snr_gamma:
            # ε-prediction form: weight min(SNR, γ) / SNR
            snr_t = snr[timesteps].to(device)
            loss_per_image = loss_per_image * snr_t.clamp(max=stage.snr_gamma) / snr_t
        loss = denoising = loss_per_image.mean()
        parts = {}
        if tape:
            batch_scenes = [scenes[i] for i in index.tolist()]
            regions = [attention_supervision.word_regions(c, s) for c, s in zip(captions, batch_scenes)]
            masks = attention_supervision.region_masks(batch_scenes).to(device)
            attention = attention_supervision.attention_loss(tape.take(), masks, regions)
            loss = denoising + stage.attention_weight * attention
            parts = {"denoising": denoising, "attention": attention}
        apply_gradients(loss, params, optimizer)
        step += 1
        decay = min(0.999, (1 + step) / (10 + step))
        ema_update(ema_unet, unet, decay); ema_update(ema_text, text_encoder, decay)
        progress(step, loss, **parts)
        if step % 100 == 0 or step == stage.steps:
            save_checkpoint(path, **{key: module.state_dict() for key, module in modules.items()},
                            optimizer=optimizer.state_dict(), step=step)
    return ema_unet, ema_text


def load_tokenizer(folder: Path) -> CLIPTokenizer:
    tokenizer = CLIPTokenizer.from_pretrained(folder)
    tokenizer.model_max_length = build_tokenizer.MODEL_MAX_LENGTH
    return tokenizer


def save_model_folder(pipe, out: Path):
    """diffusers' conventions: fp32 weights in the main files, so a plain `from_pretrained` works on a CPU,
    and fp16 copies as the `fp16` variant (`variant="fp16", torch_dtype=torch.float16` on a GPU)."""
    pipe.to(torch.float16)
    pipe.save_pretrained(out, safe_serialization=True, variant="fp16")
    pipe.to(torch.float32)
    pipe.save_pretrained(out, safe_serialization=True)
    # Loaders write the options they were called with into the tokenizer's config; they are not config.
    config_path = out / "tokenizer" / "tokenizer_config.json"
    config = json.loads(config_path.read_text())
    for option in ("local_files_only", "is_local"):
        config.pop(option, None)
    config_path.write_text(json.dumps(config, indent=2) + "\n")


def export(work: Path, out: Path, tokenizer, vae_channels, decoder_stage: str, unet_stage: str):
    vae = model_configs.make_vae(vae_channels)
    vae.load_state_dict(torch.load(work / f"{decoder_stage}.pt")["vae"])
    data = torch.load(work / "latents.pt")
    vae.register_to_config(scaling_factor=data["scaling_factor"])
    state = torch.load(work / f"{unet_stage}.pt", map_location="cpu")
    unet, text_encoder = model_configs.make_unet(), model_configs.make_text_encoder(tokenizer)
    unet.load_state_dict(state["ema_unet"]); text_encoder.load_state_dict(state["ema_text"])
    pipe = StableDiffusionPipeline(
        vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
        scheduler=model_configs.make_shipped_scheduler(),
        safety_checker=None, feature_extractor=None, requires_safety_checker=False,
    )
    save_model_folder(pipe, out)
    for name in ("vocab.json", "merges.txt"):  # for loaders that predate tokenizer.json
        (out / "tokenizer" / name).write_bytes((work / "tokenizer" / name).read_bytes())
    (out / "generation_defaults.json").write_text(json.dumps(
        {**DEFAULTS, "known_words": {"shapes": list(shapes_data.SHAPES), "colours": list(shapes_data.COLOURS),
                                     "other": ["a", "on", "background"]},
         "trained_steps": {"decoder": decoder_stage, "unet": f"{unet_stage} step {state['step']}"}}, indent=2) + "\n")
    log(f"exported {decoder_stage} and {unet_stage} (step {state['step']}) to {out}")


def unet_stages(args):
    return [
        UNetStage("unet", args.unet_steps, lr=1e-3),
        UNetStage("unet-offset", args.unet_offset_steps, lr=5e-4, warmup_steps=100, noise_offset=0.15,
                  snr_gamma=5.0, on_means=True, start_from="unet"),
        # the same loss as unet-offset's plus the attention loss (model card, "Why an attention loss")
        UNetStage("unet-attention", args.unet_attention_steps, lr=args.unet_attention_lr, warmup_steps=100,
                  noise_offset=0.15, snr_gamma=5.0, on_means=True, attention_weight=args.attention_weight,
                  start_from="unet-offset"),
    ]


def stages_to_run(work: Path, stages: list[UNetStage]) -> list[UNetStage]:
    """The stages from the last one with a checkpoint on: earlier ones are only its starting point
    (which matters when --from-model seeded a later stage without the earlier ones' checkpoints)."""
    started = [i for i, stage in enumerate(stages) if (work / f"{stage.name}.pt").exists()]
    return stages[started[-1]:] if started else stages


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work", type=Path, default=Path("runs/shapes"))
    parser.add_argument("--out", type=Path, default=Path("assets/shapes-sd"))
    parser.add_argument("--vae-steps", type=int, default=2400)
    parser.add_argument("--vae-batch", type=int, default=16)
    parser.add_argument("--vae-channels", type=lambda text: tuple(int(c) for c in text.split(",")),
                        default=model_configs.VAE_CHANNELS, help="the VAE's block widths, e.g. 16,32,64,128")
    parser.add_argument("--images", type=int, default=12000)
    parser.add_argument("--decoder-steps", type=int, default=0,
                        help="decoder fine-tune on sampled latents (0 skips it; the model card says what earlier models used)")
    parser.add_argument("--sharp-decoder-steps", type=int, default=3000,
                        help="decoder fine-tune on posterior means (the model card compares step counts)")
    parser.add_argument("--decoder-batch", type=int, default=8)
    parser.add_argument("--decoder-edge-weight", type=float, default=DECODER_EDGE_WEIGHT,
                        help="decoder-sharp: extra weight of pixels near colour edges (0: plain L1 + MSE, as before)")
    parser.add_argument("--unet-steps", type=int, default=3000)
    parser.add_argument("--unet-offset-steps", type=int, default=5000)
    parser.add_argument("--unet-attention-steps", type=int, default=2000)
    parser.add_argument("--unet-attention-lr", type=float, default=2e-4)
    parser.add_argument("--attention-weight", type=float, default=0.1,
                        help="unet-attention: weight of the attention loss beside the denoising loss")
    parser.add_argument("--unet-batch", type=int, default=32)
    parser.add_argument("--device", default="cpu",
                        help="where the decoder and UNet stages run, e.g. cuda (the VAE stage stays on the CPU)")
    parser.add_argument("--from-model", type=Path, default=None,
                        help="an exported model folder whose weights stand for the stages up to unet-offset "
                             "(training/from_model.py), e.g. assets/shapes-sd")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--only", choices=["decoder", "unet", "export"], default=None,
                        help="one stage (decoder and unet may run side by side, one thread each)")
    args = parser.parse_args()
    torch.manual_seed(0)
    if args.threads:
        torch.set_num_threads(args.threads)
    args.work.mkdir(parents=True, exist_ok=True)
    if args.from_model:
        from training.from_model import seed_work_from_model  # it imports this module's helpers

        seed_work_from_model(args.from_model, args.work, unet_stage="unet-offset", finished_steps={
            "vae": args.vae_steps, "decoder-sharp": args.sharp_decoder_steps, "unet-offset": args.unet_offset_steps})
    tokenizer_dir = args.work / "tokenizer"
    if not (tokenizer_dir / "vocab.json").exists():
        build_tokenizer.build(tokenizer_dir, build_tokenizer.find_open_clip_vocab())
    tokenizer = load_tokenizer(tokenizer_dir)
    if args.only in (None, "decoder", "unet"):
        vae = train_vae(args.work, args.vae_steps, args.vae_batch, args.vae_channels)
        data = encode_dataset(args.work, vae, args.images)
        if args.only in (None, "decoder"):
            if args.decoder_steps:  # 0: a VAE trained long enough needs no decoder-on-samples stage
                finetune_decoder(args.work, vae, data, args.decoder_steps, args.decoder_batch, device=args.device)
            finetune_decoder(args.work, vae, data, args.sharp_decoder_steps, args.decoder_batch,
                             stage="decoder-sharp", on_means=True,
                             start_from="decoder" if args.decoder_steps else "vae", device=args.device,
                             edge_weight=args.decoder_edge_weight)
        if args.only in (None, "unet"):
            for stage in stages_to_run(args.work, unet_stages(args)):
                train_unet(args.work, tokenizer, data, stage, args.unet_batch, args.device)
    if args.only in (None, "export"):
        # a fresh copy: padding to max_length in training sets the fast tokenizer's padding, and
        # save_pretrained would write it into tokenizer.json
        export(args.work, args.out, load_tokenizer(tokenizer_dir), args.vae_channels, decoder_stage="decoder-sharp",
               unet_stage=unet_stages(args)[-1].name)


if __name__ == "__main__":
    main()
