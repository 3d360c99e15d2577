"""Guidance grid: one seed, several guidance values in one batch, a labelled 3x3 grid, and under it what
was measured in each cell, plotted against guidance."""
import gradio as gr

from diffusion_core import images as image_ops
from diffusion_core.compare.guidance_effect import COLUMNS, guidance_effect
from webapp.common import (DEFAULT_GRID, cached_examples, gallery, make_params, on_gpu, pinned_gallery, prompt_box,
                           recommended_settings, status_text, stream)
from webapp.examples import examples_for
from webapp.guidance_plot import effect_plot


def parse_guidances(text) -> list[float]:
    try:
        values = [float(v) for v in str(text).replace(";", ",").split(",") if v.strip()]
    except ValueError:
        raise gr.Error(f"Guidance values must be numbers separated by commas, e.g. {DEFAULT_GRID}.") from None
    if not values:
        raise gr.Error(f"Give at least one guidance value, e.g. {DEFAULT_GRID}.")
    return values


class GuidanceGridTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        with gr.Tab("Guidance grid", id="grid"):
            with gr.Row():
                with gr.Column():
                    prompt = prompt_box(model, "a yellow star on a purple background")
                    negative = gr.Textbox("", label="Negative prompt")
                    values = gr.Textbox(DEFAULT_GRID, label="Guidance values (comma-separated)")
                    with gr.Row():
                        run = gr.Button("Make grid", variant="primary", elem_id="run-grid")
                        stop = gr.Button("Stop", variant="stop")
                    status = gr.Markdown()
                grid_image = gr.Image(label="Same seed, different guidance", format="png", type="pil")
            self.gallery = pinned_gallery("gallery-grid", 9, label="Cells", height=200, preview=False,
                                          object_fit="contain")
            plot = gr.Plot(label="What guidance does, measured per cell", elem_id="guidance-plot")
            table = gr.Dataframe(headers=COLUMNS, label="Measured per cell (0 to 1)", interactive=False,
                                 elem_id="guidance-table")
            outputs = [grid_image, self.gallery, status, plot, table]
            cached_examples(model, examples_for(model, "grid"), [prompt, negative], outputs, self.guidance_grid_example)
            self.send = gr.Button("Send selected image to image variation")
        event = run.click(on_gpu(self.guidance_grid), inputs=[prompt, negative, values, *settings.shared],
                          outputs=outputs, api_name="guidance_grid")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def guidance_grid(self, prompt, negative_prompt, guidance_values, scheduler, steps, seed, width, height, engine,
                      progress=gr.Progress()):
        values = parse_guidances(guidance_values)
        params = make_params(prompt, negative_prompt, max(values), len(values), scheduler, steps, seed, width, height,
                             engine)
        run = lambda model, on_step: guidance_effect(model, params, values, on_step=on_step)  # noqa: E731
        for effect in stream(self.slot, run, 0, progress):
            item = effect.result
            labels = [f"guidance {g:g}" for g in values]
            sheet = image_ops.grid(item.images, labels, columns=3)
            image_ops.with_parameters(sheet, item.params[0].to_png_text())
            reference = " (plus a guidance-1 image for the distances)" if effect.reference_added else ""
            yield (sheet, gallery(item, labels),
                   status_text(item, f"{len(values)} guidance values in one batch{reference}, seed {params.seed}"),
                   effect_plot(effect), [[_rounded(v) for v in row] for row in effect.table()])

    def guidance_grid_example(self, prompt, negative_prompt, progress=gr.Progress()):
        yield from self.guidance_grid(prompt, negative_prompt, DEFAULT_GRID, *recommended_settings(self.slot),
                                      progress=progress)


def _rounded(value):
    return round(value, 3) if isinstance(value, float) else ("" if value is None else value)
