"""The MTRouter network: model encoder + MLP estimator with a score head and a log-cost head.

Shapes follow reference §5/§6 so parameter counts match the authors' (model encoder 4,704 for M = 6),
with the project's second (cost) head of §11.2 so λ can change at run time. The model encoder sees
only normalised metadata plus a per-model residual initialised to zero: an untrained or newly added
model is scored from its metadata alone, and the residual learns what the metadata misses.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import Tensor, nn

from mcp_router.routing.mtrouter.pool import N_META

META_HIDDEN = 32
RESIDUAL_DIM = 16
MODEL_DIM = 64


class MTRouterNet(nn.Module):
    """`forward(zx)` scores every pool model for each history embedding; `forward(zx, idx)` only the
    given model per row (training, where only the logged action is supervised)."""

    def __init__(self, zx_dim: int, meta: np.ndarray, hidden: int = 256, dropout: float = 0.1) -> None:
        super().__init__()
        meta = np.asarray(meta, dtype=np.float32)
        if meta.ndim != 2 or meta.shape[1] != N_META or meta.shape[0] < 1:
            raise ValueError(f"meta must be [M >= 1, {N_META}] normalised features, got {meta.shape}")
        self.zx_dim, self.hidden, self.dropout = zx_dim, hidden, dropout
        # A buffer: saved with the weights, never trained (the normalisation table is frozen upstream).
        self.register_buffer("meta", torch.from_numpy(meta.copy()))
        self.meta_mlp = nn.Sequential(
            nn.Linear(N_META, META_HIDDEN), nn.ReLU(), nn.Linear(META_HIDDEN, META_HIDDEN)
        )
        self.residual = nn.Embedding(meta.shape[0], RESIDUAL_DIM)
        nn.init.zeros_(self.residual.weight)
        self.model_proj = nn.Linear(META_HIDDEN + RESIDUAL_DIM, MODEL_DIM)
        self.model_norm = nn.LayerNorm(MODEL_DIM)
        self.trunk = nn.Sequential(
            nn.Linear(zx_dim + MODEL_DIM, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.score_head = nn.Linear(hidden, 1)  # linear: S' = S − A_t can be negative
        self.cost_head = nn.Linear(hidden, 1)  # log(1 + C_rem / c_bar)

    @property
    def n_models(self) -> int:
        return int(self.meta.shape[0])

    def model_embeddings(self) -> Tensor:
        """z_m for every pool model, [M, 64]."""
        e = self.meta_mlp(self.meta)
        return self.model_norm(self.model_proj(torch.cat([e, self.residual.weight], dim=1)))

    def residual_penalty(self) -> Tensor:
        """‖U‖²_F, the residual regulariser of reference §5."""
        return self.residual.weight.pow(2).sum()

    def forward(self, zx: Tensor, model_idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(score, cost): [n, M] each when `model_idx` is None, else [n] for model `model_idx[i]`."""
        if zx.ndim != 2 or zx.shape[1] != self.zx_dim:
            raise ValueError(f"zx must be [n, {self.zx_dim}], got {tuple(zx.shape)}")
        zm = self.model_embeddings()
        if model_idx is None:
            n, m = zx.shape[0], zm.shape[0]
            x = torch.cat([zx.unsqueeze(1).expand(n, m, -1), zm.unsqueeze(0).expand(n, m, -1)], dim=2)
        else:
            x = torch.cat([zx, zm[model_idx]], dim=1)
        h = self.trunk(x)
        return self.score_head(h).squeeze(-1), self.cost_head(h).squeeze(-1)

    def extended(self, new_meta: np.ndarray) -> MTRouterNet:
        """A copy with `new_meta` rows ([K, 8], normalised with the same frozen table) appended as models
        M..M+K−1 with a zero residual; the existing models' outputs are unchanged."""
        new_meta = np.asarray(new_meta, dtype=np.float32).reshape(-1, N_META)
        meta = np.concatenate([self.meta.detach().cpu().numpy(), new_meta])
        net = MTRouterNet(self.zx_dim, meta, hidden=self.hidden, dropout=self.dropout)
        state = self.state_dict()
        state["meta"] = net.meta.clone()
        state["residual.weight"] = torch.cat(
            [
                state["residual.weight"],
                torch.zeros(len(new_meta), RESIDUAL_DIM, dtype=self.residual.weight.dtype),
            ]
        )
        net.load_state_dict(state)
        return net
