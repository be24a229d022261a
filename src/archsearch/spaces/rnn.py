"""Recurrent-cell spaces for word-level language modelling: the DARTS recurrent cell (Liu, Simonyan & Yang, ICLR
2019, Sec. 3.2 and A.1.2) and the ENAS recurrent cell (Pham et al., ICML 2018, Sec. 2.1).

A cell maps the input embedding x_t and the previous hidden state h_{t-1} to h_t through ``nodes`` intermediate
nodes. Node 0 is fixed: [c0, h0] = W_0 [x_t, h_{t-1}], s_0 = h_{t-1} + σ(c0)·(tanh(h0) − h_{t-1}). Each later
node i picks one earlier node j (decision ``node{i}_in``) and an activation f (decision ``node{i}_act``: tanh,
relu, sigmoid, identity) and computes, with its own W_i, the highway update both papers use:

    [c, h] = W_i s_j,   s_i = s_j + σ(c)·(f(h) − s_j).

The output h_t is the mean of the intermediate nodes: all of them in DARTS's space (``rnn``), the loose ends (nodes
no other node reads) in ENAS's (``enas-rnn``). One simplification of ENAS: its first node's activation is a
decision too, while here node 0 is DARTS's fixed highway node in both spaces. DARTS's supernet adds a 'none'
candidate on every edge (see :mod:`archsearch.strategies.oneshot.rnn_supernet`). The network is the
AWD-LSTM-style model both papers train: embedding, the cell unrolled over the window (h_0 = 0 for each window),
dropout, a decoder tied to the embedding.
It takes token windows (N, T) and returns logits (N, vocab, T) (a :class:`archsearch.datasets.text.TextDataset`'s shape:
``InputShape(1, 1, T, vocab)``). Defaults are small for CPUs (DARTS: 300 units, 8 nodes; ENAS: 1000 units,
12 nodes).
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..space import Architecture, Chooser, InputShape, SearchSpace
from .registry import register_space

ACTIVATIONS = ("tanh", "relu", "sigmoid", "identity")
_FN = {"tanh": torch.tanh, "relu": torch.relu, "sigmoid": torch.sigmoid, "identity": lambda t: t}


def in_label(i: int) -> str:
    return f"node{i}_in"


def act_label(i: int) -> str:
    return f"node{i}_act"


class Activation(nn.Module):
    def __init__(self, name: str):
        super().__init__()
        self.name, self.fn = name, _FN[name]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(x)

    def extra_repr(self) -> str:
        return self.name


def init_state(w0: nn.Linear, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    c0, h0 = w0(torch.cat([x, h], -1)).chunk(2, -1)
    return h + torch.sigmoid(c0) * (torch.tanh(h0) - h)


def loose_ends(nodes: int, inputs: dict[int, int]) -> list[int]:
    """Intermediate nodes (1..nodes-1) that no node reads (ENAS's output); node -> the node it reads."""
    used = set(inputs.values())
    return [i for i in range(1, nodes) if i not in used] or [nodes - 1]


class RecurrentCell(nn.Module):
    """The fixed cell: only the chosen input and activation of every node."""

    def __init__(self, c: Chooser, emb: int, hidden: int, nodes: int, output: str):
        super().__init__()
        self.w0 = nn.Linear(emb + hidden, 2 * hidden, bias=False)
        self.ws = nn.ModuleList(nn.Linear(hidden, 2 * hidden, bias=False) for _ in range(1, nodes))
        self.select = nn.ModuleList(c.inputs(in_label(i), i, 1) for i in range(1, nodes))
        self.acts = nn.ModuleList(c.layer(act_label(i), {a: (lambda a=a: Activation(a)) for a in ACTIVATIONS})
                                  for i in range(1, nodes))
        self.nodes, self.output = nodes, output

    def out_nodes(self) -> list[int]:
        if self.output == "mean":
            return list(range(1, self.nodes))
        return loose_ends(self.nodes, {i: sel.active_indices[0] for i, sel in enumerate(self.select, 1)})

    def forward(self, x: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        states = [init_state(self.w0, x, h)]
        for w, sel, act in zip(self.ws, self.select, self.acts):
            s = sel([states[k] for k in sel.active_indices])
            c, hh = w(s).chunk(2, -1)
            states.append(s + torch.sigmoid(c) * (act(hh) - s))
        return torch.stack([states[i] for i in self.out_nodes()]).mean(0)


class RNNLanguageModel(nn.Module):
    """Embedding -> recurrent cell over the window -> dropout -> tied decoder; logits (N, vocab, T)."""

    def __init__(self, cell: nn.Module, vocab: int, emb: int, hidden: int, dropout: float, dropout_emb: float):
        super().__init__()
        self.encoder = nn.Embedding(vocab, emb)
        self.cell = cell
        self.decoder = nn.Linear(hidden, vocab)
        if emb == hidden:
            self.decoder.weight = self.encoder.weight  # weight tying (Press & Wolf 2017), as DARTS and ENAS
        nn.init.uniform_(self.encoder.weight, -0.1, 0.1)
        nn.init.zeros_(self.decoder.bias)
        self.hidden, self.dropout, self.dropout_emb = hidden, dropout, dropout_emb

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4 and x.shape[1] == 1 and x.shape[2] == 1:
            # the hardware module probes models with tensors of the data's InputShape, (B, 1, 1, T) for text: read
            # them as token ids (the cost of a language model does not depend on which tokens it reads)
            x = x.flatten(1).abs().mul(1e3).long().remainder(self.encoder.num_embeddings)
        if x.dim() != 2 or x.is_floating_point():
            raise ValueError(f"{NOT_TEXT} (got input of shape {tuple(x.shape)})")
        if hasattr(self.cell, "begin"):
            self.cell.begin()  # a search cell prepares its per-window state (e.g. softmax(α))
        e = F.dropout(self.encoder(x), self.dropout_emb, self.training)
        h = e.new_zeros(x.shape[0], self.hidden)
        outs = []
        for t in range(x.shape[1]):
            h = self.cell(e[:, t], h)
            outs.append(h)
        out = F.dropout(torch.stack(outs, 1), self.dropout, self.training)
        return self.decoder(out).transpose(1, 2)


TEXT_SPACES = ("rnn", "enas-rnn")  # spaces whose models take token windows, not images
NOT_TEXT = ("the recurrent-cell spaces model text: give a text corpus (a folder with train.txt, valid.txt and "
            "test.txt), not image data")


def check_text_shape(shape: InputShape) -> None:
    """A clear error when a recurrent-cell space is asked to model images."""
    if shape.channels != 1 or shape.height != 1 or shape.num_classes < 2:
        raise ValueError(NOT_TEXT)


def _check(emb: int, hidden: int, nodes: int, dropout: float, dropout_emb: float) -> None:
    if nodes < 2 or emb < 1 or hidden < 1:
        raise ValueError(f"the recurrent-cell space needs nodes >= 2, emb >= 1 and hidden >= 1; got nodes={nodes}, "
                         f"emb={emb}, hidden={hidden}")
    if not (0 <= dropout < 1 and 0 <= dropout_emb < 1):
        raise ValueError(f"dropout rates must be in [0, 1), got dropout={dropout}, dropout_emb={dropout_emb}")


def build(c: Chooser, shape: InputShape, emb: int, hidden: int, nodes: int, dropout: float, dropout_emb: float,
          output: str) -> nn.Module:
    _check(emb, hidden, nodes, dropout, dropout_emb)
    cell = RecurrentCell(c, emb, hidden, nodes, output)
    return RNNLanguageModel(cell, shape.num_classes, emb, hidden, dropout, dropout_emb)


def _format(space: SearchSpace, arch: Architecture) -> str:
    """DARTS's genotype form: recurrent=[(act, input), ...]."""
    nodes = space.config.get("nodes", 8)
    return "recurrent=[" + ", ".join(f"('{arch[act_label(i)]}', {arch[in_label(i)][0]})"
                                     for i in range(1, nodes)) + "]"


@register_space("rnn", formatter=_format)
def rnn(c: Chooser, shape: InputShape, emb: int = 64, hidden: int = 64, nodes: int = 8, dropout: float = 0.25,
        dropout_emb: float = 0.1) -> nn.Module:
    """DARTS's recurrent-cell space: ``nodes`` nodes (node 0 fixed), output the mean of all intermediate nodes."""
    return build(c, shape, emb, hidden, nodes, dropout, dropout_emb, "mean")


@register_space("enas-rnn", formatter=_format)
def enas_rnn(c: Chooser, shape: InputShape, emb: int = 64, hidden: int = 64, nodes: int = 8, dropout: float = 0.25,
             dropout_emb: float = 0.1) -> nn.Module:
    """ENAS's recurrent cell: as ``rnn``, the output the mean of the loose ends."""
    return build(c, shape, emb, hidden, nodes, dropout, dropout_emb, "loose")


__all__: Sequence[str] = ("ACTIVATIONS", "RecurrentCell", "RNNLanguageModel", "rnn", "enas_rnn", "in_label",
                          "act_label", "init_state", "loose_ends")
