"""The Gradio app: four tabs to watch and steer diffusion. Layout and wiring only;
the handlers are in webapp/, the diffusion in diffusion_core/.

    python app.py [--port 7860] [--share] [--model assets/shapes-sd]
"""
import argparse
import os

import gradio as gr

from diffusion_core import DEFAULT_MODEL
from diffusion_core.models import PROJECT_ROOT
from diffusion_core.schedulers import LABELS
from webapp import handlers
from webapp.model_slot import ModelSlot, describe

EXAMPLES_DIR = PROJECT_ROOT / "assets" / "examples"
EXAMPLES_CACHE = os.environ.get("GRADIO_EXAMPLES_CACHE", ".gradio/cached_examples")
QUEUE_SIZE = 20
# Gradio lays a gallery out in as many columns as it has images, so a single image would fill the
# whole width, cropped to the gallery's height. Pinning the column count keeps thumbnails their size.
GALLERY_COLUMNS = {"gallery-txt2img": 8, "gallery-grid": 9, "gallery-without": 3, "gallery-negative": 3,
                   "gallery-variation": 9}
GALLERY_CSS = "\n".join(f"#{name} .grid-container {{ --grid-cols: {columns} !important; }}"
                        for name, columns in GALLERY_COLUMNS.items())

try:  # ZeroGPU on Hugging Face Spaces: borrow a GPU for each generation
    import spaces
    on_gpu = spaces.GPU
except ImportError:
    def on_gpu(fn):
        return fn


def cached_examples(model, tab, inputs, outputs, fn):
    """Prompt examples for the loaded model, run on first click and cached."""
    return gr.Examples(handlers.examples_for(model, tab), inputs=inputs, outputs=outputs, fn=fn,
                       cache_examples=True, cache_mode="lazy", label="Examples (cached on first use)")


