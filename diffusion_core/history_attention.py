"""A run's cross-attention maps kept with its history, so any step's maps can be drawn without running again.

`record_run` runs the loop with a history Recorder as its step callback and, where it can, with the
attention capture on (`attention_maps(model, params, on_step=recorder)`): the run's AttentionMaps go into
`history.attention`, and its `step_maps[k]` is step k's map per word (k = StepInfo.index, the history's
step index). Only the manual loop can capture; where a run cannot (the pipeline engine, a model the loop
cannot drive, an empty prompt), it runs without, and `history.attention_note` says why. UI-free.

The kept maps are steps x words x latent h x w floats: 175 KiB for the shipped model's 25 steps of 7
words, but a long prompt on a large latent grows them, so they are capped as the latents are.
"""
from dataclasses import dataclass

from PIL import Image

from diffusion_core.attention_maps import attention_maps, why_no_maps, words_of
from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import GenerationResult, generate
from diffusion_core.history import Recorder, RunHistory

MAX_ATTENTION_BYTES = 32 * 2 ** 20  # per-word maps of one run; a 512x512 run of 50 steps fits 40 words
NOT_RECORDED = "This run kept no attention maps; tick “Record attention maps” and run again."


def why_no_attention(model, params) -> str | None:
    """Why a run of these parameters cannot capture cross-attention; None when it can."""
    if params.engine == "pipeline":
        return ("The diffusers pipeline engine records no attention maps (only the manual CFG loop can "
                "capture them); choose the manual CFG loop and run again to see them.")
    reason = why_no_maps(model)
    if reason:
        return reason
    try:
        words_of(model, params)
    except InvalidRequest as error:  # an empty prompt: a fine run, nothing to map
        return str(error)
    return None


def attention_bytes(model, params, steps: int) -> int:
    """What the per-word maps of a run take: float32, one latent-sized map per word and step."""
    vae_scale = 2 ** (len(model.vae.config.block_out_channels) - 1)
    return 4 * steps * len(words_of(model, params)) * (params.height // vae_scale) * (params.width // vae_scale)


def record_run(model, recorder: Recorder, attention: bool = True) -> GenerationResult:
    """Run the recorder's parameters with it as the step callback; with `attention`, capture the cross-attention
    too (where the run can) and keep it in the history. A run whose maps would not fit is refused before it starts."""
    history = recorder.history
    params = history.params
    reason = why_no_attention(model, params)
    if attention and reason is None:
        needed = attention_bytes(model, params, history.total)
        if needed > MAX_ATTENTION_BYTES:
            raise InvalidRequest(
                f"The attention maps of this run ({len(words_of(model, params))} words, {history.total} steps, "
                f"{params.width}x{params.height}) take {needed / 2**20:.0f} MiB; a run keeps at most "
                f"{MAX_ATTENTION_BYTES // 2**20} MiB of them. Shorten the prompt, lower the steps or the size, or "
                "untick “Record attention maps”.")
        history.attention = attention_maps(model, params, on_step=recorder)
        result = history.attention.generation
    else:
        history.attention_note = reason or NOT_RECORDED
        result = generate(model, params, on_step=recorder)
    history.engine = result.engine
    return result


def attention_summary(history: RunHistory) -> str:
    """A line for the run's status: the maps kept and their size, or why there are none."""
    maps = history.attention
    if maps is None:
        return history.attention_note or NOT_RECORDED
    size = maps.step_maps.numel() * maps.step_maps.element_size()
    return (f"Attention maps of {len(maps.words)} words kept at every step ({size / 2**10:.0f} KiB): "
            "see them under the step scrubber.")


@dataclass
class StepAttention:
    """One step's attention pictures, or why there are none."""
    words: list[str]  # the run's word labels ("a", "a (2)", "green (negative)"); empty without maps
    word: str | None  # the chosen word's label
    overlay: Image.Image | None  # each pixel in the colour of the prompt word it attended to most, at this step
    heat_map: Image.Image | None  # the chosen word's map at this step
    note: str


def step_attention(history: RunHistory, number, word=None) -> StepAttention:
    """Step `number`'s (1 = the first) attention: the overlay and `word`'s map (blank: the first word).

    A run without maps answers with its note, unless a word was asked for: then the note is the error."""
    index = history.index_of(number)
    maps = history.attention
    if maps is None:
        if word is not None and str(word).strip():
            raise InvalidRequest(history.attention_note or NOT_RECORDED)
        return StepAttention([], None, None, None, history.attention_note or NOT_RECORDED)
    chosen = maps.word_index(word)
    label = maps.words[chosen].label
    note = (f"Cross-attention at step {index + 1}/{history.total} alone (averaged over heads and layers), "
            f"drawn on the final image; “{label}”'s map beside it.")
    return StepAttention([w.label for w in maps.words], label, maps.overlay_image(step=index),
                         maps.heat_map_image(chosen, step=index), note)
