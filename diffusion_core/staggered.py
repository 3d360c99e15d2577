"""Image variations of different strengths in one batch: cells that start at different steps of one schedule.

A variation at strength s skips the first (1 - s) of the schedule (sampling.img2img_timesteps), so
cells of different strengths start at different timesteps. They do share the schedule's tail: at step i
of the longest run, every cell that has started is at the same timestep. So the batch runs from the
largest strength's start; a cell waits at its noised init until its own start, then steps along.

Each cell keeps its own scheduler, because multistep schedulers (DPM++ 2M, PNDM, LMS) remember earlier
model outputs, and a cell's history must begin with its own first step, as it does when it runs alone.
`StaggeredScheduler` offers the scheduler interface that `sampling.denoise` calls and `started_only`
calls the UNet on the started cells only, so the loop stays unchanged and no work goes to waiting cells.
"""
from types import SimpleNamespace

import torch

from diffusion_core import sampling


class StaggeredScheduler:
    def __init__(self, schedulers, steps: int, strengths: list[float], device):
        self.cells = schedulers
        cell_timesteps, self.steps_run = [], []
        for scheduler, strength in zip(schedulers, strengths):
            scheduler.set_timesteps(steps, device=device)
            timesteps, steps_run = sampling.img2img_timesteps(scheduler, steps, strength)
            cell_timesteps.append(timesteps)
            self.steps_run.append(steps_run)
        self.timesteps = max(cell_timesteps, key=len)  # the largest strength's: every cell's is a tail of it
        self.starts = [len(self.timesteps) - len(t) for t in cell_timesteps]  # index where each cell begins
        self.order = 1
        self.index = 0  # the step denoise is at

    def started(self) -> list[int]:
        return [cell for cell, start in enumerate(self.starts) if start <= self.index]

    def add_noise(self, clean, noise):
        """Each cell's init, noised to its own start timestep."""
        return torch.cat([scheduler.add_noise(clean[j:j + 1], noise[j:j + 1], self.timesteps[start:start + 1])
                          for j, (scheduler, start) in enumerate(zip(self.cells, self.starts))])

    def _rows(self, cell, batch):
        """A cell's rows: one, or two when classifier-free guidance doubled the batch (uncond, then text)."""
        return list(range(cell, batch, len(self.cells)))

    def scale_model_input(self, sample, timestep):
        scaled = sample.clone()
        for cell in self.started():
            rows = self._rows(cell, len(sample))
            scaled[rows] = self.cells[cell].scale_model_input(sample[rows], timestep)
        return scaled

    def started_only(self, predict_noise):
        """The UNet's call on the started cells' rows; waiting rows get zeros, which their step ignores."""
        def predict(sample, timestep, embeddings):
            rows = [row for cell in self.started() for row in self._rows(cell, len(sample))]
            noise = predict_noise(sample[rows], timestep, embeddings[rows])
            full = noise.new_zeros((len(sample), *noise.shape[1:]))
            full[rows] = noise
            return full
        return predict

    def step(self, model_output, timestep, sample, generator=None):
        """Started cells step with their own scheduler (and generator); waiting cells keep their noised init."""
        prev, x0 = sample.clone(), sample.clone()
        has_x0 = True
        for cell in self.started():
            scheduler = self.cells[cell]
            options = sampling.step_options(scheduler, None if generator is None else [generator[cell]])
            output = scheduler.step(model_output[cell:cell + 1], timestep, sample[cell:cell + 1], **options)
            prev[cell] = output.prev_sample[0]
            cell_x0 = getattr(output, "pred_original_sample", None)
            has_x0 = has_x0 and cell_x0 is not None
            if cell_x0 is not None:
                x0[cell] = cell_x0[0]
        self.index += 1
        return SimpleNamespace(prev_sample=prev, pred_original_sample=x0 if has_x0 else None)
