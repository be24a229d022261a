"""DARTS's recurrent-cell supernet (Liu, Simonyan & Yang, ICLR 2019, Sec. 2.1 and the ``rnn/model_search.py`` of
their code), for the ``rnn`` and ``enas-rnn`` spaces of :mod:`archsearch.spaces.rnn`.

Every edge j -> i (j < i) of the cell carries a mixed op over 'none' and the four activations; node i's W_i is
shared by its incoming edges, each edge computing [c, h] = W_i s_j and candidate f giving s_j + σ(c)(f(h) − s_j).
Node i sums its edges' mixed outputs. The mixed ops are the generic :class:`MixedOp`, so every one-shot mode
works: DARTS's softmax, GDAS/UNAS's Gumbel samples, ProxylessNAS's binary gates, and single paths (ENAS, SPOS),
where only the edges on the path are computed. The derived cell keeps, per node, the edge whose strongest
non-'none' activation is strongest, with that activation (DARTS's genotype rule for recurrent cells).

The output is the mean of the intermediate nodes; for ``enas-rnn`` on a single path, the mean of the path's loose
ends, as the fixed ENAS cell. DARTS's search network also batch-normalises the states without affine parameters;
that is left out here (the windows are short and the cells small).
"""
from __future__ import annotations

import inspect
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ...ops import Zero
from ...space import Architecture, InputShape, SearchSpace
from ...spaces.rnn import (ACTIVATIONS, RNNLanguageModel, _FN, act_label, check_text_shape, in_label, init_state,
    loose_ends)
from ...spaces.rnn import enas_rnn as enas_rnn_fn
from ...spaces.rnn import rnn as rnn_fn
from .supernet import SUPERNETS, SupernetEntry
from .supernet import MixedOp, PathState, Supernet, _sum

OPS = ("none",) + ACTIVATIONS


def edge_label(i: int, j: int) -> str:
    return f"edge{i}_{j}"


class EdgeActivation(nn.Module):
    """Candidate f on an edge: input (s_j, σ(c), h) -> s_j + σ(c)(f(h) − s_j)."""

    def __init__(self, name: str):
        super().__init__()
        self.name, self.fn = name, _FN[name]

    def forward(self, x: tuple[torch.Tensor, torch.Tensor, torch.Tensor]) -> torch.Tensor:
        s, c, h = x
        return s + c * (self.fn(h) - s)


class EdgeZero(Zero):
    """'none' on an edge (adds nothing)."""

    def forward(self, x) -> torch.Tensor:
        return x[0].mul(0.0)


