"""What a recorded run looks like: decoded steps (cached), the labelled filmstrip, the GIF and MP4,
the per-step gallery, and the classifier-free-guidance anatomy of one step. UI-free.

Decodes go through the VAE one latent at a time, so a step's picture is exactly the one a
generation of those latents returns, and each is cached in the history (bounded by bytes).
"""
import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont, PngImagePlugin

from diffusion_core import images as image_ops
from diffusion_core.history import RecordedStep, RunHistory, default_every, kept_indices

THUMBNAIL = 160  # largest side of a strip cell, gallery item or video frame half
ROW_TITLES = ("noisy x_t", "predicted x0")
BRANCH_TITLES = {"uncond": "unconditional", "text": "text", "guided": "guided"}
FRAME_SECONDS = 0.4


def decoded(model, history: RunHistory, step: RecordedStep, kind: str = "xt") -> Image.Image | None:
    """The VAE's picture of x_t ("xt") or of a branch's x0 ("guided", "uncond", "text"); None if not recorded."""
    key = (step.index, kind)
    image = history.decoded.get(key)
    if image is None:
        latents = step.latents if kind == "xt" else history.x0(step, kind)
        if latents is None:
            return None
        image = image_ops.to_pil(image_ops.decode_latents(model.vae, latents[None].to(model.device)))[0]
        history.decoded.put(key, image, image.width * image.height * 3)
    return image


def step_label(history: RunHistory, index: int) -> tuple[str, str]:
    sigma = history.schedule.sigmas[index]
    return f"step {index + 1}/{history.total}", f"t {history.schedule.timesteps[index]} · σ {sigma:.3g}"


def thumbnail(image: Image.Image) -> Image.Image:
    if max(image.size) <= THUMBNAIL:
        return image
    scale = THUMBNAIL / max(image.size)
    return image.resize((round(image.width * scale), round(image.height * scale)), Image.LANCZOS)


@functools.lru_cache(maxsize=None)
def _font(size: int):
    """DejaVu Sans (matplotlib ships it): PIL's default font has no σ."""
    from matplotlib import font_manager
    return ImageFont.truetype(font_manager.findfont("DejaVu Sans"), size)


def strip_indices(history: RunHistory, every: int | None = None) -> list[int]:
    """The steps a strip shows: every k-th (k = steps // 8 unless given) and the last, among those recorded."""
    every = max(history.every, int(every or 0) or default_every(history.params.steps))
    return [i for i in kept_indices(history.total, every) if i in history.steps]


def filmstrip(model, history: RunHistory, every: int | None = None) -> Image.Image:
    """The kept steps left to right: x_t on top, the guided x0 under it, each column labelled
    (step, timestep, σ). The labels are also in the PNG's "filmstrip" text, one per column."""
    kept = strip_indices(history, every)
    rows = [[decoded(model, history, history.steps[i], kind) for i in kept] for kind in ("xt", "guided")]
    rows = [row for row in rows if row[0] is not None]  # the pipeline engine records no x0
    cell_w, cell_h = thumbnail(rows[0][0]).size
    title_w, label_h = 92, 30
    sheet = Image.new("RGB", (title_w + cell_w * len(kept), cell_h * len(rows) + label_h), "white")
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        draw.text((6, r * cell_h + cell_h / 2), ROW_TITLES[r], fill="black", font=_font(13), anchor="lm")
        for c, image in enumerate(row):
            sheet.paste(thumbnail(image), (title_w + c * cell_w, r * cell_h))
    labels = []
    for c, index in enumerate(kept):
        top, bottom = step_label(history, index)
        x = title_w + c * cell_w + cell_w / 2
        draw.text((x, len(rows) * cell_h + 8), top, fill="black", font=_font(11), anchor="mm")
        draw.text((x, len(rows) * cell_h + 22), bottom, fill="#444", font=_font(10), anchor="mm")
        labels.append(f"{top} {bottom}")
    sheet.info["filmstrip"] = "\n".join(labels)
    return sheet


def save_png(image: Image.Image, path) -> Path:
    info = PngImagePlugin.PngInfo()
    for key in ("parameters", "filmstrip"):
        if key in image.info:
            info.add_text(key, image.info[key])
    image.save(path, format="PNG", pnginfo=info)
    return Path(path)


def _frame(model, history: RunHistory, index: int) -> Image.Image:
    """x_t and the guided x0 side by side over a label band; even sides (H.264 needs them)."""
    pair = [decoded(model, history, history.steps[index], kind) for kind in ("xt", "guided")]
    pair = [thumbnail(image) for image in pair if image is not None]
    cell_w, cell_h = pair[0].size
    width, height = len(pair) * cell_w, cell_h + 18
    frame = Image.new("RGB", (width + width % 2, height + height % 2), "white")
    for i, image in enumerate(pair):
        frame.paste(image, (i * cell_w, 0))
    top, bottom = step_label(history, index)
    ImageDraw.Draw(frame).text((frame.width / 2, cell_h + 9), f"{top} · {bottom}", fill="black", font=_font(11),
                               anchor="mm")
    return frame


