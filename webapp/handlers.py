"""Event handlers: UI values -> GenerationParams -> diffusion_core -> UI values.

Generations run in a worker thread so previews can stream to the page while the
loop runs; closing the stream (the Stop button, a closed tab) sets a flag that
the step callback turns into GenerationCancelled at the next step.
"""
import logging
import queue
import threading
from dataclasses import replace

import gradio as gr
from PIL import Image

from diffusion_core import GenerationCancelled, GenerationParams, InvalidRequest, ModelLoadError, generate, guidance_grid
from diffusion_core import images as image_ops
from diffusion_core.schedulers import LABELS, canonical_name
from webapp.model_slot import ModelSlot, describe

log = logging.getLogger("app")
ENGINES = {"manual CFG loop": "manual", "diffusers pipeline": "pipeline"}
ENGINE_LABELS = {value: label for label, value in ENGINES.items()}
SCHEDULER_CHOICES = list(LABELS.values())
DEFAULT_GRID = "0.25, 0.5, 1, 2, 4, 6, 8, 10, 20"

slot: ModelSlot | None = None  # set by app.py


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


def stream(run, preview_every: int, progress):
    """Run `run(model, on_step)` in a thread; yield [preview image, step text] lists, then the result.

    Previews decode the scheduler's clean-image estimate (x0) where it gives one,
    else the current latents, as the seed article does.
    """
    model = slot.get()
    events: queue.Queue = queue.Queue()
    stop = threading.Event()

    def on_step(step):
        if stop.is_set():
            raise GenerationCancelled()
        last = step.index + 1 == step.total
        if preview_every and (step.index % preview_every == 0 or last):
            latents = step.predicted_x0 if step.predicted_x0 is not None else step.latents
            preview = image_ops.to_pil(image_ops.decode_latents(model.vae, latents[:1]))[0]
            events.put(("preview", preview, f"step {step.index + 1}/{step.total}, timestep {step.timestep}"))
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


def txt2img(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine,
            preview_every, progress=gr.Progress()):
    params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine)
    every = int(preview_every or 0) or max(1, int(steps or 8) // 8)
    for item in stream(lambda model, on_step: generate(model, params, on_step=on_step), every, progress):
        if isinstance(item, list):
            yield item[0], item[1], gr.skip()
        else:
            yield item.images[0], status_text(item), gallery(item)


def parse_guidances(text) -> list[float]:
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise gr.Error(f"Guidance values must be numbers separated by commas, e.g. {DEFAULT_GRID}.") from None
    if not values:
        raise gr.Error(f"Give at least one guidance value, e.g. {DEFAULT_GRID}.")
    return values


def guidance_grid_tab(prompt, negative_prompt, guidance_values, scheduler, steps, seed, width, height, engine,
                      progress=gr.Progress()):
    values = parse_guidances(guidance_values)
    params = make_params(prompt, negative_prompt, max(values), len(values), scheduler, steps, seed, width, height, engine)
    for item in stream(lambda model, on_step: guidance_grid(model, params, values, on_step=on_step), 0, progress):
        labels = [f"guidance {g:g}" for g in values]
        sheet = image_ops.grid(item.images, labels, columns=3)
        image_ops.with_parameters(sheet, item.params[0].to_png_text())
        yield sheet, gallery(item, labels), status_text(item, f"{len(values)} guidance values in one batch, seed {params.seed}")


def negative_prompt_tab(prompt, negative_prompt, num_images, guidance, scheduler, steps, seed, width, height, engine,
                        progress=gr.Progress()):
    params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine)
    if not params.negative_prompt.strip():
        raise gr.Error("Type a negative prompt to compare against.")

    def run_both(model, on_step):
        return generate(model, params, on_step=on_step), generate(model, replace(params, negative_prompt=""), on_step=on_step)

    for with_negative, without in stream(run_both, 0, progress):
        yield (gallery(without), gallery(with_negative),
               status_text(with_negative, "Left: without the negative prompt. Right: with it. Same seeds, pair by pair."))


def image_variation(init_image, prompt, negative_prompt, guidance, strength, num_images, scheduler, steps, seed,
                    width, height, engine, progress=gr.Progress()):
    if init_image is None:
        raise gr.Error("Upload an init image (or pick an example) first.")
    try:
        init = image_ops.load_image(init_image)
    except InvalidRequest as error:
        raise gr.Error(str(error)) from None
    params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine,
                         strength=strength)
    for item in stream(lambda model, on_step: generate(model, params, init_image=init, on_step=on_step), 0, progress):
        yield gallery(item), status_text(item, f"{item.steps_run} of {params.steps} requested steps ran "
                                              f"(strength {params.strength:g}).")


