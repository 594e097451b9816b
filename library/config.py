"""Typed, validated configs.

Every concern is a `@dataclass(kw_only=True)` whose fields carry a docstring and whose `check()` states the
allowed ranges. `parse(Config, overrides)` builds a config from dotted `key=value` overrides (strings from a
command line or Python values from a sweep file), type-checked against the field's type; an unknown key,
a wrong type or an out-of-range value raises one `ConfigError` naming the field, the value and what is
allowed — on the login node, before anything is trained or submitted.
"""
from __future__ import annotations

import ast
import dataclasses
import difflib
import inspect
import typing
from dataclasses import dataclass, field
from functools import cache
from typing import Any


class ConfigError(ValueError):
    def __init__(self, key: str, value: Any, allowed: str):
        self.key, self.value, self.allowed = key, value, allowed
        super().__init__(f"{key}={value!r} is not allowed: {allowed}")


def require(ok: bool, key: str, value: Any, allowed: str) -> None:
    if not ok:
        raise ConfigError(key, value, allowed)


@dataclass(kw_only=True)
class DataConfig:
    name: str = "mnist5k"
    """Dataset from the registry (`python -m library.data list`)."""
    root: str = ""
    """Folder holding prepared datasets; empty = $LIBRARY_DATA_ROOT or ~/.cache/library/data."""
    image_size: int = 28
    """Side length the images are resized to: 28, 32 or 64."""
    limit: int = 0
    """Train on a fixed random subset of N images (0 = all); for quick runs and tests."""

    def check(self, prefix: str) -> None:
        from library.data import DATASETS

        require(self.name in DATASETS, f"{prefix}name", self.name, f"one of {sorted(DATASETS)}")
        require(self.image_size in (28, 32, 64), f"{prefix}image_size", self.image_size, "28, 32 or 64")
        require(self.limit >= 0, f"{prefix}limit", self.limit, "an integer >= 0 (0 = all images)")


@dataclass(kw_only=True)
class AdamConfig:
    lr: float = 2e-4
    """Learning rate of every optimizer of the job."""
    beta1: float = 0.5
    """Adam's first-moment decay."""
    beta2: float = 0.999
    """Adam's second-moment decay."""

    def check(self, prefix: str) -> None:
        require(0 < self.lr <= 1, f"{prefix}lr", self.lr, "a float in (0, 1]")
        require(0 <= self.beta1 < 1, f"{prefix}beta1", self.beta1, "a float in [0, 1)")
        require(0 <= self.beta2 < 1, f"{prefix}beta2", self.beta2, "a float in [0, 1)")


@dataclass(kw_only=True)
class TrainConfig:
    epochs: int = 5
    """Passes over the training set."""
    batch_size: int = 64
    """Global batch size, split evenly over the DDP workers."""
    seed: int = 0
    """Seeds weights, noise and data order; the same seed gives the same run."""
    checkpoint_every: int = 1
    """Save a resumable checkpoint every N epochs (and always after the last one)."""
    keep_checkpoints: int = 2
    """How many recent checkpoints to keep (an older one is the fallback if the newest is corrupt)."""
    amp: str = "auto"
    """Mixed precision on GPU: auto (bf16 where supported, else fp16), bf16, fp16 or off. Always off on CPU."""
    max_loss: float = 1e3
    """A loss above this (or NaN/Inf) ends the trial as `diverged`."""
    channels_last: bool = True
    """On GPU, keep images and conv weights channels_last (faster convolutions with AMP). No effect on CPU."""
    compile: bool = False
    """torch.compile the models: faster steps on GPU after a compile of tens of seconds in the first epoch."""
    log_every_steps: int = 0
    """Also keep what the training step returns (the losses) at every Nth step, counted over the whole run
    (0 = off): the run dir's steps.json, rows with a `step` in curves.csv, W&B and the report's loss plots."""

    def check(self, prefix: str) -> None:
        require(1 <= self.epochs <= 100_000, f"{prefix}epochs", self.epochs, "an integer in [1, 100000]")
        require(self.batch_size >= 1, f"{prefix}batch_size", self.batch_size, "an integer >= 1")
        require(self.checkpoint_every >= 1, f"{prefix}checkpoint_every", self.checkpoint_every, "an integer >= 1")
        require(self.keep_checkpoints >= 1, f"{prefix}keep_checkpoints", self.keep_checkpoints, "an integer >= 1")
        require(self.amp in ("auto", "bf16", "fp16", "off"), f"{prefix}amp", self.amp, "auto, bf16, fp16 or off")
        require(self.max_loss > 0, f"{prefix}max_loss", self.max_loss, "a float > 0")
        require(self.log_every_steps >= 0, f"{prefix}log_every_steps", self.log_every_steps, "an integer >= 0 (0 = off)")


