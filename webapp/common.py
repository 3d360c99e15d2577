"""What every tab shares: UI limits and labels (each defined once), requests built from UI values,
generations streamed from a worker thread, and the text and galleries that show a result.

Generations run in a worker thread so previews can stream to the page while the loop runs; closing
the stream (the Stop button, a closed tab) sets a flag that the step callback turns into
GenerationCancelled at the next step.
"""
import logging
import queue
import threading

import gradio as gr

from diffusion_core import GenerationCancelled, GenerationParams, InvalidRequest, ModelLoadError
from diffusion_core import images as image_ops
from diffusion_core import latent_preview
from diffusion_core import params as limits
from diffusion_core.generate import SEED_GRID
from diffusion_core.schedulers import LABELS, canonical_name

log = logging.getLogger("app")

try:  # ZeroGPU on Hugging Face Spaces: borrow a GPU for each generation
    import spaces
    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn

ENGINES = {"manual CFG loop": "manual", "diffusers pipeline": "pipeline"}  # label -> GenerationParams.engine
ENGINE_LABELS = {value: label for label, value in ENGINES.items()}
MANUAL_ENGINE = ENGINE_LABELS["manual"]
SCHEDULER_CHOICES = list(LABELS.values())
PREVIEWS = {"auto": "auto", "VAE decode (exact)": "vae", "linear approximation (cheap)": "linear"}  # label -> value
PREVIEW_METHOD_NAMES = {"vae": "the VAE decode", "linear": "the cheap linear map"}
DEFAULT_SEED = 193
DEFAULT_GRID = ", ".join(f"{g:g}" for g in SEED_GRID)
# The core accepts guidance up to params.MAX_GUIDANCE; past 30 every model burns, so the sliders stop there.
GUIDANCE_SLIDER_MAX = 30
GUIDANCE_SLIDER_STEP = 0.25

# Gradio lays a gallery out in as many columns as it has images, so a single image would fill the
# whole width, cropped to the gallery's height. Pinning the column count keeps thumbnails their size.
GALLERY_COLUMNS: dict[str, int] = {}  # elem_id -> columns, filled as galleries are built


def gallery_css() -> str:
    return "\n".join(f"#{name} .grid-container {{ --grid-cols: {columns} !important; }}"
                     for name, columns in GALLERY_COLUMNS.items())


def pinned_gallery(elem_id: str, columns: int, **options) -> gr.Gallery:
    GALLERY_COLUMNS[elem_id] = columns
    return gr.Gallery(format="png", columns=columns, elem_id=elem_id, **options)


def prompt_box(model, shapes_prompt: str) -> gr.Textbox:
    """The prompt box; it opens on `shapes_prompt` for the shipped model, which knows only those words."""
    return gr.Textbox(shapes_prompt if model.known_words is not None else "", label="Prompt", lines=2)


def guidance_slider(value) -> gr.Slider:
    return gr.Slider(0, GUIDANCE_SLIDER_MAX, value=value, step=GUIDANCE_SLIDER_STEP, label="Guidance")


def live_preview_radio(model) -> gr.Radio:
    return gr.Radio(list(PREVIEWS), value="auto", label="Live preview",
                    info=f"auto: {PREVIEW_METHOD_NAMES[latent_preview.live_preview_method(model)]} for this model. "
                         f"Linear map: {latent_preview.source(model)}")


def images_slider(value) -> gr.Slider:
    return gr.Slider(1, limits.MAX_IMAGES, value=value, step=1, label="Number of images")


def user_error(error: Exception) -> gr.Error:
    if isinstance(error, (InvalidRequest, ModelLoadError, FloatingPointError)):
        return gr.Error(str(error))
    log.exception("generation failed")
    return gr.Error(f"Something went wrong ({type(error).__name__}). The server is still running; try again.")


def make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine,
                strength=None) -> GenerationParams:
    try:
        scheduler = canonical_name(scheduler) if scheduler else None  # None: generate() uses the model's own
    except InvalidRequest as error:
        raise gr.Error(str(error)) from None
    return GenerationParams(
        prompt=prompt or "", negative_prompt=negative_prompt or "", guidance=guidance, num_images=num_images,
        scheduler=scheduler, steps=steps, seed=seed, width=width, height=height, strength=strength,
        engine=ENGINES.get(engine, engine),
    )


def stream(slot, run, preview_every: int, progress, preview: str = "auto"):
    """Run `run(model, on_step)` in a thread; yield [preview image, step text] lists, then the result.

    Previews show the scheduler's clean-image estimate (x0) where it gives one, else the current
    latents, as the seed article does: decoded by the VAE ("vae"), or by the cheap linear map of
    diffusion_core.latent_preview ("linear"); "auto" lets latent_preview pick for the model.
    """
    preview = PREVIEWS.get(preview, preview)
    if preview not in PREVIEWS.values():
        raise gr.Error(f"Live preview must be one of {', '.join(PREVIEWS)} (got {preview!r}).")
    model = slot.get()
    method = latent_preview.live_preview_method(model, preview)
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def on_step(step):
        if stop.is_set():
            raise GenerationCancelled()
        last = step.index + 1 == step.total
        if preview_every and (step.index % preview_every == 0 or last):
            latents = (step.predicted_x0 if step.predicted_x0 is not None else step.latents)[:1]
            if method == "linear":
                image = latent_preview.to_rgb(model, latents)[0]
            else:
                image = image_ops.to_pil(image_ops.decode_latents(model.vae, latents))[0]
            how = " · cheap linear preview" if method == "linear" else ""
            events.put(("preview", image, f"step {step.index + 1}/{step.total}, timestep {step.timestep}{how}"))
        events.put(("progress", step.index + 1, step.total))

    def worker():
        try:
            events.put(("done", run(model, on_step)))
        except BaseException as error:  # handed to the request's thread
            events.put(("error", error))

    threading.Thread(target=worker, daemon=True).start()
    try:
        while True:
            kind, *payload = events.get()
            if kind == "progress":
                progress(tuple(payload), desc="denoising", unit="steps")
            elif kind == "preview":
                yield payload
            elif kind == "error":
                if isinstance(payload[0], GenerationCancelled):
                    return
                raise user_error(payload[0])
            else:
                yield payload[0]
                return
    finally:
        stop.set()  # the page went away or Stop was pressed: end the loop at its next step


def status_text(result, extra="") -> str:
    parts = [f"{result.engine} engine · {result.steps_run} denoising steps · prompt {result.prompt_info.message()}"]
    parts += result.notes
    if extra:
        parts.append(extra)
    return "  \n".join(parts)


def gallery(result, captions=None):
    return [(image, caption) for image, caption in zip(result.images, captions or [f"seed {p.seed}" for p in result.params])]


def recommended_settings(slot):
    """The shared settings a cached example runs with: the model's recommended ones."""
    d = slot.get().defaults
    return LABELS[d["scheduler"]], d["steps"], DEFAULT_SEED, d["width"], d["height"], MANUAL_ENGINE


def cached_examples(model, examples, inputs, outputs, fn):
    """Prompt examples for the loaded model, run on first click and cached."""
    return gr.Examples(examples, inputs=inputs, outputs=outputs, fn=fn, cache_examples=True, cache_mode="lazy",
                       label="Examples (cached on first use)")
