"""Inside the loop's attention section: at the scrubbed step, where the UNet's cross-attention looked for each
word (the overlay of all prompt words) and for one chosen word (its heat map), from the maps the run kept."""
import gradio as gr

from diffusion_core.history_attention import step_attention

HEADING = "## Where the words' attention looked at this step"


class StepAttentionView:
    """The components of the attention section, and what goes in them."""

    @classmethod
    def build(cls) -> "StepAttentionView":
        view = cls()
        gr.Markdown(HEADING)
        view.note = gr.Markdown(elem_id="loop-attention-text")
        with gr.Row():
            view.overlay = gr.Image(label="Each pixel in the colour of the word it attended to most, at this step",
                                    format="png", type="pil", height=320, elem_id="loop-attention-overlay")
            with gr.Column():
                # Custom values reach the core, whose message names the prompt's words (the dropdown's own would
                # only list its choices).
                view.word = gr.Dropdown([], value="", label="Word (its map at this step)", allow_custom_value=True,
                                        elem_id="loop-attention-word")
                view.heat = gr.Image(label="The word's map at this step", format="png", type="pil", height=256,
                                     elem_id="loop-attention-heat")
        return view

    COUNT = 4  # outputs, in the order `show` returns them

    @property
    def outputs(self) -> list:
        return [self.overlay, self.word, self.heat, self.note]

    @staticmethod
    def show(history, number, word=None) -> tuple:
        """Step `number`'s pictures; a run without maps hides them and says why (an asked-for word is an error)."""
        shown = step_attention(history, number, word)
        kept = shown.overlay is not None
        return (gr.update(value=shown.overlay, visible=kept),
                gr.update(choices=shown.words, value=shown.word, visible=kept),
                gr.update(value=shown.heat_map, visible=kept),
                shown.note)
