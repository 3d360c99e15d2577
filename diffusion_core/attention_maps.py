"""Cross-attention maps per word of the prompt and the negative prompt (DAAM-style), and their pictures.

    maps = attention_maps(model, GenerationParams(prompt="a red circle on a blue background", seed=1))
    maps.heat_map(maps.word_index("red"))          # (height, width) at image size, all steps
    maps.heat_map(1, step=3)                       # only the 4th UNet call's attention
    maps.overlay_image().save("overlay.png")       # every word in its colour, with a legend

A word's map is the sum of its CLIP sub-tokens' maps (the start, end and padding tokens are left out);
prompt words read the text half of the guidance batch, negative words the unconditional half, which is
the negative prompt's (with guidance 1 there is no such half, so no negative words). Steps count UNet
calls, one per StepInfo of the loop: step k here is StepInfo.index k.
"""
import math
import re
from dataclasses import dataclass, field, replace

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw, ImageFont

from diffusion_core.attention import NO_RECORDABLE_LAYERS, can_capture, capturing_attention
from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import GenerationResult, generate
from diffusion_core.params import GenerationParams

# Colours of matplotlib's tab10, the colour-blind-aware default of its plots.
WORD_COLOURS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
                "#bcbd22", "#17becf"]
HEAT_ALPHA = 0.6  # share of the colour map over the image in a heat map picture
OVERLAY_ALPHA = 0.7  # the same for the overlay's strongest pixel
DISPLAY_MIN_SIDE = 256  # pictures are drawn at least this large (the shipped model makes 128x128 images)


@dataclass(frozen=True)
class Word:
    text: str
    source: str  # "prompt" or "negative"
    positions: tuple[int, ...]  # its tokens' positions in the 77 (0 is the start token)
    label: str  # unique among a result's words: "a", "a (2)", "blue (negative)"


@dataclass
class AttentionMaps:
    image: Image.Image
    generation: GenerationResult
    words: list[Word]
    step_maps: torch.Tensor  # (steps, words, latent h, latent w): each word's attention at each UNet call
    notes: list[str] = field(default_factory=list)

    @property
    def steps(self) -> int:
        return self.step_maps.shape[0]

    def word_index(self, choice) -> int:
        return word_index(self.words, choice)

    def step_index(self, step) -> int | None:
        """None for all steps; else a 0-based step, from the 1-based number the UI shows (0 = all)."""
        if step is None or str(step).strip() == "":
            return None
        try:
            number = float(step)
        except (TypeError, ValueError):
            number = math.nan
        if not math.isfinite(number) or number != int(number):
            raise InvalidRequest(f"Step must be a whole number (got {step!r}).")
        if number == 0:
            return None
        if not 1 <= number <= self.steps:
            raise InvalidRequest(f"Step {int(number)} is out of range: this run has {self.steps} steps "
                                 f"(1-{self.steps}; 0 for all steps together).")
        return int(number) - 1

    def heat_map(self, word: int, step: int | None = None) -> np.ndarray:
        """(height, width) at the image's size, >= 0: the word's attention, over all steps or at one."""
        return _upsampled(self._latent_maps(step)[word:word + 1], self.image.size)[0]

    def _latent_maps(self, step: int | None) -> torch.Tensor:
        return self.step_maps.mean(0) if step is None else self.step_maps[step]

    def colour(self, word: int) -> str:
        return WORD_COLOURS[word % len(WORD_COLOURS)]

    def heat_map_image(self, word: int, step: int | None = None) -> Image.Image:
        """The image under the word's map in a heat colour scale (its own maximum is the hottest)."""
        import matplotlib  # only here: its import takes a while

        image = _display(self.image)
        heat = _normalised(_upsampled(self._latent_maps(step)[word:word + 1], image.size)[0])
        return Image.fromarray(_blend(np.asarray(image, float), matplotlib.colormaps["jet"](heat)[..., :3] * 255,
                                      HEAT_ALPHA))

    def overlay_image(self, step: int | None = None, legend: bool = True) -> Image.Image:
        """Each pixel in the colour of the prompt word it attended to most, as strong as that attention."""
        image = _display(self.image)
        prompt_words = [i for i, w in enumerate(self.words) if w.source == "prompt"]
        maps = _upsampled(self._latent_maps(step)[prompt_words], image.size)
        palette = np.array([_rgb(self.colour(i)) for i in prompt_words], float)
        strength = OVERLAY_ALPHA * _normalised(maps.max(0))[..., None]
        picture = Image.fromarray(_blend(np.asarray(image, float), palette[maps.argmax(0)], strength))
        return _with_legend(picture, [(self.words[i].label, self.colour(i)) for i in prompt_words]) if legend else picture


def word_index(words: list[Word], choice) -> int:
    """A word's number from its label, its text (first match), or its number (0-based); blank: the first."""
    labels = ", ".join(w.label for w in words)
    if choice is None or str(choice).strip() == "":
        return 0
    text = str(choice).strip()
    if text.lstrip("-").isdigit():
        index = int(text)
        if not 0 <= index < len(words):
            raise InvalidRequest(f"Word number {index} is out of range: there are {len(words)} words "
                                 f"(0-{len(words) - 1}): {labels}.")
        return index
    for matches in (lambda w: w.label == text, lambda w: w.text.lower() == text.lower()):
        found = [i for i, w in enumerate(words) if matches(w)]
        if found:
            return found[0]
    raise InvalidRequest(f"{text!r} is not a word of the prompt. Its words are: {labels}.")