class SearchRecurrentCell(nn.Module):
    def __init__(self, state: PathState, emb: int, hidden: int, nodes: int, output: str):
        super().__init__()
        self.w0 = nn.Linear(emb + hidden, 2 * hidden, bias=False)
        self.ws = nn.ModuleList(nn.Linear(hidden, 2 * hidden, bias=False) for _ in range(1, nodes))
        self.edges = nn.ModuleDict()
        for i in range(1, nodes):
            for j in range(i):
                label = edge_label(i, j)
                state.alphas.add(label, len(OPS))
                cands = nn.ModuleList(EdgeZero() if n == "none" else EdgeActivation(n) for n in OPS)
                self.edges[label] = MixedOp(label, OPS, cands, state)
        self.__dict__["state"] = state
        self.nodes, self.output = nodes, output

    def begin(self) -> None:
        """Called once per window by the language model: DARTS's softmax(α) computed once, not every step."""
        st = self.state
        self._weights = None
        if st.mode == "softmax":
            self._weights = [torch.stack([self._softmax(edge_label(i, j)) for j in range(i)])
                             for i in range(1, self.nodes)]

    def _softmax(self, label: str) -> torch.Tensor:
        a, idx = self.state.alphas[label], self.state.path.get(label)
        if not idx:
            return F.softmax(a, 0)
        w = torch.zeros_like(a)
        return w.index_put((torch.tensor(idx, device=a.device),), F.softmax(a[list(idx)], 0))

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        st = self.state
        states = [init_state(self.w0, x, h)]
        if st.mode == "softmax" and getattr(self, "_weights", None) is not None:
            return self._forward_softmax(states)
        reads: dict[int, int] = {}
        for i in range(1, self.nodes):
            outs = []
            for j in range(i):
                label = edge_label(i, j)
                if st.mode == "path" and not st.path.get(label):
                    continue  # not on the single path: not computed
                c, hh = self.ws[i - 1](states[j]).chunk(2, -1)
                out = self.edges[label]((states[j], torch.sigmoid(c), hh))
                if out is not None:
                    outs.append(out)
                    reads[i] = j
            states.append(_sum(outs) if outs else states[0].mul(0.0))
        out_nodes = range(1, self.nodes)
        if self.output == "loose" and st.mode == "path":
            out_nodes = loose_ends(self.nodes, reads)
        return torch.stack([states[i] for i in out_nodes]).mean(0)

    def _forward_softmax(self, states: list[torch.Tensor]) -> torch.Tensor:
        """DARTS's relaxation, vectorised over a node's edges and candidates (as in DARTS's own search cell):
        s_i = Σ_j Σ_f w_ijf (s_j + σ(c_ij)(f(h_ij) − s_j)), 'none' adding nothing."""
        for i in range(1, self.nodes):
            prev = torch.stack(states)  # (i, B, H)
            c, hh = self.ws[i - 1](prev).chunk(2, -1)
            c = torch.sigmoid(c)
            w = self._weights[i - 1]  # (i, len(OPS))
            acts = torch.stack([_FN[n](hh) for n in OPS[1:]], 1)  # (i, K, B, H)
            unweighted = prev.unsqueeze(1) + c.unsqueeze(1) * (acts - prev.unsqueeze(1))
            states.append(torch.einsum("jk,jkbh->bh", w[:, 1:], unweighted))
        return torch.stack(states[1:]).mean(0)


class RecurrentSupernet(Supernet):
    """α per edge over ('none', activations); derive one input and activation per node."""

    def __init__(self, space: SearchSpace, model: nn.Module, state: PathState, nodes: int):
        super().__init__(space, model, state, {})
        self.nodes = nodes

    def options(self, label: str) -> tuple:
        return OPS

    def n_chosen(self, label: str) -> int | None:
        return 1

    def derive(self, scores: dict[str, torch.Tensor] | None = None) -> Architecture:
        scores = scores or {k: F.softmax(t.detach().cpu(), 0) for k, t in self.alphas.tensors.items()}
        choices: dict[str, Any] = {}
        for i in range(1, self.nodes):
            best = max(((float(scores[edge_label(i, j)][k]), -j, -k) for j in range(i) for k in range(1, len(OPS))))
            choices[in_label(i)] = (-best[1],)
            choices[act_label(i)] = OPS[-best[2]]
        return self.space.validate(Architecture(choices))

    def path_of(self, arch: Architecture) -> dict[str, tuple[int, ...]]:
        path = {label: () for label in self.alphas.labels}
        for i in range(1, self.nodes):
            path[edge_label(i, arch[in_label(i)][0])] = (OPS.index(arch[act_label(i)]),)
        return path


def _builder(fn, output: str):
    def build(space: SearchSpace, search_space: SearchSpace, shape: InputShape, state: PathState) -> Supernet:
        check_text_shape(shape)
        bound = inspect.signature(fn).bind(None, shape, **search_space.config)
        bound.apply_defaults()
        cfg = bound.arguments
        cell = SearchRecurrentCell(state, cfg["emb"], cfg["hidden"], cfg["nodes"], output)
        model = RNNLanguageModel(cell, shape.num_classes, cfg["emb"], cfg["hidden"], cfg["dropout"],
                                 cfg["dropout_emb"])
        return RecurrentSupernet(space, model, state, cfg["nodes"])
    return build


SUPERNETS.register("rnn")(SupernetEntry(rnn_fn, _builder(rnn_fn, "mean")))
SUPERNETS.register("enas-rnn")(SupernetEntry(enas_rnn_fn, _builder(enas_rnn_fn, "loose")))
