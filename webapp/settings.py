"""The settings every tab shares (model, scheduler, steps, seed, size, engine) and their handlers:
loading another model, a random seed, restoring settings from a PNG made here."""
from dataclasses import dataclass

import gradio as gr
from PIL import Image

from diffusion_core import DEFAULT_MODEL, GenerationParams, InvalidRequest, ModelLoadError
from diffusion_core import params as limits
from diffusion_core.schedulers import LABELS
from diffusion_core.seeds import random_seed
from webapp.common import DEFAULT_SEED, ENGINE_LABELS, ENGINES, MANUAL_ENGINE, SCHEDULER_CHOICES
from webapp.model_slot import describe


@dataclass
class Settings:
    model_info: gr.Markdown
    model_box: gr.Textbox
    load_button: gr.Button
    scheduler: gr.Dropdown
    steps: gr.Slider
    seed: gr.Number
    randomize: gr.Button
    width: gr.Slider
    height: gr.Slider
    engine: gr.Radio
    png_drop: gr.File
    restore_note: gr.Markdown

    @property
    def shared(self) -> list:
        """The inputs every generation handler takes after its own, in this order."""
        return [self.scheduler, self.steps, self.seed, self.width, self.height, self.engine]


def build_settings(model) -> Settings:
    d = model.defaults
    with gr.Accordion("Settings (shared by every tab)", open=True):
        model_info = gr.Markdown(describe(model))
        with gr.Row():
            model_box = gr.Textbox(model.model_id if model.model_id != DEFAULT_MODEL else "assets/shapes-sd",
                                   label="Model (hub id or folder under assets/)", scale=3)
            load_button = gr.Button("Load model", scale=1)
        with gr.Row():
            scheduler = gr.Dropdown(SCHEDULER_CHOICES, value=LABELS[d["scheduler"]], label="Scheduler")
            steps = gr.Slider(1, limits.MAX_STEPS, value=d["steps"], step=1, label="Steps")
            seed = gr.Number(DEFAULT_SEED, precision=0, label="Seed", minimum=0)
            randomize = gr.Button("Random seed", size="sm")
        with gr.Row():
            width = gr.Slider(limits.MIN_SIDE, limits.MAX_SIDE, value=d["width"], step=8, label="Width")
            height = gr.Slider(limits.MIN_SIDE, limits.MAX_SIDE, value=d["height"], step=8, label="Height")
            engine = gr.Radio(list(ENGINES), value=MANUAL_ENGINE, label="Engine")
        with gr.Row():
            png_drop = gr.File(label="Drop a PNG made here to restore its settings", file_types=[".png"],
                               type="filepath", height=120)
            restore_note = gr.Markdown()
    settings = Settings(model_info, model_box, load_button, scheduler, steps, seed, randomize, width, height,
                        engine, png_drop, restore_note)
    settings.randomize.click(random_seed, outputs=seed, api_name=False)
    return settings


def restore_from_png(file_path):
    """Read a PNG's A1111 parameters back into the settings."""
    if not file_path:
        raise gr.Error("Drop a PNG made by this app.")
    try:
        text = Image.open(file_path).info.get("parameters")
    except Exception:
        raise gr.Error("That file is not a readable image.") from None
    if not text:
        raise gr.Error("This image carries no generation parameters.")
    try:
        p = GenerationParams.from_png_text(text)
    except (InvalidRequest, ValueError):
        raise gr.Error("This image's parameters text could not be read.") from None
    engine = ENGINE_LABELS.get(p.engine, MANUAL_ENGINE)
    strength = p.strength if p.strength is not None else gr.skip()
    return (p.prompt, p.negative_prompt, p.guidance, LABELS[p.scheduler], p.steps, p.seed, p.width, p.height, engine,
            strength, f"Restored settings of seed {p.seed} ({p.model or 'unknown model'}).")


class ModelSwitch:
    """The "Load model" button: swap the slot's model, then set every tab's defaults to the new model's."""

    def __init__(self, slot, guidance_sliders: int):
        self.slot = slot
        self.guidance_sliders = guidance_sliders

    def load_model(self, model_id):
        try:
            model = self.slot.swap(model_id)
        except ModelLoadError as error:
            raise gr.Error(f"{error} The previous model is still loaded.") from None
        d = model.defaults
        return (describe(model), LABELS[d["scheduler"]], d["steps"], d["width"], d["height"],
                *[d["guidance"]] * self.guidance_sliders, d["strength"])
