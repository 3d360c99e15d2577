"""Teach the UNet's cross-attention where each word acts: a loss on the attention maps of the words that
name a region of the picture (the shape's colour and the shape's name: the shape; the background's colour
and `background`: the rest).

Why: trained on the denoising loss alone, this model's maps did not say which word made which part. Its
2-layer causal text encoder carries the shape into every token after the shape's name, so `on`, `a`, the
background's colour and `background` all attended to the shape, and the words before it to the background
(model card, "Why an attention loss"). The data generator knows each image's shape mask exactly, so the
maps can be taught directly, as TokenCompose does for SD ("TokenCompose", Wang et al., CVPR 2024): per
cross-attention layer, a supervised word's map (the mean over heads of its column of the attention
probabilities) is normalised to sum 1 over the image, and the loss is (1 - its mass inside the word's
region)^2, averaged over layers and words. Words that name no region (`a`, `on`, the start and end
tokens) are left free.

The maps are taken with the app's own RecordingProcessor (diffusion_core.attention), so the loss sees the
same probabilities the attention view shows.
"""
import torch
import torch.nn.functional as F
from PIL import Image, ImageDraw

from diffusion_core.attention import RecordingProcessor, recordable
from training.shapes_data import IMAGE_SIZE, ShapeScene, draw_shape

SHAPE, BACKGROUND = 0, 1  # regions: index into region_masks()'s second axis


class AttentionTape:
    """Keeps every recorded cross-attention call's probabilities (with their gradients) until taken."""

    def __init__(self):
        self.calls: list[tuple[torch.Tensor, int]] = []

    def recording(self) -> bool:
        return True  # every call of the training UNet: there is no other thread and no CFG batch

    def record(self, probabilities: torch.Tensor, heads: int) -> None:
        self.calls.append((probabilities, heads))

    def take(self) -> list[tuple[torch.Tensor, int]]:
        calls, self.calls = self.calls, []
        return calls


def record_cross_attention(unet) -> AttentionTape:
    """Swap the UNet's cross-attention processors for recording ones (for good: a training UNet)."""
    tape = AttentionTape()
    unet.set_attn_processor({name: RecordingProcessor(p, tape) if recordable(name, p) else p
                             for name, p in unet.attn_processors.items()})
    return tape


def shape_mask(scene: ShapeScene, supersample: int = 4) -> torch.Tensor:
    """(IMAGE_SIZE, IMAGE_SIZE) in [0, 1]: how much of each pixel the scene's shape covers (drawn as
    shapes_data.render draws it, at its supersampling)."""
    big = IMAGE_SIZE * supersample
    image = Image.new("L", (big, big), 0)
    draw_shape(ImageDraw.Draw(image), scene, supersample, fill=255)
    mask = torch.frombuffer(bytearray(image.tobytes()), dtype=torch.uint8).float().view(1, 1, big, big) / 255
    return F.avg_pool2d(mask, supersample)[0, 0]


def region_masks(scenes) -> torch.Tensor:
    """(scenes, 2, IMAGE_SIZE, IMAGE_SIZE): each scene's shape and background coverage."""
    shapes = torch.stack([shape_mask(scene) for scene in scenes])
    return torch.stack([shapes, 1 - shapes], dim=1)


def word_regions(caption: str, scene: ShapeScene) -> list[tuple[int, int]]:
    """(token position, region) of each word of the caption that names a region; position 0 is the start
    token, and every word the data uses is one token (the model card's tokenizer check)."""
    region_of = {scene.colour: SHAPE, scene.shape: SHAPE, scene.background: BACKGROUND, "background": BACKGROUND}
    return [(position, region_of[word]) for position, word in enumerate(caption.split(), start=1)
            if word in region_of]


def attention_loss(calls, masks: torch.Tensor, regions: list[list[tuple[int, int]]]) -> torch.Tensor:
    """Mean over layers and supervised words of (1 - the word's attention mass inside its region)^2.

    calls: AttentionTape.take() of one UNet call on a batch; masks: region_masks of the batch's scenes;
    regions: word_regions of each caption of the batch.
    """
    rows = torch.tensor([row for row, words in enumerate(regions) for _ in words], dtype=torch.long)
    if len(rows) == 0:
        return masks.new_zeros(())
    positions = torch.tensor([position for words in regions for position, _ in words], dtype=torch.long)
    region = torch.tensor([r for words in regions for _, r in words], dtype=torch.long)
    losses = []
    for probabilities, heads in calls:
        batch, queries = len(regions), probabilities.shape[1]
        side = round(queries ** 0.5)
        assert side * side == queries, "the training images are square, and so are their attention maps"
        maps = probabilities.view(batch, heads, queries, -1).mean(1)  # (batch, queries, tokens)
        word_maps = maps[rows, :, positions]  # (supervised words, queries)
        word_maps = word_maps / word_maps.sum(1, keepdim=True).clamp(min=1e-8)
        layer_masks = F.adaptive_avg_pool2d(masks, side).flatten(2)  # (batch, 2, queries)
        inside = (word_maps * layer_masks[rows, region]).sum(1)
        losses.append((1 - inside).pow(2).mean())
    return torch.stack(losses).mean()
