"""Attention maps: where in the image the UNet's cross-attention looked for each word, over all steps or at one.

A run keeps its maps in the page's session (gr.State), so picking another word or step redraws from them
without denoising again.
"""
from dataclasses import replace

import gradio as gr

from diffusion_core import InvalidRequest
from diffusion_core import params as limits
from diffusion_core.attention_maps import attention_maps, word_index, words_of
from webapp.common import (ENGINES, guidance_slider, make_params, on_gpu, pinned_gallery, prompt_box, status_text,
                           stream, user_error)

EXPLANATION = ("Every cross-attention layer of the UNet lets each image position look at the prompt's tokens. "
               "Summed over a word's tokens, averaged over heads, layers and steps (as DAAM does), that gives "
               "each word a heat map over the image. The overlay paints each pixel in the colour of the word it "
               "attended to most. Negative-prompt words are read from the unconditional branch. The shipped "
               "shapes model was taught where its colour, shape and background words act, by a loss on these "
               "very maps (its model card says why and how); a real SD model's maps are what its own "
               "training left.")
MAPS_KEPT_S = 3600
NEGATIVE_COLOUR = "#a0a0a0"  # negative words are not in the overlay, so they get no overlay colour


class AttentionTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        with gr.Tab("Attention maps", id="attention"):
            gr.Markdown(EXPLANATION)
            with gr.Row():
                with gr.Column():
                    prompt = prompt_box(model, "a red circle on a blue background")
                    negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                    with gr.Row():
                        run = gr.Button("Map attention", variant="primary", elem_id="run-attention")
                        stop = gr.Button("Stop", variant="stop")
                    status = gr.Markdown()
                overlay = gr.Image(label="Each pixel in the colour of the word it attended to most", format="png",
                                   type="pil", height=340, elem_id="attention-overlay")
            legend = gr.HighlightedText(label="Words: click one to see its map", show_inline_category=False,
                                        elem_id="attention-words")
            with gr.Row():
                with gr.Column():
                    word = gr.Textbox("", label="Word (click one above, or type it or its number; blank: the first)",
                                      elem_id="attention-word")
                    # The run's own step count is checked in the core; the slider's bound is the largest possible
                    # until a run sets it to its steps.
                    step = gr.Slider(0, limits.MAX_STEPS + 1, value=0, step=1, label="Step (0 = all steps together)",
                                     elem_id="attention-step")
                heat = gr.Image(label="The word's map", format="png", type="pil", height=340, elem_id="attention-heat")
            gallery = pinned_gallery("gallery-attention", 8, label="Every word's map", height=220, preview=False,
                                     object_fit="contain")
            # API callers never come back for a redraw, and pages may stay open: an hour bounds what sessions hold.
            maps = gr.State(time_to_live=MAPS_KEPT_S)
        event = run.click(on_gpu(self.attention_maps),
                          inputs=[prompt, negative, self.guidance, *settings.shared, word, step],
                          outputs=[overlay, heat, gallery, legend, word, step, status, maps], api_name="attention_maps")
        # The slider's range follows the run on the page only: a range set by the API event itself would stay with
        # the caller's session and refuse a later call's larger step.
        event.then(self.fit_step_slider, inputs=maps, outputs=step, api_name=False)
        stop.click(None, cancels=[event], api_name=False)
        # Redraws from the session's maps: they need a run made on this page, so they are not API endpoints.
        legend.select(self.pick_word, inputs=[maps, step], outputs=[heat, word], api_name=False)
        word.submit(self.show, inputs=[maps, word, step], outputs=[overlay, heat, gallery], api_name=False)
        step.input(self.show, inputs=[maps, word, step], outputs=[overlay, heat, gallery], api_name=False,
                   trigger_mode="always_last")  # a drag redraws at its last position, not at every one
        return self

    def attention_maps(self, prompt, negative_prompt, guidance, scheduler, steps, seed, width, height, engine,
                       word="", step=0, progress=gr.Progress()):
        params = replace(make_params(prompt, negative_prompt, guidance, 1, scheduler, steps, seed, width, height,
                                     engine), engine="manual")
        try:  # a mistyped word is caught before the run
            word_index(words_of(self.slot.get(), params.validated()), word)
        except InvalidRequest as error:
            raise user_error(error) from None
        for result in stream(self.slot, lambda model, on_step: attention_maps(model, params, on_step), 0, progress):
            chosen, step_index = self._choice(result, word, step)
            overlay, heat, gallery = self._pictures(result, chosen, step_index)
            extra = " ".join(result.notes[len(result.generation.notes):])
            if ENGINES.get(engine, engine) == "pipeline":
                extra += " Attention maps are recorded in the manual loop, which made this image."
            yield (overlay, heat, gallery, self._legend(result), result.words[chosen].label,
                   0 if step_index is None else step_index + 1,
                   status_text(result.generation, extra.strip()), result)

    @staticmethod
    def fit_step_slider(maps):
        return gr.Slider(maximum=maps.steps) if maps is not None else gr.skip()

    def pick_word(self, maps, step, selected: gr.SelectData):
        if maps is None:
            raise gr.Error("Map the attention first (the Map attention button).")
        chosen, step_index = self._choice(maps, selected.index, step)
        return maps.heat_map_image(chosen, step_index), maps.words[chosen].label

    def show(self, maps, word, step):
        if maps is None:
            raise gr.Error("Map the attention first (the Map attention button).")
        return self._pictures(maps, *self._choice(maps, word, step))

    @staticmethod
    def _choice(maps, word, step):
        try:
            return maps.word_index(word), maps.step_index(step)
        except InvalidRequest as error:
            raise user_error(error) from None

    @staticmethod
    def _pictures(maps, chosen, step_index):
        gallery = [(maps.heat_map_image(i, step_index), w.label) for i, w in enumerate(maps.words)]
        return maps.overlay_image(step_index), maps.heat_map_image(chosen, step_index), gallery

    @staticmethod
    def _legend(maps):
        colours = {w.label: maps.colour(i) if w.source == "prompt" else NEGATIVE_COLOUR
                   for i, w in enumerate(maps.words)}
        return gr.HighlightedText(value=[(w.label, w.label) for w in maps.words], color_map=colours)
