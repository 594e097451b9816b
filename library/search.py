"""Random search spaces and ASHA early stopping for sweeps.

Draws are made here, once, from the sweep's seed, so a random search is a fixed list of trials like a grid:
re-running it finds the same trial ids (and their checkpoints) instead of drawing new points.

    Sweep(..., search={"optim.lr": LogUniform(1e-4, 1e-2), "model.noise_dim": Choice([50, 100, 200])},
          samples=12, early_stop=ASHA(grace_epochs=2))
"""
from __future__ import annotations

import math
import random
from dataclasses import dataclass
from typing import Any

from library.config import require


@dataclass(frozen=True)
class Uniform:
    low: float
    high: float

    def check(self, key: str) -> None:
        require(self.low < self.high, f"search.{key}", f"Uniform({self.low}, {self.high})", "low < high")

    def sample(self, rng: random.Random) -> float:
        # Full precision: rounded draws from a narrow range collapse onto a few values (or onto its bound).
        return rng.uniform(self.low, self.high)


@dataclass(frozen=True)
class LogUniform:
    low: float
    high: float

    def check(self, key: str) -> None:
        require(0 < self.low < self.high, f"search.{key}", f"LogUniform({self.low}, {self.high})", "0 < low < high")

    def sample(self, rng: random.Random) -> float:
        x = math.exp(rng.uniform(math.log(self.low), math.log(self.high)))
        return min(max(x, self.low), self.high)  # exp(log(high)) can exceed high by an ulp


@dataclass(frozen=True)
class IntRange:
    low: int
    high: int
    """Inclusive."""

    def check(self, key: str) -> None:
        require(isinstance(self.low, int) and isinstance(self.high, int) and self.low <= self.high,
                f"search.{key}", f"IntRange({self.low}, {self.high})", "integers with low <= high")

    def sample(self, rng: random.Random) -> int:
        return rng.randint(self.low, self.high)


@dataclass(frozen=True)
class Choice:
    values: tuple

    def __init__(self, values):
        object.__setattr__(self, "values", tuple(values))

    def check(self, key: str) -> None:
        require(len(self.values) > 0, f"search.{key}", list(self.values), "a non-empty list")

    def sample(self, rng: random.Random) -> Any:
        return rng.choice(self.values)


@dataclass(frozen=True)
class Pinned:
    """A searched key held at one value by a command-line override. It still draws from its space and drops the
    draw: the other keys then get the same draws as without the override."""
    value: Any
    space: Any

    def check(self, key: str) -> None:
        check_space(key, self.space)

    def sample(self, rng: random.Random) -> Any:
        self.space.sample(rng)
        return self.value


DISTRIBUTIONS = (Uniform, LogUniform, IntRange, Choice, Pinned)


def check_space(key: str, dist: Any) -> None:
    require(isinstance(dist, DISTRIBUTIONS), f"search.{key}", dist,
            "Uniform, LogUniform, IntRange or Choice (from library.search)")
    dist.check(key)


def draw(space: dict[str, Any], samples: int, seed: int) -> list[dict[str, Any]]:
    """`samples` points of the space, the same ones for the same seed."""
    for key, dist in space.items():
        check_space(key, dist)
    rng = random.Random(seed)
    return [{key: space[key].sample(rng) for key in space} for _ in range(samples)]


@dataclass(frozen=True, kw_only=True)
class ASHA:
    """Asynchronous successive halving (Li et al., 2018) through Ray Tune: at each rung (grace_epochs,
    grace_epochs * reduction_factor, ...) a trial goes on only if its metric is in the top 1/reduction_factor of
    the trials that reached that rung; the others end with status "stopped". Needs the metric every epoch."""

    grace_epochs: int = 1
    """Epochs every trial gets before it can be stopped."""
    reduction_factor: int = 3
    """Keep the best 1/reduction_factor at each rung."""

    def check(self) -> None:
        require(self.grace_epochs >= 1, "early_stop.grace_epochs", self.grace_epochs, "an integer >= 1")
        require(self.reduction_factor >= 2, "early_stop.reduction_factor", self.reduction_factor, "an integer >= 2")

    def scheduler(self, metric: str, mode: str, max_epochs: int):
        from ray.tune.schedulers import ASHAScheduler

        return ASHAScheduler(time_attr="epoch", metric=metric, mode=mode, max_t=max_epochs,
                             grace_period=min(self.grace_epochs, max_epochs), reduction_factor=self.reduction_factor)
