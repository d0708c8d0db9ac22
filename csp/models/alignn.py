"""ALIGNN on fixed-degree graphs: every aggregation is a gather plus a reshape-and-sum.

Shapes: N atoms in the batch, B crystals, k bonds per atom, H hidden width.

* atoms ``h`` (N, H); bonds ``e`` (N, k, H), bond (i, a) going from atom i to ``neighbours[i, a]``;
* angles ``t`` (N, k, k, H): the line graph joins bond (i, a) to the other bonds (i, b != a) of the
  same atom, with the cosine of the angle between them at atom i. The k - 1 partners are stored in
  a full k x k layout whose diagonal (a == b) is masked out of every aggregation: neighbours are then
  broadcasts instead of gathers, which is faster on CPU, and the result equals the (N, k, k - 1) form.

No scatter appears anywhere (crystal pooling is a one-hot matmul), so the ONNX export is exact.
Normalisation is BatchNorm (as in ALIGNN): in eval mode a per-channel affine map, cheap on the
large angle tensors and independent of the batch.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F  # noqa: N812

from csp.errors import InputError
from csp.models.config import ALIGNNConfig
from csp.models.features import element_feature_matrix


class RBFExpansion(nn.Module):
    """Gaussian basis: phi_c(x) = exp(-gamma (x - mu_c)^2), centres evenly spaced on [vmin, vmax]."""

    def __init__(self, vmin: float, vmax: float, bins: int) -> None:
        super().__init__()
        centers = torch.linspace(vmin, vmax, bins)
        self.register_buffer("centers", centers)
        self.gamma = 1.0 / float(centers[1] - centers[0]) ** 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.exp(-self.gamma * (x.unsqueeze(-1) - self.centers) ** 2)


class Norm(nn.Module):
    """BatchNorm over the last (feature) axis of a tensor of any rank."""

    def __init__(self, features: int) -> None:
        super().__init__()
        self.norm = nn.BatchNorm1d(features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.norm(x.reshape(-1, x.shape[-1])).reshape(x.shape)


class MLPLayer(nn.Module):
    """Linear -> BatchNorm -> SiLU."""

    def __init__(self, in_features: int, out_features: int) -> None:
        super().__init__()
        self.linear = nn.Linear(in_features, out_features)
        self.norm = Norm(out_features)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.silu(self.norm(self.linear(x)))


class EdgeGatedGraphConv(nn.Module):
    """Edge-gated graph convolution (Bresson & Laurent; as in ALIGNN) on a fixed-degree neighbourhood.

    ``gather`` maps node-shaped (..., H) to neighbour-shaped (..., D, H) tensors, so the same layer
    serves the bond graph (nodes = atoms) and the line graph (nodes = bonds); ``mask`` (D-broadcastable,
    or None) removes neighbour slots from the aggregation. With ``update_edges=False`` the edge
    features are not updated (the last line-graph layer: nothing reads them afterwards).
    """

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.gate_src = nn.Linear(hidden, hidden)
        self.gate_dst = nn.Linear(hidden, hidden)
        self.gate_edge = nn.Linear(hidden, hidden)
        self.update_self = nn.Linear(hidden, hidden)
        self.update_nbr = nn.Linear(hidden, hidden)
        self.norm_nodes = Norm(hidden)
        self.norm_edges = Norm(hidden)

    def forward(
        self, x: torch.Tensor, y: torch.Tensor, gather, mask=None, update_edges: bool = True
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # m_ij = A x_i + B x_j + C y_ij
        m = self.gate_src(x).unsqueeze(-2) + gather(self.gate_dst(x)) + self.gate_edge(y)
        # sigma_ij = sigmoid(m_ij)   (times the neighbour mask)
        sigma = torch.sigmoid(m) if mask is None else torch.sigmoid(m) * mask
        # agg_i = sum_j sigma_ij * (V x_j) / (sum_j sigma_ij + eps)
        agg = (sigma * gather(self.update_nbr(x))).sum(-2) / (sigma.sum(-2) + 1e-6)
        # x_i' = x_i + SiLU(BN(U x_i + agg_i))
        x = x + F.silu(self.norm_nodes(self.update_self(x) + agg))
        if update_edges:
            # y_ij' = y_ij + SiLU(BN(m_ij))
            y = y + F.silu(self.norm_edges(m))
        return x, y


class ALIGNNLayer(nn.Module):
    """One ALIGNN layer: edge-gated conv on the bond graph, then on the line graph."""

    def __init__(self, hidden: int) -> None:
        super().__init__()
        self.bond_graph = EdgeGatedGraphConv(hidden)
        self.line_graph = EdgeGatedGraphConv(hidden)

    def forward(self, h, e, t, gather_atoms, gather_bonds, pair_mask, last: bool = False):
        # atoms exchange messages along bonds: (h, e) -> (h', m)
        h, e = self.bond_graph(h, e, gather_atoms)
        # bonds exchange messages along bond pairs (angles): (m, t) -> (e', t')
        e, t = self.line_graph(e, t, gather_bonds, pair_mask, update_edges=not last)
        return h, e, t


class ALIGNNBackbone(nn.Module):
    """Embeddings, ALIGNN and edge-gated layers, and crystal mean pooling: (graphs) -> (B, H)."""

    def __init__(self, config: ALIGNNConfig) -> None:
        super().__init__()
        H, E, k = config.hidden, config.embedding, config.k
        self.register_buffer("element_features", torch.from_numpy(element_feature_matrix()))
        # 1 for bond pairs (a, b != a), 0 on the diagonal: the line graph's k - 1 partners per bond
        pair_mask = 1.0 - np.eye(k, dtype=np.float32)
        self.register_buffer("pair_mask", torch.from_numpy(pair_mask).reshape(1, k, k, 1))
        self.k = k
        self.atom_embedding = MLPLayer(self.element_features.shape[1], H)
        self.edge_embedding = nn.Sequential(
            RBFExpansion(0.0, config.cutoff, config.edge_bins),
            MLPLayer(config.edge_bins, E),
            MLPLayer(E, H),
        )
        self.angle_embedding = nn.Sequential(
            RBFExpansion(-1.0, 1.0, config.angle_bins),
            MLPLayer(config.angle_bins, E),
            MLPLayer(E, H),
        )
        self.alignn_layers = nn.ModuleList(ALIGNNLayer(H) for _ in range(config.alignn_layers))
        self.gcn_layers = nn.ModuleList(EdgeGatedGraphConv(H) for _ in range(config.gcn_layers))

    def forward(self, numbers, neighbours, bond_vectors, crystal_index, natoms):
        # bond lengths d_ia = |r_ia| and unit vectors u_ia = r_ia / d_ia
        length = torch.linalg.vector_norm(bond_vectors, dim=-1)
        unit = bond_vectors / length.clamp(min=1e-6).unsqueeze(-1)  # overlapping atoms give 0, not NaN
        # cos theta_iab = u_ia . u_ib for every bond pair (a, b) of atom i (diagonal masked later)
        cos = torch.matmul(unit, unit.transpose(1, 2)).clamp(-1.0, 1.0)  # (N, k, k)

        h = self.atom_embedding(self.element_features[numbers])  # (N, H)
        e = self.edge_embedding(length)  # (N, k, H)
        t = self.angle_embedding(cos)  # (N, k, k, H)

        def gather_atoms(x: torch.Tensor) -> torch.Tensor:  # (N, H) -> (N, k, H): x_j for bond i -> j
            return x[neighbours]

        def gather_bonds(x: torch.Tensor) -> torch.Tensor:  # (N, k, H) -> (N, 1, k, H): x_ib of pair (a, b)
            return x.unsqueeze(1)

        for n, layer in enumerate(self.alignn_layers):
            last = n == len(self.alignn_layers) - 1
            h, e, t = layer(h, e, t, gather_atoms, gather_bonds, self.pair_mask, last=last)
        for layer in self.gcn_layers:
            h, e = layer(h, e, gather_atoms)

        # mean pooling: pooled_b = (1 / n_b) sum_{i in b} h_i, as a one-hot (B, N) matmul (no scatter)
        crystals = torch.arange(natoms.shape[0], device=h.device, dtype=crystal_index.dtype)
        one_hot = (crystals.unsqueeze(1) == crystal_index.unsqueeze(0)).to(h.dtype)
        return torch.matmul(one_hot, h) / natoms.to(h.dtype).unsqueeze(1)


class RegressionHead(nn.Module):
    """MLP head; output in target units: y = std * f(pooled) + mean."""

    def __init__(self, hidden: int, head_hidden: int) -> None:
        super().__init__()
        self.mlp = nn.Sequential(nn.Linear(hidden, head_hidden), nn.SiLU(), nn.Linear(head_hidden, 1))
        self.register_buffer("target_mean", torch.zeros(()))
        self.register_buffer("target_std", torch.ones(()))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        return self.mlp(pooled).squeeze(-1) * self.target_std + self.target_mean


class BaggedHeads(nn.Module):
    """n_bags independent two-layer MLP classifiers evaluated at once: (B, H) -> (B, n_bags) logits."""

    def __init__(self, hidden: int, head_hidden: int, n_bags: int) -> None:
        super().__init__()
        scale1, scale2 = hidden**-0.5, head_hidden**-0.5
        self.w1 = nn.Parameter(torch.empty(n_bags, hidden, head_hidden).uniform_(-scale1, scale1))
        self.b1 = nn.Parameter(torch.empty(n_bags, head_hidden).uniform_(-scale1, scale1))
        self.w2 = nn.Parameter(torch.empty(n_bags, head_hidden).uniform_(-scale2, scale2))
        self.b2 = nn.Parameter(torch.zeros(n_bags))

    def forward(self, pooled: torch.Tensor) -> torch.Tensor:
        # z_bkf = SiLU(sum_h x_bh W1_khf + b1_kf)
        z = F.silu(torch.einsum("bh,khf->bkf", pooled, self.w1) + self.b1)
        # logit_bk = sum_f z_bkf W2_kf + b2_k
        return torch.einsum("bkf,kf->bk", z, self.w2) + self.b2


class ALIGNN(nn.Module):
    """ALIGNN for crystals on fixed-degree graphs.

    ``forward(numbers (N,), neighbours (N, k), bond_vectors (N, k, 3), crystal_index (N,), natoms (B,))``
    returns (B,) predictions in target units for task "regression", or (B, n_bags) logits for "pu".

    Multi-fidelity regression (``config.fidelities`` = F >= 2): one shared trunk (the backbone) and one
    output head per fidelity of the training labels (0 DFT, 1 mlip: a universal potential's labels, see
    :data:`csp.models.dataset.FIDELITIES`). ``forward(..., fidelity=f)`` with ``f`` (B,) int64 gives each
    crystal its own fidelity's prediction; without ``fidelity`` every crystal gets the DFT head (head 0),
    which is all that inference, the scorer and the ONNX export ever use (:meth:`single_fidelity`). A
    single-fidelity model given ``fidelity`` predicts every row with its one head (labels mixed in one target).

    Why heads and not a fidelity embedding: multi-fidelity MEGNet (C. Chen, Y. Zuo, W. Ye, X. Li, S. P. Ong,
    Learning properties of ordered and disordered materials from multi-fidelity data, Nat. Comput. Sci. 1,
    46 (2021)) feeds a learned fidelity embedding into the network as its global state. Here the fidelities
    differ chiefly by composition-dependent offsets (CHGNet's formation enthalpies against its own elemental
    references vs DFT's), which a head on the mean-pooled features (they carry the composition) fits
    directly; each head has its own target scaling (the mlip labels span ~10x the DFT range: random
    structures far above the hull); and the DFT head alone is exactly a single-fidelity model, so the
    exported graph, its inputs and its parity test stay those of the shipped models. Per-dataset heads on a
    shared trunk are also how multi-dataset pretraining mixes labels of different levels of theory (JMP:
    N. Shoghi et al., From molecules to materials: pre-training large generalizable models for atomic
    property prediction, ICLR 2024; DPA-2: D. Zhang et al., npj Comput. Mater. 10, 293 (2024)).

    ``config.fidelity_heads`` chooses how head f >= 1 predicts: ``"separate"``, y_f = g_f(pooled), its own
    MLP (the DFT head sees DFT labels only; the mlip rows reach it through the shared trunk); ``"delta"``,
    y_f = y_0 + g_f(pooled), the DFT head plus a correction (Delta-learning, as in the autoregressive
    multi-fidelity model y_high = rho y_low + delta of M. C. Kennedy and A. O'Hagan, Biometrika 87, 1 (2000),
    with rho = 1 and the roles turned round): the mlip rows then train the DFT head itself, so what they hold
    about off-equilibrium structures reaches the DFT prediction directly, while g_f absorbs the offset.
    """

    def __init__(self, config: ALIGNNConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = ALIGNNBackbone(config)
        if config.task == "regression":
            self.head: nn.Module = RegressionHead(config.hidden, config.head_hidden)
        else:
            self.head = BaggedHeads(config.hidden, config.head_hidden, config.n_bags)
        # heads of fidelities 1..F-1 (empty for a single-fidelity model, whose state_dict is unchanged)
        self.fidelity_heads = nn.ModuleList(
            RegressionHead(config.hidden, config.head_hidden) for _ in range(config.fidelities - 1)
        )

    @property
    def heads(self) -> list[nn.Module]:
        """Every output head, fidelity order: [DFT head, head 1, ...]."""
        return [self.head, *self.fidelity_heads]

    def fidelity_outputs(self, pooled: torch.Tensor) -> torch.Tensor:
        """(B, F) predictions of every fidelity head from pooled features (B, H), target units."""
        dft = self.head(pooled)
        delta = self.config.fidelity_heads == "delta"
        # separate: y_f = g_f(pooled); delta: y_f = y_0 + g_f(pooled)
        others = [head(pooled) + dft if delta else head(pooled) for head in self.fidelity_heads]
        return torch.stack([dft, *others], dim=1)

    def forward(
        self, numbers, neighbours, bond_vectors, crystal_index, natoms, fidelity: torch.Tensor | None = None
    ) -> torch.Tensor:
        pooled = self.backbone(numbers, neighbours, bond_vectors, crystal_index, natoms)
        if fidelity is None or not len(self.fidelity_heads):
            return self.head(pooled)
        # y_b = y_{b, f_b}: each crystal through its own fidelity's head
        return self.fidelity_outputs(pooled).gather(1, fidelity.unsqueeze(1)).squeeze(1)

    def forward_graphs(self, graphs) -> torch.Tensor:
        """Run on a :class:`csp.models.graphs.CrystalGraphs` (numpy arrays moved to the model's device)."""
        return self(*graph_tensors(graphs, device=next(self.parameters()).device))

    def single_fidelity(self) -> ALIGNN:
        """This model with its DFT head only (the same backbone and head objects, not copies).

        A single-fidelity model is returned as it is. The result has ``config.fidelities`` = 1 and
        predicts exactly what ``forward`` without ``fidelity`` predicts.
        """
        if not len(self.fidelity_heads):
            return self
        with torch.random.fork_rng(devices=[]):  # building the shell draws weights: leave the stream alone
            model = ALIGNN(replace(self.config, fidelities=1, fidelity_heads="separate"))
        model.backbone, model.head = self.backbone, self.head
        return model.train(self.training)


class ALIGNNEnsemble(nn.Module):
    """M independently trained regression ALIGNNs of one config, evaluated together.

    ``forward(numbers (N,), neighbours (N, k), bond_vectors (N, k, 3), crystal_index (N,), natoms (B,))``
    returns (B, M) member predictions in target units (eV/atom); every member sees the same graphs.
    The members differ only in their weights (their own seed and bootstrap draw of the training split,
    :func:`csp.models.training.train_regression`); the mean over members is the prediction and the
    population standard deviation over members its spread (:mod:`csp.models.onnx_export`).

    Args:
        config: the config every member shares (task must be "regression").
        n_members: number of members M, at least 2.

    Raises:
        InputError: a non-regression config or fewer than 2 members.
    """

    def __init__(self, config: ALIGNNConfig, n_members: int) -> None:
        super().__init__()
        if config.task != "regression":
            raise InputError("An enthalpy ensemble needs a regression config (task='regression').")
        if not isinstance(n_members, int) or isinstance(n_members, bool) or n_members < 2:
            raise InputError(f"An ensemble needs at least 2 members, got {n_members!r}.")
        self.config = config
        self.members = nn.ModuleList(ALIGNN(config) for _ in range(n_members))

    @classmethod
    def from_members(cls, members: list[ALIGNN]) -> ALIGNNEnsemble:
        """An ensemble holding these trained members (their weights, not copies); configs must agree."""
        if len(members) < 2:
            raise InputError(f"An ensemble needs at least 2 members, got {len(members)}.")
        if len({m.config for m in members}) != 1:
            raise InputError("The members of an ensemble must share one config.")
        ensemble = cls(members[0].config, len(members))
        ensemble.members = nn.ModuleList(members)
        return ensemble

    @property
    def n_members(self) -> int:
        """Number of members M."""
        return len(self.members)

    def forward(
        self, numbers, neighbours, bond_vectors, crystal_index, natoms, fidelity: torch.Tensor | None = None
    ) -> torch.Tensor:
        # y_bm = f_m(crystal b): every member on the same batch (each through its fidelity's head when
        # ``fidelity`` is given, else its DFT head), stacked along the last axis
        return torch.stack(
            [m(numbers, neighbours, bond_vectors, crystal_index, natoms, fidelity) for m in self.members],
            dim=-1,
        )

    def forward_graphs(self, graphs) -> torch.Tensor:
        """Run on a :class:`csp.models.graphs.CrystalGraphs`: (B, M) predictions in eV/atom."""
        return self(*graph_tensors(graphs, device=next(self.parameters()).device))

    def single_fidelity(self) -> ALIGNNEnsemble:
        """The ensemble of the members' DFT heads (:meth:`ALIGNN.single_fidelity`); itself if single-fidelity."""
        if self.config.fidelities == 1:
            return self
        with torch.random.fork_rng(devices=[]):
            return ALIGNNEnsemble.from_members([m.single_fidelity() for m in self.members])


def n_members(model: nn.Module) -> int:
    """Members of a model: M for an :class:`ALIGNNEnsemble`, 1 for a single :class:`ALIGNN`."""
    return model.n_members if isinstance(model, ALIGNNEnsemble) else 1


def graph_tensors(graphs, device: torch.device | str = "cpu") -> tuple[torch.Tensor, ...]:
    """The five model inputs of a :class:`csp.models.graphs.CrystalGraphs`, as torch tensors."""
    return (
        torch.as_tensor(graphs.numbers, dtype=torch.int64, device=device),
        torch.as_tensor(graphs.neighbours, dtype=torch.int64, device=device),
        torch.as_tensor(graphs.bond_vectors, dtype=torch.float32, device=device),
        torch.as_tensor(graphs.crystal_index, dtype=torch.int64, device=device),
        torch.as_tensor(graphs.natoms, dtype=torch.int64, device=device),
    )