def file_name(index: int, word: Word) -> str:
    """'03-circle.png', 'NN-blue-negative.png': sortable, and safe for any word a prompt holds."""
    safe = re.sub(r"[^A-Za-z0-9]+", "-", word.label).strip("-") or "word"
    return f"{index:02d}-{safe}.png"


def prompt_words(tokenizer, text: str, source: str) -> list[Word]:
    """The prompt's whitespace-separated words and their token positions, for the tokens the model sees."""
    ids = tokenizer(text, add_special_tokens=False).input_ids
    texts = text.split()
    pieces = [tokenizer(word, add_special_tokens=False).input_ids for word in texts]
    if [i for piece in pieces for i in piece] != ids:  # a tokenizer that splits across spaces: one word a token
        texts, pieces = [tokenizer.decode([i]).strip() for i in ids], [[i] for i in ids]
    last = tokenizer.model_max_length - 2  # 75 for SD; later tokens are cut off
    words, position, seen = [], 1, {}
    for word, piece in zip(texts, pieces):
        positions = tuple(p for p in range(position, position + len(piece)) if p <= last)
        position += len(piece)
        if positions:
            seen[word] = seen.get(word, 0) + 1
            label = word if seen[word] == 1 else f"{word} ({seen[word]})"
            words.append(Word(word, source, positions, label if source == "prompt" else f"{label} (negative)"))
    return words


def words_of(model, params: GenerationParams) -> list[Word]:
    """The words a run of these parameters maps: the prompt's, then the negative prompt's where it is used."""
    words = prompt_words(model.tokenizer, params.prompt, "prompt")
    if not words:
        raise InvalidRequest("The prompt has no words to map (it is empty): type a prompt.")
    if _negative_used(params):
        words += prompt_words(model.tokenizer, params.negative_prompt, "negative")
    return words


def why_no_maps(model) -> str | None:
    """Why this model's runs cannot be mapped; None when they can."""
    if not model.can_run_manual_loop:
        return f"Attention maps need the manual loop, which cannot drive {model.pipeline_class_name}."
    if not can_capture(model.unet):
        return NO_RECORDABLE_LAYERS
    return None


def attention_maps(model, params: GenerationParams, on_step=None) -> AttentionMaps:
    """Generate one image with the manual loop, recording the cross-attention of every step."""
    params = replace(params, num_images=1, engine="manual").validated()
    reason = why_no_maps(model)
    if reason:
        raise InvalidRequest(reason)
    words = words_of(model, params)
    tokens = 1 + max(p for w in words for p in w.positions)
    with capturing_attention(model.unet, tokens) as capture:
        generation = generate(model, params, on_step=on_step)
    steps = torch.stack(capture.step_maps)  # (steps, rows: [uncond,] text, tokens, h, w)
    rows = {"prompt": steps.shape[1] - 1, "negative": 0}
    step_maps = torch.stack([steps[:, rows[w.source], list(w.positions)].sum(1) for w in words], dim=1)
    notes = list(generation.notes)
    if params.negative_prompt.strip() and not _negative_used(params):
        notes.append("Guidance 1 runs no unconditional branch, so the negative prompt is not used and has no maps.")
    return AttentionMaps(generation.images[0], generation, words, step_maps, notes)


def _negative_used(params) -> bool:
    return params.guidance != 1 and bool((params.negative_prompt or "").strip())


def _upsampled(maps: torch.Tensor, size) -> np.ndarray:
    """(n, h, w) latent-sized maps -> (n, height, width) for a PIL size (width, height), bicubic, >= 0."""
    width, height = size
    return F.interpolate(maps[None], size=(height, width), mode="bicubic", align_corners=False)[0].clamp(min=0).numpy()


def _display(image: Image.Image) -> Image.Image:
    scale = max(1, -(-DISPLAY_MIN_SIDE // min(image.size)))
    return image.resize((image.width * scale, image.height * scale), Image.NEAREST) if scale > 1 else image


def _normalised(values: np.ndarray) -> np.ndarray:
    peak = values.max()
    return values / peak if peak > 0 else values


def _blend(pixels, colours, alpha) -> np.ndarray:
    return (pixels * (1 - alpha) + colours * alpha).clip(0, 255).astype(np.uint8)


def _rgb(hex_colour: str):
    return tuple(int(hex_colour[i:i + 2], 16) for i in (1, 3, 5))


def _with_legend(picture: Image.Image, entries) -> Image.Image:
    """The picture with a strip underneath naming each word in its colour (wrapped to the width)."""
    font = ImageFont.load_default(size=14)
    line_height, margin = 20, 6
    lines, line, x = [], [], margin
    for label, colour in entries:
        width = 16 + font.getlength(label) + 12
        if line and x + width > picture.width:
            lines.append(line)
            line, x = [], margin
        line.append((x, label, colour))
        x += width
    lines.append(line)
    sheet = Image.new("RGB", (picture.width, picture.height + len(lines) * line_height + margin), "white")
    sheet.paste(picture, (0, 0))
    draw = ImageDraw.Draw(sheet)
    for row, items in enumerate(lines):
        y = picture.height + margin // 2 + row * line_height
        for x, label, colour in items:
            draw.rectangle((x, y + 4, x + 12, y + 16), fill=colour)
            draw.text((x + 16, y + 2), label, fill="black", font=font)
    return sheet
