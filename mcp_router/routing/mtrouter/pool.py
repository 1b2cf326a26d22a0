"""The model pool: one `ModelSpec` per candidate model, its 8 metadata features and their normalisation.

The features (reference §5) are the only thing the network knows about a model besides its learned
residual, so they are also how a model added after training is scored zero-shot. The normalisation
table is fitted once and then frozen (`MetaNorm`): refitting it on a changed pool would move every
model's representation, which is what ties the authors' checkpoints to their pool.

No torch here: the server reads the pool at start-up.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger(__name__)

N_META = 8
CUTOFF_EPOCH = date(2026, 1, 1)  # feature 4 counts days from here (negative before it)
# Reference §5 defaults for fields missing from the pool config.
DEFAULT_CONTEXT_WINDOW = 128_000
DEFAULT_MAX_OUTPUT_TOKENS = 4_096
DEFAULT_INPUT_USD_PER_MILLION = 1.0
DEFAULT_OUTPUT_USD_PER_MILLION = 5.0
DEFAULT_KNOWLEDGE_CUTOFF = "2024-01-01"
# Floor of each feature's std in `MetaNorm`: 1 log1p unit (a factor e in tokens or price) for the
# log features and a year for the cutoff (feature 4, in days).
STD_FLOOR = (1.0, 1.0, 1.0, 1.0, 365.0, 1.0, 1.0, 1.0)

_KNOWN_FIELDS = (
    "name",
    "input_cost_per_token",
    "output_cost_per_token",
    "input_cost_per_million",
    "output_cost_per_million",
    "context_window",
    "max_input_tokens",
    "max_output_tokens",
    "knowledge_cutoff",
    "quality_prior",
    "endpoints",
)


@dataclass(frozen=True)
class ModelSpec:
    """One candidate model. Prices are USD per token (LiteLLM's field names); 0.0 means free (a local
    model), so a price is never "unknown" here: `load_models_file` fills in the reference defaults."""

    name: str
    input_cost_per_token: float = 0.0
    output_cost_per_token: float = 0.0
    context_window: int | None = None  # max input tokens; None = unknown (feature default 128000)
    max_output_tokens: int | None = None
    knowledge_cutoff: str | None = None  # "YYYY-MM-DD"
    quality_prior: float | None = None  # 0..1, used before any checkpoint exists
    endpoints: tuple[str, ...] = ()  # llm_complete provider names serving it (server only)
    metadata: Mapping[str, Any] = field(default_factory=dict, hash=False)  # extra keys of the models file

    def cost_usd(self, prompt_tokens: int, completion_tokens: int) -> float:
        return self.input_cost_per_token * prompt_tokens + self.output_cost_per_token * completion_tokens


def spec_to_dict(spec: ModelSpec) -> dict[str, Any]:
    """A JSON-ready dict that `spec_from_dict` reads back (checkpoint sidecars store the pool this way)."""
    out: dict[str, Any] = {
        "name": spec.name,
        "input_cost_per_token": spec.input_cost_per_token,
        "output_cost_per_token": spec.output_cost_per_token,
        "context_window": spec.context_window,
        "max_output_tokens": spec.max_output_tokens,
        "knowledge_cutoff": spec.knowledge_cutoff,
        "quality_prior": spec.quality_prior,
        "endpoints": list(spec.endpoints),
    }
    out.update({k: v for k, v in spec.metadata.items() if k not in out})
    return out


def spec_from_dict(name: str, raw: Mapping[str, Any], where: str = "models file") -> ModelSpec:
    """Validate one model entry. Errors name `where`, the model and the field, and say what to change.

    Aliases: `max_input_tokens` for `context_window` (LiteLLM), and `input/output_cost_per_million`
    (the reference's pool config) for the per-token prices. A missing price takes the reference
    default (1.0 / 5.0 USD per million) with a warning, as the authors' feature code does.
    """

    def fail(field_name: str, expected: str) -> ValueError:
        return ValueError(
            f"{where}: model {name!r}, field {field_name!r}: expected {expected}, "
            f"got {raw.get(field_name)!r}; change the value or remove the field"
        )

    def number(field_name: str) -> float | None:
        value = raw.get(field_name)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
            raise fail(field_name, "a finite number")
        if value < 0:
            raise fail(field_name, "a number >= 0")
        return float(value)

    def tokens(*names: str) -> int | None:
        given = [(n, raw[n]) for n in names if raw.get(n) is not None]
        if len({v for _, v in given}) > 1:
            raise ValueError(
                f"{where}: model {name!r}: fields {' and '.join(repr(n) for n, _ in given)} disagree; "
                "they are aliases, keep one"
            )
        if not given:
            return None
        field_name, value = given[0]
        if (
            isinstance(value, bool)
            or not isinstance(value, int | float)
            or not math.isfinite(value)
            or value != int(value)
            or value < 1
        ):
            raise fail(field_name, "a positive whole number of tokens")
        return int(value)

    def price(kind: str, default_per_million: float) -> float:
        per_token, per_million = number(f"{kind}_cost_per_token"), number(f"{kind}_cost_per_million")
        if per_token is not None and per_million is not None:
            raise ValueError(
                f"{where}: model {name!r}: both {kind}_cost_per_token and {kind}_cost_per_million are "
                "set; keep one"
            )
        if per_token is not None:
            return per_token
        if per_million is not None:
            return per_million / 1e6
        log.warning(
            "%s: model %r has no %s price; assuming %.2f USD per million tokens",
            where,
            name,
            kind,
            default_per_million,
        )
        return default_per_million / 1e6

    if not isinstance(name, str) or not name:
        raise ValueError(f"{where}: a model has an empty or non-string name {name!r}; give it a name")
    cutoff = raw.get("knowledge_cutoff")
    if cutoff is not None:
        try:
            date.fromisoformat(cutoff if isinstance(cutoff, str) and len(cutoff) == 10 else "")
        except ValueError:
            raise fail("knowledge_cutoff", 'a date "YYYY-MM-DD"') from None
    prior = number("quality_prior")
    if prior is not None and prior > 1:
        raise fail("quality_prior", "a number in [0, 1]")
    endpoints = raw.get("endpoints", ())
    if not isinstance(endpoints, list | tuple) or not all(isinstance(e, str) and e for e in endpoints):
        raise fail("endpoints", "a list of provider names")
    return ModelSpec(
        name=name,
        input_cost_per_token=price("input", DEFAULT_INPUT_USD_PER_MILLION),
        output_cost_per_token=price("output", DEFAULT_OUTPUT_USD_PER_MILLION),
        context_window=tokens("context_window", "max_input_tokens"),
        max_output_tokens=tokens("max_output_tokens"),
        knowledge_cutoff=cutoff,
        quality_prior=prior,
        endpoints=tuple(endpoints),
        metadata={k: v for k, v in raw.items() if k not in _KNOWN_FIELDS},
    )


def load_models_file(path: Path) -> dict[str, ModelSpec]:
    """Read a models JSON file, keeping its order (the pool order a checkpoint is tied to).

    Accepted shapes: `{"<name>": {fields}, ...}` (LiteLLM's price file), a list of `{"name": ...,
    fields}`, or `{"models": [...]}` wrapping that list. Unknown keys go to `ModelSpec.metadata`.
    """
    path = Path(path)
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path}: not valid JSON ({exc})") from None
    if isinstance(doc, Mapping) and list(doc) == ["models"] and isinstance(doc["models"], list):
        doc = doc["models"]
    entries: Iterable[tuple[Any, Any]]
    if isinstance(doc, list):
        entries = [(e.get("name") if isinstance(e, Mapping) else None, e) for e in doc]
    elif isinstance(doc, Mapping):
        entries = doc.items()
    else:
        raise ValueError(f"{path}: expected an object mapping model names to fields, or a list of models")
    specs: dict[str, ModelSpec] = {}
    for name, raw in entries:
        if not isinstance(raw, Mapping):
            raise ValueError(f"{path}: model {name!r}: expected an object of fields, got {raw!r}")
        if name in specs:
            raise ValueError(f"{path}: model {name!r} is listed twice; keep one entry")
        specs[name] = spec_from_dict(name, raw, where=str(path))
    if not specs:
        raise ValueError(f"{path}: no models; list at least one")
    return specs


def meta_features(spec: ModelSpec) -> np.ndarray:
    """The 8 raw features of reference §5, float32[8], before normalisation."""
    max_in = float(spec.context_window or DEFAULT_CONTEXT_WINDOW)
    max_out = float(spec.max_output_tokens or DEFAULT_MAX_OUTPUT_TOKENS)
    in_cost = spec.input_cost_per_token * 1e6  # USD per million tokens
    out_cost = spec.output_cost_per_token * 1e6
    cutoff = date.fromisoformat(spec.knowledge_cutoff or DEFAULT_KNOWLEDGE_CUTOFF)
    return np.array(
        [
            math.log1p(max_in),
            math.log1p(max_out),
            math.log1p(in_cost),
            math.log1p(out_cost),
            float((cutoff - CUTOFF_EPOCH).days),
            math.log1p(max_in + max_out),
            math.log1p(out_cost / (in_cost + 1e-6)),
            math.log1p(in_cost + out_cost),
        ],
        dtype=np.float32,
    )


@dataclass(frozen=True)
class MetaNorm:
    """The frozen z-score table for the 8 features (8 means, 8 stds).

    Fitted on the training pool with the population std, but floored at `STD_FLOOR` instead of the
    reference's std + 1e-6. Why: a feature that is (nearly) constant over the pool - one or two
    models, or every model on the default cutoff - has std ~ 0, and a model appended later would then
    get a z-score of ~1e6 on it. With the floor, a model 10x pricier than a one-price pool lands at
    z ~ 2.3 and a year-newer cutoff at z ~ 1. Pools whose features vary more than the floor get the
    reference's z-scores unchanged.
    """

    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if len(self.mean) != N_META or len(self.std) != N_META:
            raise ValueError(f"MetaNorm needs {N_META} means and {N_META} stds")
        if not all(math.isfinite(s) and s > 0 for s in self.std):
            raise ValueError(f"MetaNorm stds must be finite and > 0, got {self.std}")

    @classmethod
    def fit(cls, specs: Sequence[ModelSpec]) -> MetaNorm:
        if not specs:
            raise ValueError("MetaNorm.fit needs at least one model")
        feats = np.stack([meta_features(s) for s in specs]).astype(np.float64)
        std = np.maximum(feats.std(axis=0), STD_FLOOR)
        return cls(mean=tuple(float(m) for m in feats.mean(axis=0)), std=tuple(float(s) for s in std))

    @classmethod
    def from_dict(cls, raw: Mapping[str, Sequence[float]]) -> MetaNorm:
        return cls(mean=tuple(float(m) for m in raw["mean"]), std=tuple(float(s) for s in raw["std"]))

    def to_dict(self) -> dict[str, list[float]]:
        return {"mean": list(self.mean), "std": list(self.std)}

    def apply(self, feats: np.ndarray) -> np.ndarray:
        """z-scores of raw features, [8] or [M, 8] -> same shape, float32."""
        out = (np.asarray(feats, dtype=np.float64) - np.asarray(self.mean)) / np.asarray(self.std)
        return out.astype(np.float32)
