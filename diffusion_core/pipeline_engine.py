"""The fallback engine: the same request through diffusers' own pipelines.

Pipelines are built with `from_pipe` over the loaded modules, so they share
weights with the manual loop instead of loading a second copy.
"""
import diffusers
from diffusers import AutoPipelineForImage2Image, AutoPipelineForText2Image

from diffusion_core.sampling import StepInfo


def base_pipeline(model):
    cached = model.__dict__.get("_base_pipeline")
    if cached is None:
        pipeline_class = getattr(diffusers, model.pipeline_class_name)
        cached = pipeline_class(**model.components)
        cached.set_progress_bar_config(disable=True)
        model.__dict__["_base_pipeline"] = cached
    return cached


def run(model, params, scheduler, generators, init_image=None, on_step=None, guidance=None):
    """Images for one guidance value; `generators` has one generator per image."""
    auto = AutoPipelineForImage2Image if init_image is not None else AutoPipelineForText2Image
    pipe = auto.from_pipe(base_pipeline(model), scheduler=scheduler)
    pipe.set_progress_bar_config(disable=True)
    options = dict(
        prompt=params.prompt, negative_prompt=params.negative_prompt or None,
        num_inference_steps=params.steps, guidance_scale=params.guidance if guidance is None else guidance,
        num_images_per_prompt=len(generators), generator=generators, output_type="pil",
    )
    if init_image is not None:
        options.update(image=init_image, strength=params.strength)
    else:
        options.update(width=params.width, height=params.height)
    if on_step:
        def step_end(pipe, index, timestep, tensors):
            on_step(StepInfo(index, pipe.num_timesteps, int(timestep), tensors["latents"], None, None, None))
            return tensors
        options["callback_on_step_end"] = step_end
    return pipe(**options).images
