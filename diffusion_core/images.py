"""Latents <-> images, init-image preparation, labelled grids, PNGs that carry their parameters."""
import io

import torch
from diffusers.image_processor import VaeImageProcessor
from PIL import Image, ImageDraw, ImageFont, ImageOps, PngImagePlugin

from diffusion_core.errors import InvalidRequest

MAX_INPUT_PIXELS = 4096 * 4096  # larger uploads are refused before decoding (decompression bombs)
_to_pil = VaeImageProcessor(vae_scale_factor=8)


@torch.no_grad()
def decode_latents(vae, latents: torch.Tensor) -> torch.Tensor:
    """VAE decode to [-1, 1] pixels.

    SD's fp16 VAE can overflow to inf/NaN; diffusers upcasts it to fp32 when the
    config says `force_upcast`. We do the same, and also retry in fp32 whenever a
    decode comes out non-finite, rather than return a silent black image.
    """
    scaled = latents / vae.config.scaling_factor
    if vae.dtype == torch.float16 and getattr(vae.config, "force_upcast", False):
        return _decode_fp32(vae, scaled)
    pixels = vae.decode(scaled.to(vae.dtype), return_dict=False)[0]
    if not torch.isfinite(pixels).all() and vae.dtype != torch.float32:
        pixels = _decode_fp32(vae, scaled)
    if not torch.isfinite(pixels).all():
        raise FloatingPointError("The image decoder produced NaN/inf values; try another seed or lower guidance.")
    return pixels


def _decode_fp32(vae, scaled):
    dtype = vae.dtype
    vae.to(torch.float32)
    try:
        return vae.decode(scaled.float(), return_dict=False)[0]
    finally:
        vae.to(dtype)


def to_pil(pixels: torch.Tensor) -> list[Image.Image]:
    return _to_pil.postprocess(pixels.float(), output_type="pil")


def to_pixels(image: Image.Image) -> torch.Tensor:
    return _to_pil.preprocess(image)


def load_image(source) -> Image.Image:
    """Open a user image defensively: size-checked before decoding, first frame, RGB."""
    if isinstance(source, Image.Image):
        image = source
    else:
        try:
            data = source if isinstance(source, bytes) else open(source, "rb").read()
            image = Image.open(io.BytesIO(data))
        except (OSError, ValueError, Image.DecompressionBombError) as error:
            raise InvalidRequest(f"Could not read the image: {error}") from None
    width, height = image.size
    if width * height > MAX_INPUT_PIXELS:
        raise InvalidRequest(f"Image is {width}x{height}; at most {MAX_INPUT_PIXELS // 1_000_000} megapixels are accepted.")
    try:
        image.seek(0)  # animated GIF/PNG: the first frame
        image.load()
    except (OSError, ValueError, EOFError) as error:
        raise InvalidRequest(f"Could not read the image: {error}") from None
    return to_rgb(image)


def to_rgb(image: Image.Image) -> Image.Image:
    image = ImageOps.exif_transpose(image)
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        image = image.point(lambda v: v / 256).convert("L")  # 16-bit -> 8-bit, keeping the range
    if image.mode in ("RGBA", "LA", "PA") or (image.mode == "P" and "transparency" in image.info):
        image = image.convert("RGBA")
        flat = Image.new("RGBA", image.size, (255, 255, 255, 255))  # transparent -> white
        image = Image.alpha_composite(flat, image)
    return image.convert("RGB")


def prepare_init_image(image: Image.Image, width: int, height: int) -> Image.Image:
    """RGB at the requested size (a multiple of 8, as the VAE needs)."""
    image = to_rgb(image)
    if image.size != (width, height):
        image = image.resize((width, height), Image.LANCZOS)
    return image


def with_parameters(image: Image.Image, text: str) -> Image.Image:
    """Attach A1111's 'parameters' text; kept when saved with save_png."""
    image.info["parameters"] = text
    return image


def png_bytes(image: Image.Image) -> bytes:
    info = PngImagePlugin.PngInfo()
    if "parameters" in image.info:
        info.add_text("parameters", image.info["parameters"])
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", pnginfo=info)
    return buffer.getvalue()


def save_png(image: Image.Image, path) -> None:
    with open(path, "wb") as file:
        file.write(png_bytes(image))


def grid(images: list[Image.Image], labels: list[str] | None = None, columns: int = 3) -> Image.Image:
    """Images in rows of `columns`, each with its label underneath."""
    width, height = images[0].size
    label_height = max(16, height // 8) if labels else 0
    rows = -(-len(images) // columns)
    sheet = Image.new("RGB", (columns * width, rows * (height + label_height)), "white")
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=max(10, label_height - 6)) if labels else None
    for i, image in enumerate(images):
        x, y = (i % columns) * width, (i // columns) * (height + label_height)
        sheet.paste(image, (x, y))
        if labels:
            draw.text((x + width / 2, y + height + label_height / 2), labels[i], fill="black", font=font, anchor="mm")
    return sheet


def table(rows: list[list[Image.Image | None]], row_labels: list[str], column_labels: list[str],
          cell_labels: list[list[str]] | None = None) -> Image.Image:
    """A labelled table of images: column headers on top, row headers on the left, a caption under each
    cell (a comparison's time or steps); None leaves a cell blank."""
    width, height = next(image for row in rows for image in row if image is not None).size
    line = max(14, min(24, width // 9))
    font = ImageFont.load_default(size=line - 4)
    header = max(line, *(_text_width(font, text) for text in row_labels)) + 8
    caption = line if cell_labels else 0
    columns = max(len(row) for row in rows)
    sheet = Image.new("RGB", (header + columns * width, line + len(rows) * (height + caption)), "white")
    draw = ImageDraw.Draw(sheet)
    for c, text in enumerate(column_labels):
        draw.text((header + c * width + width / 2, line / 2), text, fill="black", font=font, anchor="mm")
    for r, row in enumerate(rows):
        top = line + r * (height + caption)
        draw.text((header - 4, top + height / 2), row_labels[r], fill="black", font=font, anchor="rm")
        for c, image in enumerate(row):
            if image is None:
                continue
            sheet.paste(image, (header + c * width, top))
            if cell_labels:
                draw.text((header + c * width + width / 2, top + height + caption / 2), cell_labels[r][c],
                          fill="black", font=font, anchor="mm")
    return sheet


def _text_width(font, text: str) -> int:
    left, _, right, _ = font.getbbox(text)
    return int(right - left)


def gif_bytes(frames: list[Image.Image], milliseconds_per_frame: int = 150) -> bytes:
    """An endless animation that plays the frames forward, then back (no jump at the loop)."""
    sequence = frames + frames[-2:0:-1]
    buffer = io.BytesIO()
    sequence[0].save(buffer, format="GIF", save_all=True, append_images=sequence[1:], loop=0,
                     duration=milliseconds_per_frame)
    return buffer.getvalue()
