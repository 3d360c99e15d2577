"""Seed interpolation: frames of slerp between two seeds' initial noise, one prompt; a strip and an animation."""
import hashlib
import tempfile
from pathlib import Path

import gradio as gr

from diffusion_core.compare.seed_interpolation import DEFAULT_FRAMES, MAX_FRAMES, seed_interpolation
from webapp.common import DEFAULT_SEED, guidance_slider, make_params, on_gpu, pinned_gallery, prompt_box, stream

ANIMATIONS = Path(tempfile.gettempdir()) / "diffusion-explorer-animations"
KEEP_ANIMATIONS = 20  # files on disk at most; gradio copies each into its own cache when it is sent


class SeedInterpolationTab:
    def __init__(self, slot):
        self.slot = slot

    def build(self, model, settings):
        with gr.Tab("Seed interpolation", id="seed-interpolation"):
            gr.Markdown("Why does a seed set the composition? The seed only picks the starting noise. These frames "
                        "walk from seed A's noise (the settings' seed) to seed B's along the sphere (slerp, which "
                        "keeps the noise's size), same prompt, in one batch.")
            with gr.Row():
                with gr.Column():
                    prompt = prompt_box(model, "a yellow star on a purple background")
                    negative = gr.Textbox("", label="Negative prompt")
                    self.guidance = guidance_slider(model.defaults["guidance"])
                    with gr.Row():
                        seed_b = gr.Number(DEFAULT_SEED + 1, precision=0, label="Seed B", minimum=0)
                        frames = gr.Slider(2, MAX_FRAMES, value=DEFAULT_FRAMES, step=1, label="Frames")
                    with gr.Row():
                        run = gr.Button("Interpolate", variant="primary", elem_id="run-seed-interpolation")
                        stop = gr.Button("Stop", variant="stop")
                    status = gr.Markdown()
                animation = gr.Image(label="Animation (forward, then back)", type="filepath", height=256,
                                     elem_id="seed-animation")
            strip = gr.Image(label="Seed A to seed B", format="png", type="pil")
            cells = pinned_gallery("gallery-seed-interpolation", 8, label="Frames", height=220, preview=False,
                                   object_fit="contain")
        event = run.click(on_gpu(self.seed_interpolation),
                          inputs=[prompt, negative, self.guidance, seed_b, frames, *settings.shared],
                          outputs=[strip, animation, cells, status], api_name="seed_interpolation")
        stop.click(None, cancels=[event], api_name=False)
        return self

    def seed_interpolation(self, prompt, negative_prompt, guidance, seed_b, frames, scheduler, steps, seed, width,
                           height, engine, progress=gr.Progress()):
        params = make_params(prompt, negative_prompt, guidance, 1, scheduler, steps, seed, width, height, engine)
        run = lambda model, on_step: seed_interpolation(model, params, seed_b, frames, on_step)  # noqa: E731
        for walk in stream(self.slot, run, 0, progress):
            yield (walk.strip, save_animation(walk.animation_gif), list(zip(walk.result.images, walk.captions())),
                   "  \n".join([f"{len(walk.fractions)} frames from seed {walk.seed_a} to seed {walk.seed_b}, "
                                "one batch."] + walk.result.notes))


def save_animation(gif: bytes) -> str:
    ANIMATIONS.mkdir(exist_ok=True)
    path = ANIMATIONS / f"{hashlib.sha1(gif).hexdigest()[:16]}.gif"
    path.write_bytes(gif)
    for old in sorted(ANIMATIONS.glob("*.gif"), key=lambda p: p.stat().st_mtime)[:-KEEP_ANIMATIONS]:
        old.unlink(missing_ok=True)
    return str(path)
