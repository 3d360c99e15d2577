"""Seeds: image i of a request uses seed + i on a CPU generator, so it reproduces alone on any device."""
import random

import torch

MAX_SEED = 2**63 - 1


def generators_for(seeds: list[int]) -> list[torch.Generator]:
    """One CPU generator per image: image i of a request gets seed + i, every cell of a grid the same seed."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def random_seed() -> int:
    return random.randint(0, 2**32 - 1)
