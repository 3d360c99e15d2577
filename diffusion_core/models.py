"""Load a model's parts once (hub id or local diffusers folder) and pick device and dtype.

The manual loop drives the parts directly; the diffusers pipelines used as the
fallback engine are built from the very same modules, so they cost no memory.
"""
import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import torch

from diffusion_core.errors import InvalidRequest, ModelLoadError
from diffusion_core.schedulers import canonical_name, name_of

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_MODEL = str(PROJECT_ROOT / "assets" / "shapes-sd")
HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]{0,95}/[\w.-]{1,96}$")
HUB_TIMEOUT_S = 10
SD_DEFAULTS = {"steps": 50, "guidance": 9.0, "width": 512, "height": 512, "scheduler": "pndm", "strength": 0.6}


@dataclass
class LoadedModel:
    model_id: str
    components: dict  # tokenizer, text_encoder, unet, vae, scheduler (+ whatever the pipeline has)
    device: torch.device
    dtype: torch.dtype
    pipeline_class_name: str
    defaults: dict = field(default_factory=lambda: dict(SD_DEFAULTS))
    known_words: dict | None = None
    fingerprint: str = ""  # changes when the model's files do (see files_fingerprint)
    variant: str | None = None  # "fp16" when the weights came from the folder's fp16 copies

    @property
    def can_run_manual_loop(self) -> bool:
        """Our loop needs one CLIP text encoder and a UNet without extra conditioning (SD 1.x/2.x)."""
        unet = self.components.get("unet")
        return (
            unet is not None and self.components.get("text_encoder_2") is None
            and getattr(unet.config, "addition_embed_type", None) is None
            and getattr(unet.config, "time_cond_proj_dim", None) is None
        )

    @property
    def name(self) -> str:
        return Path(self.model_id).name if os.path.isdir(self.model_id) else self.model_id

    def __getattr__(self, part):  # model.unet, model.vae, ...
        components = self.__dict__.get("components", {})
        if part in components:
            return components[part]
        raise AttributeError(part)


def pick_device(requested: str | None = None) -> torch.device:
    if requested:
        return torch.device(requested)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def pick_dtype(device: torch.device, bf16_on_cpu: bool = False) -> torch.dtype:
    if device.type in ("cuda", "mps"):
        return torch.float16
    return torch.bfloat16 if bf16_on_cpu else torch.float32


def resolve_source(model_id: str, allowed_roots=None) -> str:
    """A local folder, or a hub id that is cached or reachable; fail fast and clearly otherwise."""
    model_id = str(model_id).strip()
    path = Path(model_id).expanduser()
    if path.exists() or not HUB_ID.match(model_id):
        if allowed_roots is not None:  # checked first: say nothing about folders we may not use
            resolved = path.resolve()
            if not any(resolved.is_relative_to(Path(root).resolve()) for root in allowed_roots):
                raise ModelLoadError(f"Model folder {model_id!r} is outside the allowed model folders.")
        if not path.is_dir() or not (path / "model_index.json").is_file():
            raise ModelLoadError(f"{model_id!r} is neither a hub id like 'owner/name' nor a diffusers "
                                 "model folder (one with a model_index.json).")
        return str(path)
    from huggingface_hub import snapshot_download
    try:
        return snapshot_download(model_id, local_files_only=True)
    except Exception:
        pass
    if os.environ.get("HF_HUB_OFFLINE", "0").lower() in ("1", "true", "yes"):
        raise ModelLoadError(
            f"Model {model_id!r} is not downloaded and the hub is offline (HF_HUB_OFFLINE=1). "
            "Download it where the hub is reachable, or pass a local model folder.")
    from huggingface_hub import HfApi
    try:
        HfApi().model_info(model_id, timeout=HUB_TIMEOUT_S)
    except Exception as error:
        raise ModelLoadError(
            f"Cannot fetch model {model_id!r} from the Hugging Face Hub ({type(error).__name__}). "
            "Check the id and your connection, or pass a local model folder.") from None
    return model_id


def files_fingerprint(source: str) -> str:
    """A short hash of a model folder's file names, sizes and modification times (of the id for a
    hub model not yet downloaded): cheap even for GB-sized weights, and it changes when a model is
    retrained or updated, so caches of what the model made can be keyed by it."""
    folder = Path(source)
    files = sorted(p for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else []
    listing = "\n".join(f"{p.relative_to(folder)} {p.stat().st_size} {p.stat().st_mtime_ns}" for p in files)
    return hashlib.sha1((listing or source).encode()).hexdigest()[:12]


def load_model(model_id: str = DEFAULT_MODEL, device: str | None = None, bf16_on_cpu: bool = False,
               allowed_roots=None, dtype: torch.dtype | None = None) -> LoadedModel:
    """dtype: None follows the device's policy (pick_dtype); benchmarks pass one to compare dtypes."""
    from diffusers import DiffusionPipeline
    from diffusers.utils import logging as diffusers_logging

    from transformers.utils import logging as transformers_logging

    diffusers_logging.disable_progress_bar()  # loading bars are noise in a CLI and a server log
    transformers_logging.disable_progress_bar()

    source = resolve_source(model_id, allowed_roots)
    torch_device = pick_device(device)
    dtype = dtype or pick_dtype(torch_device, bf16_on_cpu)
    options = dict(dtype=dtype, safety_checker=None, requires_safety_checker=False,
                   trust_remote_code=False)
    try:
        pipe, variant = None, None
        if dtype == torch.float16:
            try:  # the half-size copies where the folder or repo has them (diffusers' `fp16` variant)
                pipe, variant = DiffusionPipeline.from_pretrained(source, variant="fp16", **options), "fp16"
            except Exception:
                pipe = None
        if pipe is None:
            pipe, variant = DiffusionPipeline.from_pretrained(source, **options), None
    except Exception as error:
        raise ModelLoadError(f"Could not load model {model_id!r}: {error}") from None
    pipe.to(torch_device)
    components = dict(pipe.components)  # includes None parts (safety_checker) the pipeline class expects
    for module in components.values():
        if isinstance(module, torch.nn.Module):  # inference only
            module.eval().requires_grad_(False)
    defaults, known_words = dict(SD_DEFAULTS), None
    defaults["scheduler"] = name_of(pipe.scheduler) or defaults["scheduler"]  # the model's own choice
    defaults_file = Path(source) / "generation_defaults.json"
    if defaults_file.is_file():
        recorded = json.loads(defaults_file.read_text())
        known_words = recorded.pop("known_words", None)
        defaults.update({k: v for k, v in recorded.items() if k in SD_DEFAULTS})
        try:  # a misspelt name in a model's own file should fail here, clearly, not in the app's dropdown
            defaults["scheduler"] = canonical_name(defaults["scheduler"])
        except InvalidRequest as error:
            raise ModelLoadError(f"{defaults_file}: {error}") from None
    return LoadedModel(model_id=str(model_id), components=components, device=torch_device, dtype=dtype,
                       pipeline_class_name=type(pipe).__name__, defaults=defaults, known_words=known_words,
                       fingerprint=files_fingerprint(source), variant=variant)