def restore_from_png(file_path):
    """Read a PNG's A1111 parameters back into the settings."""
    if not file_path:
        raise gr.Error("Drop a PNG made by this app.")
    try:
        text = Image.open(file_path).info.get("parameters")
    except Exception:
        raise gr.Error("That file is not a readable image.") from None
    if not text:
        raise gr.Error("This image carries no generation parameters.")
    try:
        p = GenerationParams.from_png_text(text)
    except (InvalidRequest, ValueError):
        raise gr.Error("This image's parameters text could not be read.") from None
    engine = ENGINE_LABELS.get(p.engine, "manual CFG loop")
    strength = p.strength if p.strength is not None else gr.skip()
    return (p.prompt, p.negative_prompt, p.guidance, LABELS[p.scheduler], p.steps, p.seed, p.width, p.height, engine,
            strength, f"Restored settings of seed {p.seed} ({p.model or 'unknown model'}).")


def switch_model(model_id):
    try:
        model = slot.swap(model_id)
    except ModelLoadError as error:
        raise gr.Error(f"{error} The previous model is still loaded.") from None
    d = model.defaults
    return (describe(model), LABELS[d["scheduler"]], d["steps"], d["width"], d["height"], d["guidance"],
            d["guidance"], d["guidance"], d["strength"])


def random_seed() -> int:
    from diffusion_core.seeds import random_seed as draw
    return draw()


def remember_selection(evt: gr.SelectData) -> int:
    return evt.index


def send_to_variation(images, selected_index):
    """The gallery's selected image (the first if none was clicked) becomes the variation tab's init image."""
    if not images:
        raise gr.Error("Generate an image first.")
    item = images[selected_index if selected_index is not None and selected_index < len(images) else 0]
    path = item[0] if isinstance(item, (list, tuple)) else getattr(item, "image", item)
    path = getattr(path, "path", path)
    return Image.open(path), gr.Tabs(selected="variation")


# Examples: the model's recommended settings, so a click shows what the model does best.
SHAPES_EXAMPLES = {
    "txt2img": [["a red circle on a blue background", ""], ["a yellow star on a black background", ""],
                ["a white triangle on a green background", ""]],  # + the model's guidance
    "grid": [["a purple square on an orange background", ""], ["a blue star on a yellow background", ""]],
    # prompts whose images often have the negative's colour without it, on the tab's 9 seeds (193-201): blue
    # circles 4 of 9 (0 with the negative; the whole picture turns warm), dark squares 8 of 9 (0 with it)
    "negative": [["a circle", "blue"], ["a square on a white background", "black"]],
}
SEED_ARTICLE_EXAMPLES = {  # the seed article's prompts, for real SD models
    "txt2img": [["a photograph of an astronaut riding a horse on mars", "", 9.0]],
    "grid": [["a watercolour painting of a lighthouse at dusk", ""]],
    "negative": [["an astronaut on mars", "human, face"]],
}


def examples_for(model, tab):
    if not model.known_words:
        return SEED_ARTICLE_EXAMPLES[tab]
    if tab == "txt2img":
        return [[prompt, negative, model.defaults["guidance"]] for prompt, negative in SHAPES_EXAMPLES[tab]]
    return SHAPES_EXAMPLES[tab]


def _recommended():
    d = slot.get().defaults
    return LABELS[d["scheduler"]], d["steps"], 193, d["width"], d["height"], "manual CFG loop"


def txt2img_example(prompt, negative_prompt, guidance, progress=gr.Progress()):
    yield from txt2img(prompt, negative_prompt, guidance, 1, *_recommended(), 0, progress=progress)


def guidance_grid_example(prompt, negative_prompt, progress=gr.Progress()):
    yield from guidance_grid_tab(prompt, negative_prompt, DEFAULT_GRID, *_recommended(), progress=progress)


def negative_prompt_example(prompt, negative_prompt, progress=gr.Progress()):
    yield from negative_prompt_tab(prompt, negative_prompt, 9, slot.get().defaults["guidance"], *_recommended(),
                                   progress=progress)