@dataclass(kw_only=True)
class EvalConfig:
    extractor: str = "domain"
    """Features for the Fréchet distance: `inception` (reported as fid; needs the cached Inception weights) or
    `domain`, a classifier trained on the dataset (reported as fd_domain)."""
    every: int = 1
    """Score the generator every N epochs (and always after the last one)."""
    num_samples: int = 1000
    """Generated images per periodic score (the Fréchet distance and mode coverage: cheap, noisier)."""
    final_num_samples: int = 10000
    """Generated images for the score after the last epoch, which adds KID and precision/recall."""
    grid_every_steps: int = 0
    """Also write the progress grid every N training steps (batches), counted over the whole run, as
    samples/step_NNNNNNNN.png (0 = off); the per-epoch grids are written either way."""

    def check(self, prefix: str) -> None:
        require(self.extractor in ("domain", "inception"), f"{prefix}extractor", self.extractor, "domain or inception")
        require(self.every >= 1, f"{prefix}every", self.every, "an integer >= 1")
        require(self.num_samples >= 10, f"{prefix}num_samples", self.num_samples, "an integer >= 10")
        require(self.final_num_samples >= 10, f"{prefix}final_num_samples", self.final_num_samples, "an integer >= 10")
        require(self.grid_every_steps >= 0, f"{prefix}grid_every_steps", self.grid_every_steps,
                "an integer >= 0 (0 = off)")


# ---------------------------------------------------------------------------------------------- mechanism


