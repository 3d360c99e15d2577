"""Side-by-side comparisons that answer the questions every diffusion UI's users ask, live on the loaded model:

    scheduler_grid.py      which scheduler? every scheduler x several step counts, each cell timed
    strength_sweep.py      why does strength 0.5 barely change my image? the noised init and the result per strength
    seed_interpolation.py  why does a seed set the composition? slerp between two seeds' initial noise
    guidance_effect.py     what does guidance do? saturation, contrast, distance to guidance 1 (and, for the
                           shipped model, what the shapes classifier reads) per cell of a guidance grid

Each module's main function has the module's name: `from diffusion_core.compare.strength_sweep import strength_sweep`.
"""
