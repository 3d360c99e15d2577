"""Strength sweep: one init image at several strengths in one batch, the noised init each strength starts from."""
import gradio as gr

from diffusion_core import InvalidRequest
from diffusion_core import images as image_ops
from diffusion_core.compare.strength_sweep import DEFAULT_STRENGTHS, MAX_STRENGTHS, strength_sweep
from webapp.common import guidance_slider, make_params, on_gpu, pinned_gallery, prompt_box, stream
from webapp.schedulers_tab import split_list
from webapp.variation_tab import EXAMPLES_DIR

DEFAULT_STRENGTH_TEXT = ", ".join(f"{s:g}" for s in DEFAULT_STRENGTHS)


class StrengthSweepTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        with gr.Tab("Strength sweep", id="strength-sweep"):
            gr.Markdown("Why does strength 0.5 barely change my image? Strength s noises the init image to the "
                        "timestep s of the way up the schedule and runs only the last s of the steps. Each "
                        f"column: the noised init it starts from, and the result (at most {MAX_STRENGTHS} "
                        "strengths, one batch).")
            with gr.Row():
                with gr.Column():
                    init_image = gr.Image(label="Init image", type="pil", format="png", sources=["upload", "clipboard"],
                                          elem_id="sweep-init-image", height=200)
                    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
                    if examples:
                        gr.Examples(examples, inputs=[init_image], label="Shipped init images")
                with gr.Column():
                    prompt = prompt_box(model, "a green circle on a blue background")
                    negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                    strengths = gr.Textbox(DEFAULT_STRENGTH_TEXT, label="Strengths (comma-separated, each in (0, 1])")
                    with gr.Row():
                        run = gr.Button("Sweep strengths", variant="primary", elem_id="run-strength-sweep")
                        stop = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            sheet = gr.Image(label="Init, the noised init per strength, and the results", format="png", type="pil")
            cells = pinned_gallery("gallery-strength-sweep", 5, label="Results", height=260, preview=False,
                                   object_fit="contain")
        event = run.click(on_gpu(self.strength_sweep),
                          inputs=[init_image, prompt, negative, self.guidance, strengths, *settings.shared],
                          outputs=[sheet, cells, status], api_name="strength_sweep")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def strength_sweep(self, init_image, prompt, negative_prompt, guidance, strengths, scheduler, steps, seed, width,
                       height, engine, progress=gr.Progress()):
        if init_image is None:
            raise gr.Error("Upload an init image (or pick an example) first.")
        try:
            init = image_ops.load_image(init_image)
        except InvalidRequest as error:
            raise gr.Error(str(error)) from None
        params = make_params(prompt, negative_prompt, guidance, 1, scheduler, steps, seed, width, height, engine)
        run = lambda model, on_step: strength_sweep(model, params, init, split_list(strengths), on_step)  # noqa: E731
        for sweep in stream(self.slot, run, 0, progress):
            yield (sweep.sheet, list(zip(sweep.result.images, sweep.captions())),
                   "  \n".join(sweep.captions() + sweep.result.notes) + "  \nAll strengths ran in one batch: each "
                   "joined when its start timestep came up.")