def build_demo(model_id: str) -> gr.Blocks:
    handlers.slot = ModelSlot(model_id)
    model = handlers.slot.get()
    # Gradio names its example caches by position, not content: after a model update the old
    # pictures would show. A folder per version of the model's files keeps them apart.
    os.environ["GRADIO_EXAMPLES_CACHE"] = os.path.join(EXAMPLES_CACHE, model.fingerprint)
    d = model.defaults
    shapes = model.known_words is not None

    with gr.Blocks(title="Diffusion explorer") as demo:
        gr.Markdown("# Diffusion explorer\nWatch a text-to-image diffusion model denoise, step by step, "
                    "with our own classifier-free-guidance loop.")
        with gr.Accordion("Settings (shared by every tab)", open=True):
            model_info = gr.Markdown(describe(model))
            with gr.Row():
                model_box = gr.Textbox(model.model_id if model.model_id != DEFAULT_MODEL else "assets/shapes-sd",
                                       label="Model (hub id or folder under assets/)", scale=3)
                load_button = gr.Button("Load model", scale=1)
            with gr.Row():
                scheduler = gr.Dropdown(handlers.SCHEDULER_CHOICES, value=LABELS[d["scheduler"]], label="Scheduler")
                steps = gr.Slider(1, 200, value=d["steps"], step=1, label="Steps")
                seed = gr.Number(193, precision=0, label="Seed", minimum=0)
                randomize = gr.Button("Random seed", size="sm")
            with gr.Row():
                width = gr.Slider(64, 1024, value=d["width"], step=8, label="Width")
                height = gr.Slider(64, 1024, value=d["height"], step=8, label="Height")
                engine = gr.Radio(list(handlers.ENGINES), value="manual CFG loop", label="Engine")
            with gr.Row():
                png_drop = gr.File(label="Drop a PNG made here to restore its settings", file_types=[".png"],
                                   type="filepath", height=120)
                restore_note = gr.Markdown()
        shared = [scheduler, steps, seed, width, height, engine]

        with gr.Tabs() as tabs:
            with gr.Tab("Text to image", id="txt2img"):
                with gr.Row():
                    with gr.Column():
                        prompt = gr.Textbox("a red circle on a blue background" if shapes else "", label="Prompt", lines=2)
                        negative = gr.Textbox("", label="Negative prompt")
                        guidance = gr.Slider(0, 30, value=d["guidance"], step=0.25, label="Guidance")
                        num_images = gr.Slider(1, 16, value=1, step=1, label="Number of images")
                        preview_every = gr.Number(0, precision=0, label="Preview every k steps (0 = steps // 8)", minimum=0)
                        with gr.Row():
                            run_t2i = gr.Button("Generate", variant="primary", elem_id="run-txt2img")
                            stop_t2i = gr.Button("Stop", variant="stop")
                    with gr.Column():
                        preview = gr.Image(label="Emerging image", format="png", type="pil", height=256)
                        status_t2i = gr.Markdown()
                gallery_t2i = gr.Gallery(label="Images", format="png", columns=GALLERY_COLUMNS["gallery-txt2img"],
                                         height=300, preview=False, object_fit="contain", elem_id="gallery-txt2img")
                cached_examples(model, "txt2img", [prompt, negative, guidance], [preview, status_t2i, gallery_t2i],
                                handlers.txt2img_example)
                send_t2i = gr.Button("Send selected image to image variation")

            with gr.Tab("Guidance grid", id="grid"):
                with gr.Row():
                    with gr.Column():
                        prompt_g = gr.Textbox("a yellow star on a purple background" if shapes else "", label="Prompt", lines=2)
                        negative_g = gr.Textbox("", label="Negative prompt")
                        values_g = gr.Textbox(handlers.DEFAULT_GRID, label="Guidance values (comma-separated)")
                        with gr.Row():
                            run_g = gr.Button("Make grid", variant="primary", elem_id="run-grid")
                            stop_g = gr.Button("Stop", variant="stop")
                        status_g = gr.Markdown()
                    grid_image = gr.Image(label="Same seed, different guidance", format="png", type="pil")
                gallery_g = gr.Gallery(label="Cells", format="png", columns=GALLERY_COLUMNS["gallery-grid"],
                                       height=200, preview=False, object_fit="contain", elem_id="gallery-grid")
                cached_examples(model, "grid", [prompt_g, negative_g], [grid_image, gallery_g, status_g],
                                handlers.guidance_grid_example)
                send_g = gr.Button("Send selected image to image variation")

            with gr.Tab("Negative prompt", id="negative"):
                gr.Markdown("The negative prompt takes the empty prompt's place in the unconditional branch, so "
                            "guidance pushes *away* from it. It acts on the whole picture: a colour in the negative "
                            "prompt steers the background away from it too.")
                with gr.Row():
                    prompt_n = gr.Textbox("a circle" if shapes else "", label="Prompt", lines=2)
                    negative_n = gr.Textbox("blue" if shapes else "", label="Negative prompt")
                with gr.Row():
                    num_n = gr.Slider(1, 16, value=9, step=1, label="Number of images")
                    guidance_n = gr.Slider(0, 30, value=d["guidance"], step=0.25, label="Guidance")
                with gr.Row():
                    run_n = gr.Button("Compare", variant="primary", elem_id="run-negative")
                    stop_n = gr.Button("Stop", variant="stop")
                status_n = gr.Markdown()
                with gr.Row():
                    gallery_without = gr.Gallery(label="Without the negative prompt", format="png",
                                                 columns=GALLERY_COLUMNS["gallery-without"], elem_id="gallery-without")
                    gallery_with = gr.Gallery(label="With the negative prompt", format="png",
                                              columns=GALLERY_COLUMNS["gallery-negative"], elem_id="gallery-negative")
                cached_examples(model, "negative", [prompt_n, negative_n], [gallery_without, gallery_with, status_n],
                                handlers.negative_prompt_example)
                send_n = gr.Button("Send selected image (with negative) to image variation")

            with gr.Tab("Image variation", id="variation"):
                with gr.Row():
                    with gr.Column():
                        init_image = gr.Image(label="Init image", type="pil", format="png", sources=["upload", "clipboard"], elem_id="init-image")
                        examples = sorted(str(p) for p in EXAMPLES_DIR.glob("*.png"))
                        if examples:
                            gr.Examples(examples, inputs=[init_image], label="Shipped init images")
                    with gr.Column():
                        prompt_v = gr.Textbox("a green circle on a blue background" if shapes else "", label="Prompt", lines=2)
                        negative_v = gr.Textbox("" if shapes else "cartoon, sketch, orbiting moon", label="Negative prompt")
                        guidance_v = gr.Slider(0, 30, value=d["guidance"] if shapes else 6.0, step=0.25, label="Guidance")
                        strength = gr.Slider(0.05, 1, value=d["strength"], step=0.05, label="Strength (how much to change)")
                        num_v = gr.Slider(1, 16, value=9 if shapes else 4, step=1, label="Number of images")
                        with gr.Row():
                            run_v = gr.Button("Make variations", variant="primary", elem_id="run-variation")
                            stop_v = gr.Button("Stop", variant="stop")
                status_v = gr.Markdown()
                gallery_v = gr.Gallery(label="Variations", format="png", columns=GALLERY_COLUMNS["gallery-variation"],
                                       height=300, preview=False, object_fit="contain", elem_id="gallery-variation")

        # Wiring.
        randomize.click(lambda: handlers.random_seed(), outputs=seed, api_name=False)
        load_button.click(handlers.switch_model, inputs=model_box,
                          outputs=[model_info, scheduler, steps, width, height, guidance, guidance_n, guidance_v, strength],
                          api_name="load_model")
        png_drop.upload(handlers.restore_from_png, inputs=png_drop,
                        outputs=[prompt, negative, guidance, scheduler, steps, seed, width, height, engine, strength,
                                 restore_note], api_name=False)
        t2i = run_t2i.click(on_gpu(handlers.txt2img),
                            inputs=[prompt, negative, guidance, num_images, *shared, preview_every],
                            outputs=[preview, status_t2i, gallery_t2i], api_name="txt2img")
        grid = run_g.click(on_gpu(handlers.guidance_grid_tab), inputs=[prompt_g, negative_g, values_g, *shared],
                           outputs=[grid_image, gallery_g, status_g], api_name="guidance_grid")
        neg = run_n.click(on_gpu(handlers.negative_prompt_tab), inputs=[prompt_n, negative_n, num_n, guidance_n, *shared],
                          outputs=[gallery_without, gallery_with, status_n], api_name="negative_prompt")
        var = run_v.click(on_gpu(handlers.image_variation),
                          inputs=[init_image, prompt_v, negative_v, guidance_v, strength, num_v, *shared],
                          outputs=[gallery_v, status_v], api_name="image_variation")
        for stop, event in ((stop_t2i, t2i), (stop_g, grid), (stop_n, neg), (stop_v, var)):
            stop.click(None, cancels=[event], api_name=False)
        for button, source in ((send_t2i, gallery_t2i), (send_g, gallery_g), (send_n, gallery_with)):
            selected = gr.State(None)
            source.select(handlers.remember_selection, outputs=selected, api_name=False)
            button.click(handlers.send_to_variation, inputs=[source, selected], outputs=[init_image, tabs], api_name=False)
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
                allowed_paths=[str(EXAMPLES_DIR)], footer_links=["api"], css=GALLERY_CSS)
