"""Text to image: the image emerging every k steps, then the gallery, and the seed's steps kept as a filmstrip."""
import gradio as gr

from diffusion_core import InvalidRequest, generate, history_views
from diffusion_core.history import Recorder
from webapp.common import (cached_examples, gallery, guidance_slider, images_slider, live_preview_radio, make_params,
                           on_gpu, pinned_gallery, prompt_box, recommended_settings, status_text, stream, user_error)
from webapp.examples import examples_for


class Txt2ImgTab:
    def __init__(self, slot, store):
        self.slot = slot
        self.store = store  # the runs whose filmstrips are drawn after them

    def build(self, model, settings):
        with gr.Tab("Text to image", id="txt2img"):
            with gr.Row():
                with gr.Column():
                    self.prompt = prompt_box(model, "a red circle on a blue background")
                    self.negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                    num_images = images_slider(1)
                    preview_every = gr.Number(0, precision=0, label="Preview every k steps (0 = steps // 8)", minimum=0)
                    live_preview = live_preview_radio(model)
                    with gr.Row():
                        run = gr.Button("Generate", variant="primary", elem_id="run-txt2img")
                        stop = gr.Button("Stop", variant="stop")
                with gr.Column():
                    preview = gr.Image(label="Emerging image", format="png", type="pil", height=256)
                    status = gr.Markdown()
            self.gallery = pinned_gallery("gallery-txt2img", 8, label="Images", height=300, preview=False,
                                          object_fit="contain")
            strip = gr.Image(label="Filmstrip of the first image: x_t and predicted x0 every k steps", format="png",
                             type="pil", elem_id="txt2img-filmstrip")
            run_id = gr.State(None)
            cached_examples(model, examples_for(model, "txt2img"), [self.prompt, self.negative, self.guidance],
                            [preview, status, self.gallery], self.txt2img_example)
            self.send = gr.Button("Send selected image to image variation")
        event = run.click(on_gpu(self.txt2img), inputs=[self.prompt, self.negative, self.guidance, num_images,
                                                *settings.shared, preview_every, live_preview],
                          outputs=[preview, status, self.gallery, run_id], api_name="txt2img")
        event.success(self.txt2img_filmstrip, inputs=run_id, outputs=strip, api_name="txt2img_filmstrip")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def txt2img(self, prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height, engine,
                preview_every, live_preview="auto", progress=gr.Progress()):
        params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height,
                             engine)
        every = int(preview_every or 0) or max(1, int(steps or 8) // 8)

        def run(model, on_step):
            recorder = Recorder(model, params, every=every, then=on_step)  # the first image's kept steps
            result = generate(model, params, on_step=recorder)
            recorder.history.engine = result.engine
            return result, recorder.history

        for item in stream(self.slot, run, every, progress, live_preview):
            if isinstance(item, list):
                yield item[0], item[1], gr.skip(), None
            else:
                result, history = item
                yield result.images[0], status_text(result), gallery(result), self.store.add(history)

    def txt2img_filmstrip(self, run_id):
        """The last run's kept steps as a labelled strip (nothing after a stopped run)."""
        if not run_id:
            return None
        try:
            model = self.slot.get()
            history = self.store.get(run_id)
            history.check_model(model)
            return history_views.filmstrip(model, history)
        except (InvalidRequest, FloatingPointError) as error:
            raise user_error(error) from None

    def txt2img_example(self, prompt, negative_prompt, guidance, progress=gr.Progress()):
        for preview, status, images, _ in self.txt2img(prompt, negative_prompt, guidance, 1,
                                                       *recommended_settings(self.slot), 0, progress=progress):
            yield preview, status, images