def animation_gif(model, history: RunHistory, path, every: int | None = None) -> Path:
    """One frame per kept step (the filmstrip's columns), looping."""
    frames = [_frame(model, history, i) for i in strip_indices(history, every)]
    frames[0].save(path, format="GIF", save_all=True, append_images=frames[1:], loop=0,
                   duration=int(FRAME_SECONDS * 1000), disposal=1)
    return Path(path)


def video_mp4(model, history: RunHistory, path, fps: int = 8) -> Path:
    """Every recorded step as one H.264 frame."""
    import av  # only this view needs PyAV

    with av.open(str(path), mode="w") as container:
        stream = None
        for index in sorted(history.steps):
            frame = _frame(model, history, index)
            if stream is None:
                stream = container.add_stream("libx264", rate=fps)
                stream.width, stream.height, stream.pix_fmt = frame.width, frame.height, "yuv420p"
            for packet in stream.encode(av.VideoFrame.from_image(frame)):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return Path(path)


def step_gallery(model, history: RunHistory) -> list[tuple[Image.Image, str]]:
    """Every recorded step's x_t with its label, for a gallery."""
    return [(thumbnail(decoded(model, history, history.steps[i])), " · ".join(step_label(history, i)))
            for i in sorted(history.steps)]


@dataclass
class Anatomy:
    images: dict  # "uncond", "text", "guided" -> the VAE's picture of that branch's x0, or None
    heat_map: Image.Image | None  # |x0_text − x0_uncond| per latent pixel
    explanation: str  # the equation with this step's numbers, or why a part is missing


def anatomy(model, history: RunHistory, number) -> Anatomy:
    """What classifier-free guidance does at step `number`: each branch's x0 and where they differ."""
    step = history.step(number)
    if step.noise_text is None:
        return Anatomy({b: None for b in BRANCH_TITLES}, None,
                       f"The {history.engine or 'pipeline'} engine hands out only x_t at each step (diffusers' "
                       "callback_on_step_end gives the latents, not the two noise predictions), so the branches "
                       "cannot be shown. Choose the manual CFG loop to see them.")
    images = {branch: decoded(model, history, step, branch) for branch in BRANCH_TITLES}
    g = history.params.guidance
    if step.noise_uncond is None:
        return Anatomy(images, None,
                       f"Guidance {g:g}: the loop runs no unconditional branch at guidance 1, so the guided "
                       "prediction is the text prediction itself; nothing to compare.")
    difference = (history.x0(step, "text") - history.x0(step, "uncond")).abs().mean(0)
    negative = history.params.negative_prompt
    uncond = f"the negative prompt “{negative}”" if negative else "the empty prompt"
    return Anatomy(images, heat_map(difference, images["guided"].size), (
        f"**x̂0 = x̂0_uncond + g · (x̂0_text − x̂0_uncond)**, g = {g:g}, at step {step.index + 1} "
        f"(timestep {step.timestep}, σ {history.schedule.sigmas[step.index]:.3g}).  \n"
        f"The loop blends the noise, ε = ε_uncond + g · (ε_text − ε_uncond); x0 is affine in ε "
        f"({x0_formula(history)}), so the x0s blend the same way. Unconditional branch: {uncond}.  \n"
        f"Heat map: |x̂0_text − x̂0_uncond| averaged over the 4 latent channels, one block per latent pixel, "
        f"black 0 to yellow {float(difference.max()):.3g}; guidance moves each pixel g times that."))


def x0_formula(history: RunHistory) -> str:
    schedule = history.schedule
    if schedule.prediction_type == "sample":
        return "the UNet predicts x0 itself"
    if schedule.sigma_form:
        return ("x̂0 = x_t − σ·ε" if schedule.prediction_type == "epsilon"
                else "x̂0 = x_t/(σ²+1) − σ·v/√(σ²+1)")
    return "x̂0 = (x_t − √(1−ᾱ)·ε)/√ᾱ" if schedule.prediction_type == "epsilon" else "x̂0 = √ᾱ·x_t − √(1−ᾱ)·v"


def heat_map(values: torch.Tensor, size) -> Image.Image:
    """A [h, w] map of non-negative values as a colour image (inferno), each value one block."""
    from matplotlib import colormaps

    peak = float(values.max())
    scaled = (values / peak).numpy() if peak > 0 else np.zeros(values.shape)
    rgb = (colormaps["inferno"](scaled)[..., :3] * 255).astype(np.uint8)
    return Image.fromarray(rgb).resize(size, Image.NEAREST)


@dataclass
class LatentView:
    channels: list  # (grey image, caption) per latent channel
    cheap_rgb: Image.Image | None  # the linear latent -> RGB map's picture, None where the model has none
    note: str  # where the linear map's factors come from


def latent_view(model, history: RunHistory, number) -> LatentView:
    """Step `number`'s x_t as its raw channels and as the cheap linear RGB preview (beside the VAE's)."""
    from diffusion_core import latent_preview

    latents = history.step(number).latents
    channels = [(image, f"channel {c} · {float(latents[c].min()):.2f} … {float(latents[c].max()):.2f}")
                for c, image in enumerate(latent_preview.channels(latents))]
    has_map = latent_preview.factors(model) is not None
    cheap = latent_preview.to_rgb(model, latents[None].to(model.device))[0] if has_map else None
    return LatentView(channels, cheap, latent_preview.source(model))
