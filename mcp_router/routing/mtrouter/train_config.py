"""The MTRouter training configuration and the estimator choices, without torch.

Kept apart from `train` so the command line can build its `train` flags from these fields (and check
them) without importing torch on every `mcp-router` invocation.

Defaults: the 8-epoch cosine schedule run to its end on every row (no early-stopping hold-out),
chosen by 5-fold cross-validation on the LLMRouter training file only (`mcp-router cv`, table in
benchmarks/results/mtrouter-llmrouter-cv.txt): its out-of-fold frontier beat 4 epochs and the
reference schedule (100 epochs, 10 % of sessions held out, patience 3, which stops at epoch 4-7
while the learning rate is still near its peak), alone and averaged with the ridge. Five members: on
the same folds a bag of five 8-epoch MLPs had the best mean merit and cost ratio of every candidate,
and the smallest spread over seeds (the `bag5` rows of that table).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

ESTIMATORS = ("auto", "ridge", "mlp", "ensemble")


def _help(text: str) -> dict[str, str]:
    return {"help": text}


@dataclass(frozen=True)
class TrainConfig:
    """Every field is also a `mcp-router train` flag (`--weight-decay` for `weight_decay`, ...), with the
    field's help text; `__post_init__` rejects values training cannot use, saying what to change."""

    lr: float = field(default=1e-3, metadata=_help("peak AdamW learning rate"))
    weight_decay: float = field(default=0.01, metadata=_help("AdamW weight decay"))
    batch_size: int = field(default=64, metadata=_help("rows per gradient step"))
    epochs: int = field(default=8, metadata=_help("length of the cosine schedule, in epochs"))
    patience: int = field(
        default=3, metadata=_help("epochs without a better validation loss before stopping")
    )
    val_fraction: float = field(
        default=0.0,
        metadata=_help("share of sessions held out for early stopping (0: train on all, run every epoch)"),
    )
    residual_weight: float = field(
        default=1e-4, metadata=_help("w in w·‖U‖² on the per-model residual (reference §5)")
    )
    kappa: float = field(default=1.0, metadata=_help("weight of the cost head's loss"))
    min_lr: float = field(default=1e-5, metadata=_help("learning rate at the end of the cosine schedule"))
    grad_clip: float = field(default=1.0, metadata=_help("gradient-norm clip"))
    seed: int = field(default=0, metadata=_help("seed of initialisation, batch order and splits"))
    members: int = field(
        default=5,
        metadata=_help("MLP members initialised apart, trained side by side and averaged (a seed bag)"),
    )

    def __post_init__(self) -> None:
        problems = [
            f"{name} must be {rule}, got {getattr(self, name)!r}"
            for name, rule, ok in (
                ("lr", "> 0", self.lr > 0),
                ("weight_decay", ">= 0", self.weight_decay >= 0),
                ("batch_size", "a whole number >= 1", _whole(self.batch_size, 1)),
                ("epochs", "a whole number >= 1", _whole(self.epochs, 1)),
                ("patience", "a whole number >= 1", _whole(self.patience, 1)),
                ("val_fraction", "in [0, 1)", 0 <= self.val_fraction < 1),
                ("residual_weight", ">= 0", self.residual_weight >= 0),
                ("kappa", ">= 0", self.kappa >= 0),
                ("min_lr", "in [0, lr]", 0 <= self.min_lr <= self.lr),
                ("grad_clip", "> 0", self.grad_clip > 0),
                ("seed", "a whole number >= 0", _whole(self.seed, 0)),
                ("members", "a whole number >= 1", _whole(self.members, 1)),
            )
            if not ok
        ]
        if problems:
            raise ValueError("invalid training config: " + "; ".join(problems))

    @classmethod
    def field_help(cls) -> dict[str, tuple[type, Any, str]]:
        """name -> (type, default, help) for every field, in declaration order."""
        kinds = {"int": int, "float": float}
        return {f.name: (kinds[str(f.type)], f.default, f.metadata["help"]) for f in fields(cls)}


def _whole(value: Any, minimum: int) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum
