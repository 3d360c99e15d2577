"""Glue between the Gradio UI (app.py) and diffusion_core: model slot and event handlers."""
