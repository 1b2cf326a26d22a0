"""The MTRouter network: model encoder + MLP estimator with a score head and a log-cost head.

Shapes follow reference §5/§6 so parameter counts match the authors' (model encoder 4,704 for M = 6),
with the project's second (cost) head of §11.2 so λ can change at run time. The model encoder sees
only normalised metadata plus a per-model residual initialised to zero: an untrained or newly added
model is scored from its metadata alone, and the residual learns what the metadata misses.

The network is a bag of `members` independently initialised copies held in stacked tensors (every
weight has a leading member axis) and served as their average. A single MLP's frontier moves with its
training seed by more than its lead over per-model ridge (`mcp-router eval --seeds 5`); averaging
members cancels most of that spread. Stacking trains all members in one batched pass per step, so a
bag of five costs far less than five fits. With one member the state dict holds the same bytes under
the same keys as the earlier one-network layout, so its checkpoints, and their ids, still load.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import Tensor, nn
from torch.nn import functional as F

from mcp_router.routing.mtrouter.pool import N_META

META_HIDDEN = 32
RESIDUAL_DIM = 16
MODEL_DIM = 64


class MemberLinear(nn.Module):
    """`members` independent affine maps applied to [members, n, d_in] inputs, each initialised as
    `nn.Linear` initialises one."""

    def __init__(self, members: int, d_in: int, d_out: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(members, d_out, d_in))
        self.bias = nn.Parameter(torch.empty(members, d_out))
        bound = 1.0 / math.sqrt(d_in)
        for k in range(members):
            nn.init.kaiming_uniform_(self.weight[k], a=math.sqrt(5))
        nn.init.uniform_(self.bias, -bound, bound)

    def forward(self, x: Tensor) -> Tensor:
        return torch.baddbmm(self.bias.unsqueeze(1), x, self.weight.transpose(1, 2))


class MemberLayerNorm(nn.Module):
    """LayerNorm over the last axis with a separate gain and shift per member."""

    def __init__(self, members: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.ones(members, dim))
        self.bias = nn.Parameter(torch.zeros(members, dim))

    def forward(self, x: Tensor) -> Tensor:  # [members, n, dim]
        return F.layer_norm(x, x.shape[-1:]) * self.weight.unsqueeze(1) + self.bias.unsqueeze(1)


class MemberTable(nn.Module):
    """A [members, rows, dim] parameter table (the per-model residual U of each member)."""

    def __init__(self, members: int, rows: int, dim: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(members, rows, dim))


class MTRouterNet(nn.Module):
    """`forward(zx)` scores every pool model for each history embedding; `forward(zx, idx)` only the
    given model per row (training, where only the logged action is supervised). Both average the
    members; `member_outputs` gives each member's own, which is what training fits."""

    def __init__(
        self, zx_dim: int, meta: np.ndarray, hidden: int = 256, dropout: float = 0.1, members: int = 1
    ) -> None:
        super().__init__()
        meta = np.asarray(meta, dtype=np.float32)
        if meta.ndim != 2 or meta.shape[1] != N_META or meta.shape[0] < 1:
            raise ValueError(f"meta must be [M >= 1, {N_META}] normalised features, got {meta.shape}")
        if not isinstance(members, int) or members < 1:
            raise ValueError(f"members must be a whole number >= 1, got {members!r}")
        self.zx_dim, self.hidden, self.dropout, self.members = zx_dim, hidden, dropout, members
        # A buffer: saved with the weights, never trained (the normalisation table is frozen upstream).
        self.register_buffer("meta", torch.from_numpy(meta.copy()))
        k = members
        self.meta_mlp = nn.Sequential(
            MemberLinear(k, N_META, META_HIDDEN), nn.ReLU(), MemberLinear(k, META_HIDDEN, META_HIDDEN)
        )
        self.residual = MemberTable(k, meta.shape[0], RESIDUAL_DIM)
        self.model_proj = MemberLinear(k, META_HIDDEN + RESIDUAL_DIM, MODEL_DIM)
        self.model_norm = MemberLayerNorm(k, MODEL_DIM)
        self.trunk = nn.Sequential(
            MemberLinear(k, zx_dim + MODEL_DIM, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
            MemberLinear(k, hidden, hidden),
            nn.ReLU(),
            nn.Dropout(dropout),
        )
        self.score_head = MemberLinear(k, hidden, 1)  # linear: S' = S − A_t can be negative
        self.cost_head = MemberLinear(k, hidden, 1)  # log(1 + C_rem / c_bar)

    @property
    def n_models(self) -> int:
        return int(self.meta.shape[0])

    def model_embeddings(self) -> Tensor:
        """z_m of every pool model for every member, [members, M, 64]."""
        e = self.meta_mlp(self.meta.expand(self.members, -1, -1))
        return self.model_norm(self.model_proj(torch.cat([e, self.residual.weight], dim=2)))

    def residual_penalty(self) -> Tensor:
        """‖U‖²_F summed over members: the residual regulariser of reference §5, for each member."""
        return self.residual.weight.pow(2).sum()

    def member_outputs(self, zx: Tensor, model_idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(score, cost) of each member: [members, n, M] when `model_idx` is None, else [members, n].

        The trunk's first layer acts on [z_x, z_m]; it is applied as z_x·W_xᵀ + z_m·W_mᵀ, computed once
        per row and once per model, then added: the same numbers as the concatenation without
        materialising an [n·M, D + 64] input."""
        if zx.ndim != 2 or zx.shape[1] != self.zx_dim:
            raise ValueError(f"zx must be [n, {self.zx_dim}], got {tuple(zx.shape)}")
        first: MemberLinear = self.trunk[0]
        w_x, w_m = first.weight[:, :, : self.zx_dim], first.weight[:, :, self.zx_dim :]
        from_x = torch.matmul(zx, w_x.transpose(1, 2)) + first.bias.unsqueeze(1)  # [K, n, H]
        from_m = torch.bmm(self.model_embeddings(), w_m.transpose(1, 2))  # [K, M, H]
        if model_idx is None:
            k, n, m = self.members, zx.shape[0], self.n_models
            h = (from_x.unsqueeze(2) + from_m.unsqueeze(1)).reshape(k, n * m, -1)
        else:
            h = from_x + from_m[:, model_idx]
        for layer in list(self.trunk)[1:]:  # the rest of the trunk, after its first layer
            h = layer(h)
        score, cost = self.score_head(h).squeeze(-1), self.cost_head(h).squeeze(-1)
        if model_idx is None:
            score, cost = score.reshape(k, n, m), cost.reshape(k, n, m)
        return score, cost

    def forward(self, zx: Tensor, model_idx: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """(score, cost) averaged over members: [n, M] each when `model_idx` is None, else [n]."""
        score, cost = self.member_outputs(zx, model_idx)
        return score.mean(0), cost.mean(0)

    def clip_grad_norm_(self, max_norm: float) -> None:
        """Clip each member's gradient to norm `max_norm` on its own, as separate training would."""
        grads = [p.grad for p in self.parameters() if p.grad is not None]
        sq = torch.stack([g.pow(2).reshape(self.members, -1).sum(1) for g in grads]).sum(0)
        scale = (max_norm / (sq.sqrt() + 1e-6)).clamp(max=1.0)
        for g in grads:
            g.mul_(scale.view(-1, *([1] * (g.ndim - 1))))

    def extended(self, new_meta: np.ndarray) -> MTRouterNet:
        """A copy with `new_meta` rows ([K, 8], normalised with the same frozen table) appended as models
        M..M+K−1 with a zero residual; the existing models' outputs are unchanged."""
        new_meta = np.asarray(new_meta, dtype=np.float32).reshape(-1, N_META)
        meta = np.concatenate([self.meta.detach().cpu().numpy(), new_meta])
        net = MTRouterNet(self.zx_dim, meta, hidden=self.hidden, dropout=self.dropout, members=self.members)
        state = self.state_dict()
        state["meta"] = net.meta.clone()
        residual = state["residual.weight"]
        state["residual.weight"] = torch.cat(
            [residual, residual.new_zeros(self.members, len(new_meta), RESIDUAL_DIM)], dim=1
        )
        net.load_state_dict(state)
        return net

    def load_any_state(self, state: dict[str, Tensor]) -> None:
        """Load a state dict of this layout, or of the one-network layout (no member axis), which is
        the same bytes for one member."""
        own = self.state_dict()
        self.load_state_dict(
            {
                key: value.unsqueeze(0) if key in own and value.ndim == own[key].ndim - 1 else value
                for key, value in state.items()
            }
        )
