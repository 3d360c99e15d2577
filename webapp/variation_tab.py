"""Image variation: img2img from an upload or a shipped example, with the steps that actually ran;
and the other tabs' "send to image variation" buttons."""
import gradio as gr
from PIL import Image

from diffusion_core import InvalidRequest, generate
from diffusion_core import images as image_ops
from diffusion_core.models import PROJECT_ROOT
from webapp.common import (gallery, guidance_slider, images_slider, make_params, on_gpu, pinned_gallery, prompt_box,
                           status_text, stream)

EXAMPLES_DIR = PROJECT_ROOT / "assets" / "examples"


class ImageVariationTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        shapes = model.known_words is not None
        d = model.defaults
        with gr.Tab("Image variation", id="variation"):
            with gr.Row():
                with gr.Column():
                    self.init_image = gr.Image(label="Init image", type="pil", format="png",
                                               sources=["upload", "clipboard"], elem_id="init-image")
                    examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
                    if examples:
                        gr.Examples(examples, inputs=[self.init_image], label="Shipped init images")
                with gr.Column():
                    prompt = prompt_box(model, "a green circle on a blue background")
                    negative = gr.Textbox("" if shapes else "cartoon, sketch, orbiting moon", label="Negative prompt")
                    self.guidance = guidance_slider(d["guidance"] if shapes else 6.0)
                    self.strength = gr.Slider(0.05, 1, value=d["strength"], step=0.05,
                                              label="Strength (how much to change)")
                    num_images = images_slider(9 if shapes else 4)
                    with gr.Row():
                        run = gr.Button("Make variations", variant="primary", elem_id="run-variation")
                        stop = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            variations = pinned_gallery("gallery-variation", 9, label="Variations", height=300, preview=False,
                                        object_fit="contain")
        event = run.click(on_gpu(self.image_variation), inputs=[self.init_image, prompt, negative, self.guidance,
                                                        self.strength, num_images, *settings.shared],
                          outputs=[variations, status], api_name="image_variation")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def image_variation(self, init_image, prompt, negative_prompt, guidance, strength, num_images, scheduler, steps,
                        seed, width, height, engine, progress=gr.Progress()):
        if init_image is None:
            raise gr.Error("Upload an init image (or pick an example) first.")
        try:
            init = image_ops.load_image(init_image)
        except InvalidRequest as error:
            raise gr.Error(str(error)) from None
        params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height,
                             engine, strength=strength)
        run = lambda model, on_step: generate(model, params, init_image=init, on_step=on_step)  # noqa: E731
        for item in stream(self.slot, run, 0, progress):
            yield gallery(item), status_text(item, f"{item.steps_run} of {params.steps} requested steps ran "
                                                  f"(strength {params.strength:g}).")

    def wire_send_buttons(self, senders, tabs):
        """Each (button, gallery): the gallery's selected image becomes the init image, and the tab opens."""
        for button, source in senders:
            selected = gr.State(None)
            source.select(remember_selection, outputs=selected, api_name=False)
            button.click(send_to_variation, inputs=[source, selected], outputs=[self.init_image, tabs],
                         api_name=False)


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
