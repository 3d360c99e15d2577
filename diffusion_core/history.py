"""A run's history: what the loop's step callback hands out, kept so a view can replay any step.

`Recorder` is an ordinary `on_step` callback (it never touches the loop). Per step it keeps,
for the first image of the batch only, on the CPU in float32: the latents after the step
(x_t), the two noise predictions, and the x_t the first kept step started from (every
later step starts from the previous one's latents). A byte cap is checked before the run
starts. `HistoryStore` holds the last few runs of a server, keyed by id. A run's cross-attention
maps, where it kept them, ride along (history_attention.py records them).
"""
import shutil
import tempfile
import threading
import uuid
from collections import OrderedDict
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from diffusion_core.errors import InvalidRequest
from diffusion_core.params import GenerationParams
from diffusion_core.schedule import Schedule, schedule_for

if TYPE_CHECKING:  # attention_maps imports the generation stack; a history only holds its result
    from diffusion_core.attention_maps import AttentionMaps

MAX_HISTORY_BYTES = 32 * 2 ** 20  # latents of one run; a 512x512 run fits 170 steps, a 1024x1024 one 42
MAX_DECODED_BYTES = 48 * 2 ** 20  # decoded images cached per run
MAX_STORED_RUNS = 8  # runs a server keeps (about 8 x 112 MiB at worst: latents, decodes, attention maps)


@dataclass
class RecordedStep:
    index: int  # 0-based
    timestep: int
    latents: torch.Tensor  # x_t after this step, [C, h, w]
    sample: torch.Tensor | None  # x_t this step started from (None: the engine did not say)
    noise_uncond: torch.Tensor | None  # None at guidance 1, or from an engine that does not hand it out
    noise_text: torch.Tensor | None


class BoundedCache:
    """A least-recently-used dict that drops entries past a byte budget (sizes given by the caller)."""

    def __init__(self, max_bytes: int):
        self.max_bytes, self.bytes = max_bytes, 0
        self._items: OrderedDict = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key):
        with self._lock:
            if key not in self._items:
                return None
            self._items.move_to_end(key)
            return self._items[key][0]

    def put(self, key, value, nbytes: int):
        with self._lock:
            if key in self._items:
                self.bytes -= self._items.pop(key)[1]
            self._items[key] = (value, nbytes)
            self.bytes += nbytes
            while self.bytes > self.max_bytes and len(self._items) > 1:
                self.bytes -= self._items.popitem(last=False)[1][1]


@dataclass
class RunHistory:
    params: GenerationParams  # validated, with the scheduler the run used
    schedule: Schedule
    fingerprint: str  # LoadedModel.fingerprint of the model that made it
    model_name: str
    every: int  # 1: every step kept; k: only every k-th step and the last
    steps: dict = field(default_factory=dict)  # index -> RecordedStep
    engine: str = ""  # what the run reported ("manual" or "pipeline"), set after it
    attention: "AttentionMaps | None" = None  # the run's per-step word maps, where it kept them
    attention_note: str = ""  # why there are none
    decoded: BoundedCache = field(default_factory=lambda: BoundedCache(MAX_DECODED_BYTES))

    @property
    def total(self) -> int:
        return self.schedule.total

    def index_of(self, number) -> int:
        """The 0-based index of step `number` as the UI counts (1 = the first); a clear message when out of range."""
        try:
            index = int(number) - 1
        except (TypeError, ValueError):
            raise InvalidRequest(f"Step must be a whole number (got {number!r}).") from None
        if not 0 <= index < self.total:
            raise InvalidRequest(f"Step must be between 1 and {self.total}: this run has {self.total} steps "
                                 f"(got {number}).")
        return index

    def step(self, number) -> RecordedStep:
        """Step `number` as the UI counts (1 = the first); a clear message when it is not there."""
        index = self.index_of(number)
        if index not in self.steps:
            raise InvalidRequest(f"Step {index + 1} was not kept: this run kept every {self.every}th step "
                                 f"({', '.join(str(i + 1) for i in sorted(self.steps))}).")
        return self.steps[index]

    def x0(self, step: RecordedStep, branch: str = "guided") -> torch.Tensor | None:
        """x0 as predicted by one branch ("uncond", "text") or by the guided blend; None if not recorded."""
        if step.sample is None or step.noise_text is None:
            return None
        if branch == "text" or (branch == "guided" and step.noise_uncond is None):
            noise = step.noise_text
        elif step.noise_uncond is None:
            return None
        elif branch == "uncond":
            noise = step.noise_uncond
        else:
            noise = step.noise_uncond + self.params.guidance * (step.noise_text - step.noise_uncond)
        return self.schedule.x0(step.index, step.sample, noise)

    def check_model(self, model) -> None:
        if model.fingerprint != self.fingerprint:
            raise InvalidRequest(f"This run was made with {self.model_name}, and the loaded model has changed since "
                                 f"(now {model.name}); run again to look inside it.")

    def nbytes(self) -> int:
        tensors = [t for s in self.steps.values() for t in (s.latents, s.sample, s.noise_uncond, s.noise_text)
                   if t is not None]
        return sum(t.numel() * t.element_size() for t in {id(t): t for t in tensors}.values())


