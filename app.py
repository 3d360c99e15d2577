"""The Gradio app: nine tabs to watch and steer diffusion. Layout and wiring only;
the handlers are in webapp/, the diffusion in diffusion_core/.

    python app.py [--port 7860] [--share] [--model assets/shapes-sd]
"""
import argparse
import os

import gradio as gr

from diffusion_core import DEFAULT_MODEL
from diffusion_core.history import HistoryStore
from webapp.attention_tab import AttentionTab
from webapp.common import gallery_css
from webapp.grid_tab import GuidanceGridTab
from webapp.interpolation_tab import SeedInterpolationTab
from webapp.loop_tab import InsideTheLoopTab
from webapp.model_slot import ModelSlot
from webapp.negative_tab import NegativePromptTab
from webapp.schedulers_tab import SchedulersTab
from webapp.settings import ModelSwitch, build_settings, restore_from_png
from webapp.strength_tab import StrengthSweepTab
from webapp.txt2img_tab import Txt2ImgTab
from webapp.variation_tab import EXAMPLES_DIR, ImageVariationTab

EXAMPLES_CACHE = os.environ.get("GRADIO_EXAMPLES_CACHE", ".gradio/cached_examples")
QUEUE_SIZE = 20

def build_demo(model_id: str) -> gr.Blocks:
    slot = ModelSlot(model_id)
    histories = HistoryStore()  # the runs the loop views look inside, shared by the tabs
    model = slot.get()
    # Gradio names its example caches by position, not content: after a model update the old
    # pictures would show. A folder per version of the model's files keeps them apart.
    os.environ["GRADIO_EXAMPLES_CACHE"] = os.path.join(EXAMPLES_CACHE, model.fingerprint)

    with gr.Blocks(title="Diffusion explorer") as demo:
        gr.Markdown("# Diffusion explorer\nWatch a text-to-image diffusion model denoise, step by step, "
                    "with our own classifier-free-guidance loop.")
        settings = build_settings(model)
        with gr.Tabs() as tabs:
            txt2img = Txt2ImgTab(slot, histories).build(model, settings)
            grid = GuidanceGridTab(slot).build(model, settings)
            negative = NegativePromptTab(slot).build(model, settings)
            variation = ImageVariationTab(slot).build(model, settings)
            loop = InsideTheLoopTab(slot, histories).build(model, settings)
            attention = AttentionTab(slot).build(model, settings)
            schedulers = SchedulersTab(slot).build(model, settings)
            sweep = StrengthSweepTab(slot).build(model, settings)
            walk = SeedInterpolationTab(slot).build(model, settings)
        # Gradio's tab row (6.31) files each tab under its position among all of gr.Tabs' children, gr.State
        # included: one State between two tabs puts every later tab in its neighbour's slot (one label twice,
        # the next gone). So every component, State too, is made inside its own tab.
        strays = [type(child).__name__ for child in tabs.children if not isinstance(child, gr.Tab)]
        if strays:  # a startup error, not an assert: `python -O` would skip an assert
            raise RuntimeError(f"gr.Tabs holds {strays} besides its tabs; make them inside a gr.Tab")

        guidance_sliders = [txt2img.guidance, negative.guidance, variation.guidance, loop.guidance,
                            attention.guidance, schedulers.guidance, sweep.guidance, walk.guidance]
        switch = ModelSwitch(slot, len(guidance_sliders))
        settings.load_button.click(
            switch.load_model, inputs=settings.model_box,
            outputs=[settings.model_info, settings.scheduler, settings.steps, settings.width, settings.height,
                     *guidance_sliders, variation.strength], api_name="load_model")
        settings.png_drop.upload(
            restore_from_png, inputs=settings.png_drop,
            outputs=[txt2img.prompt, txt2img.negative, txt2img.guidance, *settings.shared, variation.strength,
                     settings.restore_note], api_name=False)
        variation.wire_send_buttons([(txt2img.send, txt2img.gallery), (grid.send, grid.gallery),
                                     (negative.send, negative.gallery)], tabs)
    demo.queue(max_size=QUEUE_SIZE, default_concurrency_limit=1)
    return demo


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--share", action="store_true", help="also serve on a public gradio.live link")
    parser.add_argument("--model", default=os.environ.get("DIFFUSION_MODEL", DEFAULT_MODEL))
    return parser.parse_args(argv)


# Spaces imports this module and serves `demo`.
_args = parse_args([]) if __name__ != "__main__" else parse_args()
demo = build_demo(_args.model)

if __name__ == "__main__":
    demo.launch(server_name=_args.host, server_port=_args.port, share=_args.share, show_error=True,
                allowed_paths=[str(EXAMPLES_DIR)], footer_links=["api"], css=gallery_css())