def parse(cls: type, overrides: dict[str, Any] | None = None, prefix: str = "") -> Any:
    """Build `cls` from its defaults plus dotted overrides, then check every section."""
    overrides = dict(overrides or {})
    known = set(flat_fields(cls))
    for key in overrides:
        if key not in known:
            close = difflib.get_close_matches(key, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise ConfigError(prefix + key, overrides[key], f"unknown key; {hint}valid keys: {', '.join(sorted(known))}")
    return _build(cls, overrides, prefix)


def _build(cls: type, overrides: dict[str, Any], prefix: str, default: Any = None) -> Any:
    """`default`: the instance whose values stand where nothing is overridden — a nested section starts from its
    parent field's default, so `optim: AdamConfig = field(default_factory=lambda: AdamConfig(lr=1e-3))` keeps 1e-3."""
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        base = getattr(default, f.name) if default is not None else field_default(f)
        if dataclasses.is_dataclass(kind):
            sub = {k[len(f.name) + 1:]: v for k, v in overrides.items() if k.startswith(f.name + ".")}
            kwargs[f.name] = _build(kind, sub, f"{prefix}{f.name}.", base)
        elif f.name in overrides:
            kwargs[f.name] = coerce(f"{prefix}{f.name}", overrides[f.name], kind)
        elif default is not None:
            kwargs[f.name] = base
    obj = cls(**kwargs)
    if hasattr(obj, "check"):
        obj.check(prefix)
    check_across(obj, prefix)
    return obj


def check_across(cfg: Any, prefix: str) -> None:
    """Rules between sections, for any config composed of them (one place, not once per job): a `data.limit`
    below `train.batch_size` leaves no full batch, and the harness drops the partial one, so no step would run."""
    data, train = getattr(cfg, "data", None), getattr(cfg, "train", None)
    limit, batch = getattr(data, "limit", None), getattr(train, "batch_size", None)
    if isinstance(limit, int) and isinstance(batch, int) and limit:
        require(limit >= batch, f"{prefix}data.limit", limit,
                f"at least {prefix}train.batch_size={batch} examples (0 = all); with fewer, no batch is ever full "
                "and nothing trains")


def coerce(key: str, value: Any, kind: type) -> Any:
    """A value of the field's type: Python values are type-checked, command-line strings converted."""
    if typing.get_origin(kind) is list:
        item = typing.get_args(kind)[0]
        items = value
        if isinstance(value, str):  # from a command line: --data.files="['a.txt', 'b.txt']"
            try:
                items = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
                items = None
        if not (isinstance(items, list) and all(type(v) is item for v in items)):
            example = "['a', 'b']" if item is str else "[1, 2]"
            how = f", written as a Python list like \"{example}\"" if isinstance(value, str) else ""
            raise ConfigError(key, value, f"a list of {item.__name__}{how}")
        return items
    if isinstance(value, str) and kind is not str:
        try:
            value = ast.literal_eval(value) if kind is not bool else {"true": True, "false": False}[value.lower()]
        except (ValueError, SyntaxError, KeyError):
            raise ConfigError(key, value, f"{article(kind.__name__)} {kind.__name__}") from None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        value = float(value)
    if type(value) is not kind:
        raise ConfigError(key, value, f"{article(kind.__name__)} {kind.__name__}, got {type(value).__name__}")
    return value


def article(word: str) -> str:
    return "an" if word[0] in "aeiou" else "a"


@cache
def flat_fields(cls: type) -> dict[str, tuple[type, Any, str]]:
    """Dotted key -> (type, default, docstring) for every leaf field of a config tree. The defaults are the ones
    `parse(cls, {})` gives: a nested section's come from its parent field's default, not from the section class."""
    return _flat_fields(cls, None)


def _flat_fields(cls: type, default: Any) -> dict[str, tuple[type, Any, str]]:
    hints = typing.get_type_hints(cls)
    docs = field_docs(cls)
    out = {}
    for f in dataclasses.fields(cls):
        kind = hints[f.name]
        value = getattr(default, f.name) if default is not None else field_default(f)
        if dataclasses.is_dataclass(kind):
            out.update({f"{f.name}.{k}": v for k, v in _flat_fields(kind, value).items()})
        else:
            out[f.name] = (kind, value, docs.get(f.name, ""))
    return out


def field_default(f: dataclasses.Field) -> Any:
    """A field's default value (a fresh one from its default_factory); None for a field without a default."""
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else None


def field_docs(cls: type) -> dict[str, str]:
    """The docstring written under each field (as torchtitan and tyro read them)."""
    body = ast.parse(inspect.getsource(cls)).body[0].body
    docs = {}
    for stmt, nxt in zip(body, body[1:]):
        if isinstance(stmt, ast.AnnAssign) and isinstance(nxt, ast.Expr) and isinstance(nxt.value, ast.Constant):
            docs[stmt.target.id] = " ".join(str(nxt.value.value).split())
    return docs


def to_dict(cfg: Any) -> dict[str, Any]:
    """Flat dotted dict of a config tree: the form stored in checkpoints and result tables."""
    out = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            out.update({f"{f.name}.{k}": v for k, v in to_dict(value).items()})
        else:
            out[f.name] = value
    return out


def section(kind: type) -> Any:
    """A nested config field with its defaults: `data: DataConfig = section(DataConfig)`."""
    return field(default_factory=kind)


# ------------------------------------------------------------------------------------------ trial identity

MECHANICS = frozenset({
    "train.checkpoint_every",  # when resumable state is saved; resume is bit-exact, so the run is the same
    "train.keep_checkpoints",  # how many old checkpoint files stay on disk
    "train.compile",  # the same model and math, compiled for speed (as other hardware, the last bits may differ)
    "train.channels_last",  # memory layout of the same convolutions on GPU; no effect on CPU
    "data.root",  # where the prepared dataset lives: the same data in another folder or on another cluster
})
"""Run-mechanics keys: how a trial runs, not what it computes. They never identify a trial (`identity`), so
changing one neither turns a finished trial into a new one nor stops a checkpoint from resuming."""


def identity(config: dict[str, Any], defaults: dict[str, Any]) -> dict[str, Any]:
    """The keys of a flat config that identify its trial: no run mechanics (MECHANICS), and only values that
    differ from the job's defaults (`defaults`: key -> default, see `default_values`), so that a key added to
    the code at its default leaves every existing trial's identity unchanged."""
    return {k: v for k, v in config.items() if k not in MECHANICS and (k not in defaults or v != defaults[k])}


def default_values(cls: type) -> dict[str, Any]:
    """Dotted key -> default of a config class: what `identity` compares against."""
    return {key: default for key, (_, default, _) in flat_fields(cls).items()}
