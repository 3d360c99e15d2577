"""Seeds: image i of a request uses seed + i on a CPU generator, so it reproduces alone on any device."""
import random

import torch

MAX_SEED = 2**63 - 1


def generators(seed: int, count: int) -> list[torch.Generator]:
    return [torch.Generator("cpu").manual_seed(seed + i) for i in range(count)]


def same_seed_generators(seed: int, count: int) -> list[torch.Generator]:
    """For grids: every cell starts from the same noise, only guidance varies."""
    return [torch.Generator("cpu").manual_seed(seed) for _ in range(count)]


def generators_for(seeds: list[int]) -> list[torch.Generator]:
    """One generator per image from the given seeds (comparisons choose each cell's seed)."""
    return [torch.Generator("cpu").manual_seed(seed) for seed in seeds]


def random_seed() -> int:
    return random.randint(0, 2**32 - 1)
