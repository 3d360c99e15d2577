"""The one loaded model the app serves, swapped safely (a failed load keeps the old one)."""
import os
import threading
from pathlib import Path

from diffusion_core import DEFAULT_MODEL, LoadedModel, load_model
from diffusion_core.models import PROJECT_ROOT

# Local model folders the app may load from; hub ids ("owner/name") are always allowed.
ALLOWED_MODEL_ROOTS = [PROJECT_ROOT / "assets"] + [
    Path(p) for p in os.environ.get("DIFFUSION_MODEL_ROOTS", "").split(os.pathsep) if p]


class ModelSlot:
    def __init__(self, model_id: str = DEFAULT_MODEL):
        self._lock = threading.Lock()
        self._model: LoadedModel | None = None
        self.initial_id = model_id

    def get(self) -> LoadedModel:
        with self._lock:
            if self._model is None:
                self._model = load_model(self.initial_id, allowed_roots=self.allowed_roots(self.initial_id))
            return self._model

    def swap(self, model_id: str) -> LoadedModel:
        """Load another model; on failure raise and keep serving the current one."""
        model_id = (model_id or "").strip() or DEFAULT_MODEL
        current = self.get()
        if model_id == current.model_id:
            return current
        model = load_model(model_id, allowed_roots=self.allowed_roots(model_id))
        with self._lock:
            self._model = model
        return model

    def allowed_roots(self, model_id: str):
        # The model named at launch (--model / DIFFUSION_MODEL) is trusted by whoever started the server.
        return None if model_id == self.initial_id else ALLOWED_MODEL_ROOTS


def describe(model: LoadedModel) -> str:
    lines = [f"**Model:** `{model.name}` ({model.pipeline_class_name}, {model.device.type}, "
             f"{str(model.dtype).replace('torch.', '')})"]
    if model.known_words:
        words = "; ".join(f"{kind}: {', '.join(values)}" for kind, values in model.known_words.items())
        lines.append(f"It knows only these words — {words}.")
    if not model.can_run_manual_loop:
        lines.append("The manual loop cannot drive this model; diffusers' pipeline will be used.")
    return "  \n".join(lines)
