"""Capture the UNet's cross-attention: how much each image position attended to each text token, per step.

`with capturing_attention(unet, tokens) as capture:` swaps each cross-attention layer's (`attn2`)
processor for a RecordingProcessor, which does the arithmetic of diffusers' AttnProcessor (SDPA, the
default, never materialises the attention probabilities) and hands the probabilities to the capture. On
leaving the block the layers get their own processor objects back. While capturing, this thread's
unet_trace.noise_predictor(unet) is the capture itself: the eager UNet call (a trace would replay the
recorded ops and skip the Python processors), which also marks where each UNet call, one per step of the
denoising loop, begins and ends. So generate() runs unchanged inside the block. Other threads keep their
own predictor, and the recording processors run the layers' own processors for them.

Memory stays bounded by aggregating online, as DAAM ("What the DAAM", Tang et al. 2022) does: per layer,
the mean over heads, bicubically upsampled to the latent size and clamped at 0; per call, the mean over
layers. Maps with a side under a quarter of the latent's are skipped, as DAAM skips SD's 8x8 ones (the
coarsest, least local). Only the first `tokens` positions are kept (start token, prompt, end token), so
`capture.step_maps` holds one (batch rows, tokens, latent height, latent width) tensor per step.
"""
import threading
import weakref
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from diffusers.models.attention_processor import AttnProcessor, AttnProcessor2_0

from diffusion_core import unet_trace
from diffusion_core.errors import InvalidRequest

# Processors whose arithmetic RecordingProcessor repeats; layers with others (IP-Adapter, LoRA, custom)
# keep theirs and are not recorded.
STANDARD_PROCESSORS = (AttnProcessor, AttnProcessor2_0)
MIN_SIDE_FRACTION = 4  # skip maps whose side is under latent side / 4
_locks = weakref.WeakKeyDictionary()  # unet -> lock: one capture per UNet at a time
_locks_guard = threading.Lock()


class AttentionCapture:
    """The noise predictor while capturing, and the per-step maps it collects."""

    def __init__(self, unet, tokens: int):
        self.unet = unet
        self.eager = unet_trace.EagerNoisePredictor(unet)
        self.tokens = tokens
        self.step_maps: list[torch.Tensor] = []  # per UNet call: (rows, tokens, latent h, latent w)
        self.layers_recorded = 0  # cross-attention layers that fed the last step's map
        self._thread = threading.get_ident()
        self._latent_size = None  # set while a UNet call of the capturing thread runs
        self._sum = None

    def __call__(self, sample, timestep, text_embeddings):
        self._latent_size, self._sum, self.layers_recorded = tuple(sample.shape[-2:]), None, 0
        try:
            noise = self.eager(sample, timestep, text_embeddings)
        finally:
            self._latent_size = None
        if self._sum is None:
            raise RuntimeError("No cross-attention layer was recorded during the UNet call.")
        self.step_maps.append(self._sum / self.layers_recorded)
        return noise

    def recording(self) -> bool:
        return self._latent_size is not None and threading.get_ident() == self._thread

    def record(self, probabilities: torch.Tensor, heads: int) -> None:
        """probabilities: (rows * heads, h * w queries, keys), as get_attention_scores returns them."""
        height, width = self._latent_size
        queries = probabilities.shape[1]
        h, w = height, width
        while h * w > queries:  # the UNet halves each side per level, rounding up
            h, w = (h + 1) // 2, (w + 1) // 2
        if h * w != queries:
            raise RuntimeError(f"Cannot place {queries} attention queries on a {height}x{width} latent.")
        if h * MIN_SIDE_FRACTION < height:
            return
        rows = probabilities.shape[0] // heads
        maps = probabilities[..., :self.tokens].float().view(rows, heads, h, w, -1).mean(1).permute(0, 3, 1, 2)
        if (h, w) != (height, width):
            maps = F.interpolate(maps, size=(height, width), mode="bicubic", align_corners=False).clamp_(min=0)
        self._sum = maps if self._sum is None else self._sum + maps
        self.layers_recorded += 1


class RecordingProcessor:
    """diffusers' AttnProcessor arithmetic for a cross-attention layer, recording its probabilities."""

    def __init__(self, original, capture: AttentionCapture):
        self.original = original
        self.capture = capture

    def __call__(self, attn, hidden_states, encoder_hidden_states=None, attention_mask=None, temb=None, **kwargs):
        if encoder_hidden_states is None or not self.capture.recording():
            return self.original(attn, hidden_states, encoder_hidden_states=encoder_hidden_states,
                                 attention_mask=attention_mask, temb=temb, **kwargs)
        residual = hidden_states
        if attn.spatial_norm is not None:
            hidden_states = attn.spatial_norm(hidden_states, temb)
        input_ndim = hidden_states.ndim
        if input_ndim == 4:
            batch, channels, height, width = hidden_states.shape
            hidden_states = hidden_states.view(batch, channels, height * width).transpose(1, 2)
        batch, key_length, _ = encoder_hidden_states.shape
        attention_mask = attn.prepare_attention_mask(attention_mask, key_length, batch)
        if attn.group_norm is not None:
            hidden_states = attn.group_norm(hidden_states.transpose(1, 2)).transpose(1, 2)
        query = attn.to_q(hidden_states)
        if attn.norm_cross:
            encoder_hidden_states = attn.norm_encoder_hidden_states(encoder_hidden_states)
        key, value = attn.to_k(encoder_hidden_states), attn.to_v(encoder_hidden_states)
        query, key, value = (attn.head_to_batch_dim(x) for x in (query, key, value))
        if attn.norm_q is not None:  # per-head norms, as AttnProcessor2_0 applies them
            query = attn.norm_q(query)
        if attn.norm_k is not None:
            key = attn.norm_k(key)

        probabilities = attn.get_attention_scores(query, key, attention_mask)
        self.capture.record(probabilities, attn.heads)
        hidden_states = attn.batch_to_head_dim(torch.bmm(probabilities, value))

        hidden_states = attn.to_out[1](attn.to_out[0](hidden_states))  # linear projection, dropout
        if input_ndim == 4:
            hidden_states = hidden_states.transpose(-1, -2).reshape(batch, channels, height, width)
        if attn.residual_connection:
            hidden_states = hidden_states + residual
        return hidden_states / attn.rescale_output_factor


def recordable(name: str, processor) -> bool:
    return name.endswith("attn2.processor") and type(processor) in STANDARD_PROCESSORS


NO_RECORDABLE_LAYERS = ("This UNet has no cross-attention layers with diffusers' standard attention processors, "
                        "so there is no attention to map.")


def can_capture(unet) -> bool:
    return any(recordable(name, p) for name, p in unet.attn_processors.items())


@contextmanager
def capturing_attention(unet, tokens: int = 77):
    """Record the cross-attention of every UNet call this thread makes through noise_predictor(unet)."""
    with _locks_guard:
        lock = _locks.setdefault(unet, threading.Lock())
    with lock:
        capture = AttentionCapture(unet, tokens)
        originals = unet.attn_processors
        swapped = {name: RecordingProcessor(p, capture) if recordable(name, p) else p for name, p in originals.items()}
        if not any(isinstance(p, RecordingProcessor) for p in swapped.values()):
            raise InvalidRequest(NO_RECORDABLE_LAYERS)
        unet.set_attn_processor(swapped)
        try:
            with unet_trace.predicting_with(unet, capture):
                yield capture
        finally:
            unet.set_attn_processor(dict(originals))
