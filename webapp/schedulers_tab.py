"""Schedulers: one prompt and seed through every scheduler at several step counts, each cell timed."""
import gradio as gr

from diffusion_core.compare.scheduler_grid import DEFAULT_STEP_COUNTS, MAX_CELLS, compare_schedulers
from diffusion_core.schedulers import LABELS
from webapp.common import guidance_slider, make_params, on_gpu, pinned_gallery, prompt_box, stream

DEFAULT_STEP_TEXT = ", ".join(map(str, DEFAULT_STEP_COUNTS))


def split_list(text) -> list[str]:
    return [part.strip() for part in str(text or "").replace(";", ",").split(",") if part.strip()]


class SchedulersTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        with gr.Tab("Schedulers", id="schedulers"):
            gr.Markdown("Which scheduler should I use? The same prompt and seed through each one, at several step "
                        f"counts; every cell is its own run, timed (at most {MAX_CELLS} cells). Uses the seed, size "
                        "and engine of the settings above.")
            with gr.Row():
                with gr.Column():
                    prompt = prompt_box(model, "a red circle on a blue background")
                    negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                with gr.Column():
                    schedulers = gr.CheckboxGroup(list(LABELS.values()), value=list(LABELS.values()),
                                                  label="Schedulers")
                    step_counts = gr.Textbox(DEFAULT_STEP_TEXT, label="Step counts (comma-separated)")
                    with gr.Row():
                        run = gr.Button("Compare schedulers", variant="primary", elem_id="run-schedulers")
                        stop = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            sheet = gr.Image(label="Columns: schedulers; rows: step counts; seconds under each cell", format="png",
                             type="pil")
            cells = pinned_gallery("gallery-schedulers", 6, label="Cells", height=300, preview=False,
                                   object_fit="contain")
        event = run.click(on_gpu(self.compare_schedulers),
                          inputs=[prompt, negative, self.guidance, schedulers, step_counts, settings.seed,
                                  settings.width, settings.height, settings.engine],
                          outputs=[sheet, cells, status], api_name="compare_schedulers")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def compare_schedulers(self, prompt, negative_prompt, guidance, schedulers, step_counts, seed, width, height,
                           engine, progress=gr.Progress()):
        params = make_params(prompt, negative_prompt, guidance, 1, None, 1, seed, width, height, engine)
        run = lambda model, on_step: compare_schedulers(model, params, list(schedulers or []),  # noqa: E731
                                                        split_list(step_counts), on_step)
        for grid in stream(self.slot, run, 0, progress):
            yield (grid.sheet, [(cell.result.images[0], cell.label) for cell in grid.cells],
                   f"{len(grid.cells)} cells, each its own run; seconds are wall time on this server "
                   f"({self.slot.get().device.type}), after a one-step warm-up of each scheduler.")
