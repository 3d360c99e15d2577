"""Negative prompt: the same seeds without and with the negative prompt, side by side."""
from dataclasses import replace

import gradio as gr

from diffusion_core import generate
from webapp.common import (cached_examples, gallery, guidance_slider, images_slider, make_params, on_gpu,
                           pinned_gallery, prompt_box, recommended_settings, status_text, stream)
from webapp.examples import examples_for

EXPLANATION = ("The negative prompt takes the empty prompt's place in the unconditional branch, so guidance pushes "
               "*away* from it. It acts on the whole picture: a colour in the negative prompt steers the background "
               "away from it too.")


class NegativePromptTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        shapes = model.known_words is not None
        with gr.Tab("Negative prompt", id="negative"):
            gr.Markdown(EXPLANATION)
            with gr.Row():
                prompt = prompt_box(model, "a circle")
                negative = gr.Textbox("blue" if shapes else "", label="Negative prompt")
            with gr.Row():
                num_images = images_slider(9)
                self.guidance = guidance_slider(model.defaults["guidance"])
            with gr.Row():
                run = gr.Button("Compare", variant="primary", elem_id="run-negative")
                stop = gr.Button("Stop", variant="stop")
            status = gr.Markdown()
            with gr.Row():
                without = pinned_gallery("gallery-without", 3, label="Without the negative prompt")
                self.gallery = pinned_gallery("gallery-negative", 3, label="With the negative prompt")
            cached_examples(model, examples_for(model, "negative"), [prompt, negative], [without, self.gallery, status],
                            self.negative_prompt_example)
            self.send = gr.Button("Send selected image (with negative) to image variation")
        event = run.click(on_gpu(self.negative_prompt), inputs=[prompt, negative, num_images, self.guidance, *settings.shared],
                          outputs=[without, self.gallery, status], api_name="negative_prompt")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def negative_prompt(self, prompt, negative_prompt, num_images, guidance, scheduler, steps, seed, width, height,
                        engine, progress=gr.Progress()):
        params = make_params(prompt, negative_prompt, guidance, num_images, scheduler, steps, seed, width, height,
                             engine)
        if not params.negative_prompt.strip():
            raise gr.Error("Type a negative prompt to compare against.")

        def run_both(model, on_step):
            return (generate(model, params, on_step=on_step),
                    generate(model, replace(params, negative_prompt=""), on_step=on_step))

        for with_negative, without in stream(self.slot, run_both, 0, progress):
            yield (gallery(without), gallery(with_negative),
                   status_text(with_negative, "Left: without the negative prompt. Right: with it. Same seeds, pair by pair."))

    def negative_prompt_example(self, prompt, negative_prompt, progress=gr.Progress()):
        yield from self.negative_prompt(prompt, negative_prompt, 9, self.slot.get().defaults["guidance"],
                                        *recommended_settings(self.slot), progress=progress)
