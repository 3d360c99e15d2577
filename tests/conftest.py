import os

os.environ["HF_HUB_OFFLINE"] = "1"  # no test may touch the network
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")

import pytest
import torch

from tests.tiny_models import build_tiny_sd

torch.set_num_threads(os.cpu_count() or 1)


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory):
    return build_tiny_sd(tmp_path_factory.mktemp("models"))


@pytest.fixture(scope="session")
def tiny_model(tiny_model_dir):
    from diffusion_core import load_model
    return load_model(str(tiny_model_dir), device="cpu")
