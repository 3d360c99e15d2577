"""Every scheduler at several step counts, same prompt and seed: which converge in few steps, which break.

Each cell is its own run (different schedulers, or different step counts, walk different timesteps, so
no two cells can share a batch) and is timed alone. A one-step run per scheduler before the first cell
pays the one-time costs (the UNet's trace, diffusion_core/unet_trace.py; LMS's scipy import), so they are
in no cell's seconds.
"""
import time
from dataclasses import dataclass, replace

from PIL import Image

from diffusion_core import images as image_ops
from diffusion_core.errors import InvalidRequest
from diffusion_core.generate import GenerationResult, generate
from diffusion_core.schedulers import LABELS, SCHEDULER_NAMES, canonical_name

DEFAULT_STEP_COUNTS = (5, 10, 25, 50)
MAX_CELLS = 36  # schedulers x step counts; each cell is a full run


@dataclass
class SchedulerCell:
    scheduler: str
    steps: int
    seconds: float
    result: GenerationResult

    @property
    def label(self) -> str:
        return f"{LABELS[self.scheduler]} · {self.steps} steps · {self.seconds:.2f} s"


@dataclass
class SchedulerComparison:
    cells: list[SchedulerCell]  # row by row: step count major, scheduler minor
    schedulers: list[str]
    step_counts: list[int]
    sheet: Image.Image  # columns: schedulers; rows: step counts; each cell's seconds underneath


def compare_schedulers(model, params, schedulers=SCHEDULER_NAMES, step_counts=DEFAULT_STEP_COUNTS,
                       on_step=None) -> SchedulerComparison:
    schedulers = _unique([canonical_name(name) for name in schedulers], "scheduler")
    step_counts = _unique([replace(params, steps=steps).validated().steps for steps in step_counts], "step count")
    if not schedulers or not step_counts:
        raise InvalidRequest("Give at least one scheduler and one step count.")
    if len(schedulers) * len(step_counts) > MAX_CELLS:
        raise InvalidRequest(f"{len(schedulers)} schedulers x {len(step_counts)} step counts is "
                             f"{len(schedulers) * len(step_counts)} cells; at most {MAX_CELLS} are allowed.")
    params = replace(params, model=params.model or model.name, num_images=1, strength=None).validated()
    for scheduler in schedulers:  # the UNet's trace, scipy for LMS: one-time costs, kept out of the cells' seconds
        generate(model, replace(params, scheduler=scheduler, steps=1))
    cells = []
    for steps in step_counts:
        for scheduler in schedulers:
            started = time.perf_counter()
            result = generate(model, replace(params, scheduler=scheduler, steps=steps), on_step=on_step)
            cells.append(SchedulerCell(scheduler, steps, time.perf_counter() - started, result))
    columns = len(schedulers)
    rows = [cells[i:i + columns] for i in range(0, len(cells), columns)]
    sheet = image_ops.table([[cell.result.images[0] for cell in row] for row in rows],
                            [f"{steps} steps" for steps in step_counts], [LABELS[name] for name in schedulers],
                            [[f"{cell.seconds:.2f} s" for cell in row] for row in rows])
    image_ops.with_parameters(sheet, params.to_png_text())
    return SchedulerComparison(cells, schedulers, step_counts, sheet)


def _unique(values, what):
    repeated = sorted({str(v) for v in values if values.count(v) > 1})
    if repeated:
        raise InvalidRequest(f"Each {what} once, please ({', '.join(repeated)} is listed twice).")
    return values