def kept_indices(total: int, every: int) -> list[int]:
    """Every `every`-th step from the first, and always the last (the seed article's strip)."""
    kept = list(range(0, total, every))
    return kept if kept[-1] == total - 1 else kept + [total - 1]


def default_every(steps: int) -> int:
    return max(1, steps // 8)


def latent_bytes(model, params: GenerationParams) -> int:
    """One first-image latent in float32."""
    vae_scale = 2 ** (len(model.vae.config.block_out_channels) - 1)
    return 4 * model.unet.config.in_channels * (params.height // vae_scale) * (params.width // vae_scale)


def recorded_bytes(latent: int, kept: int, every: int) -> int:
    """Per kept step its latents and two noise predictions; the x_t it started from once when every step is
    kept (each step starts from the last one's latents), else per kept step."""
    return latent * (3 * kept + (1 if every == 1 else kept))


class Recorder:
    """The step callback that fills a RunHistory; `then` (e.g. the UI's streaming callback) runs after it."""

    def __init__(self, model, params: GenerationParams, every: int = 1, then=None):
        params = replace(params, scheduler=params.scheduler or model.defaults["scheduler"]).validated()
        schedule = schedule_for(model, params.scheduler, params.steps)
        every = max(1, int(every))
        latent = latent_bytes(model, params)
        kept = len(kept_indices(schedule.total, every))
        if recorded_bytes(latent, kept, every) > MAX_HISTORY_BYTES:
            fit = (MAX_HISTORY_BYTES // latent - 1) // 3 - (schedule.total - params.steps)
            raise InvalidRequest(
                f"Keeping every step of a {params.width}x{params.height} run takes {3 * latent / 2**20:.2f} MiB "
                "a step; "
                f"the history holds {MAX_HISTORY_BYTES // 2**20} MiB, so at most {max(fit, 0)} steps at this size. "
                "Lower the steps or the size.")
        self.history = RunHistory(params, schedule, model.fingerprint, model.name, every)
        self.kept = set(kept_indices(schedule.total, every))
        self.then = then
        self._previous: RecordedStep | None = None

    def __call__(self, info) -> None:
        if info.index in self.kept:
            self.history.steps[info.index] = self._record(info)
        if self.then:
            self.then(info)

    def _record(self, info) -> RecordedStep:
        def first(tensor):
            return None if tensor is None else tensor[0].detach().to("cpu", torch.float32).clone()

        previous = self._previous
        # Each step starts from the previous step's latents: keep that tensor once, not twice.
        sample = previous.latents if previous and previous.index == info.index - 1 else first(info.sample)
        step = RecordedStep(info.index, info.timestep, first(info.latents), sample, first(info.noise_uncond),
                            first(info.noise_text))
        self._previous = step
        return step


class HistoryStore:
    """The last MAX_STORED_RUNS histories of a server, by id; the oldest goes first, with its files."""

    def __init__(self, max_runs: int = MAX_STORED_RUNS):
        self.max_runs = max_runs
        self._runs: OrderedDict[str, RunHistory] = OrderedDict()
        self._lock = threading.Lock()
        self._files = Path(tempfile.mkdtemp(prefix="run-histories-"))

    def add(self, history: RunHistory) -> str:
        run_id = uuid.uuid4().hex
        with self._lock:
            self._runs[run_id] = history
            dropped = [self._runs.popitem(last=False)[0] for _ in range(max(0, len(self._runs) - self.max_runs))]
        for old in dropped:
            shutil.rmtree(self._files / old, ignore_errors=True)
        return run_id

    def folder(self, run_id: str) -> Path:
        """Where a run's exported files go (deleted when the run is dropped)."""
        folder = self._files / run_id
        folder.mkdir(exist_ok=True)
        return folder

    def get(self, run_id) -> RunHistory:
        if not run_id:
            raise InvalidRequest("Run first: there is no run to look inside yet.")
        with self._lock:
            history = self._runs.get(run_id)
            if history is not None:
                self._runs.move_to_end(run_id)
        if history is None:
            raise InvalidRequest(f"This run is no longer kept (the server keeps the last {self.max_runs} runs); "
                                 "run again.")
        return history

    def __len__(self) -> int:
        return len(self._runs)
