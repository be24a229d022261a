"""Progressive Neural Architecture Search (``pnas``): Liu, Zoph, Neumann, Shlens, Hua, Li, Fei-Fei, Yuille, Huang &
Murphy, "Progressive Neural Architecture Search", ECCV 2018.

PNAS searches cells from simple to complex. With S_b the K cells of b blocks kept so far:

1. S_1: every cell of one block is evaluated (here: up to 4K of them);
2. a surrogate (an ensemble of 5 predictors, each trained on 4/5 of the evaluated cells) is trained on all the
   cells evaluated so far;
3. every expansion of a cell of S_b by one more block is scored by the surrogate; the K best form S_{b+1} and are
   evaluated; back to 2, up to B blocks.

Here a *block* is one decision of the space, in the space's order (NAS-Bench-201 has six edges, the macro space
per-layer op/kernel/filters/skips, any user space its own decisions): the cells of size d have their first d
decisions chosen and the others at a *default*. The default is one architecture drawn at random from the seed
(``default="random"``) or every decision's first option (``default="first"``; on NAS-Bench-201 that is 'none',
so the cell computes nothing until node 3 is reached: a poor default there, and the first option of a user's
space means nothing in general). Since the default value of decision d is among the expansions, a cell of size
d-1 is also one of size d: S_d keeps the K best evaluated cells of S_{d-1} and of the level-d candidates.

After the last decision the search goes on (PNAS stops at B): each further round scores every untried
one-decision change of the K best cells so far and evaluates the K the surrogate ranks first.

The surrogate is PNAS's MLP ensemble (5 members, each fitted on the data less one fold of five; its mean ranks
the candidates) on the architecture encoding of :mod:`.encodings` (one-hot, plus the space's registered
encoding: BANANAS path bits on NAS-Bench-201). Targets are normal scores of the values' ranks (as in ``bo``:
networks at chance level would dominate a fit on raw accuracies); the loss is PNAS's L1. The members are one
batched PyTorch module, refitted from a seeded initialisation once per round.

Several asks in flight: a round's K candidates are handed out in rank order; once they are all asked the next
round starts from the results told so far (an untold candidate neither becomes a parent nor trains the
surrogate until its result arrives). Nothing is asked twice (unless the space seems exhausted).
"""
from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy
from .encodings import Encoder

__all__ = ["MLPEnsemble", "ProgressiveSearch", "normal_scores"]


def normal_scores(y: np.ndarray) -> np.ndarray:
    """Normal scores of the ranks (ties share their mean rank)."""
    from scipy.stats import norm, rankdata  # imported at first use (start-up: see bayesopt)

    return norm.ppf((rankdata(y) - 0.5) / len(y))


class MLPEnsemble(nn.Module):
    """``members`` independent two-hidden-layer MLPs evaluated as one batched module (einsum over members)."""

    def __init__(self, width: int, members: int = 5, hidden: int = 64, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        shapes = [(width, hidden), (hidden, hidden), (hidden, 1)]
        self.weights = nn.ParameterList(
            nn.Parameter(torch.randn(members, a, b, generator=g) * math.sqrt(2.0 / a)) for a, b in shapes)
        self.biases = nn.ParameterList(nn.Parameter(torch.zeros(members, 1, b)) for _, b in shapes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(N, width) -> (members, N) predictions."""
        h = x.unsqueeze(0).expand(len(self.weights[0]), -1, -1)
        for k, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = torch.baddbmm(b, h, w)
            if k < len(self.weights) - 1:
                h = torch.relu(h)
        return h.squeeze(-1)

    @classmethod
    def fitted(cls, X: np.ndarray, y: np.ndarray, seed: int, members: int = 5, hidden: int = 64,
               steps: int = 100, lr: float = 0.01, weight_decay: float = 1e-4) -> "MLPEnsemble":
        """Fit on (X, y): member m leaves out fold m of ``members`` (all data while there are fewer points)."""
        model = cls(X.shape[1], members, hidden, seed)
        n = len(y)
        folds = np.random.default_rng(seed).permutation(n) % members
        mask = np.ones((members, n), dtype=np.float32)
        if n >= 2 * members:
            mask[folds[None, :] == np.arange(members)[:, None]] = 0.0
        xt, yt, mt = (torch.as_tensor(a, dtype=torch.float32) for a in (X, y, mask))
        opt = torch.optim.Adam(model.parameters(), lr=lr, weight_decay=weight_decay)
        for _ in range(steps):
            opt.zero_grad()
            loss = ((model(xt) - yt).abs() * mt).sum() / mt.sum()
            loss.backward()
            opt.step()
        return model.eval()

    def predict(self, X: np.ndarray) -> np.ndarray:
        """The ensemble's mean prediction."""
        with torch.no_grad():
            return self(torch.as_tensor(X, dtype=torch.float32)).mean(0).numpy()


@register_strategy("pnas")
class ProgressiveSearch(Strategy):
    """PNAS with one decision per block (see the module docstring). Options: ``beam`` (K, cells kept and
    evaluated per level), ``default`` ("random" or "first"), ``members``, ``hidden``, ``steps`` (surrogate),
    ``max_candidates`` (expansions scored per round, a random subset beyond), ``encoding`` (see ``bo``)."""

    def __init__(self, space: SearchSpace, seed: int = 0, beam: int = 4, default: str = "random",
                 members: int = 5, hidden: int = 64, steps: int = 100, max_candidates: int = 5000,
                 encoding: str = "both"):
        super().__init__(space, seed)
        if beam < 1 or members < 1 or hidden < 1 or steps < 1 or max_candidates < 1:
            raise ValueError("pnas needs beam, members, hidden, steps and max_candidates >= 1")
        if default not in ("random", "first"):
            raise ValueError(f"pnas: default must be 'random' or 'first', not {default!r}")
        self.beam, self.members, self.hidden, self.steps = beam, members, hidden, steps
        self.max_candidates = max_candidates
        self.encoder = Encoder(space, mode=encoding)
        first = {d.label: d.choices[0] for d in space.decisions}
        self.default = space.sample(self.rng) if default == "random" else space.canonical(Architecture(first))
        self.values: dict[Architecture, float] = {}  # told and ok
        self.asked: set[Architecture] = set()
        self.level = 0  # decisions fixed so far (len(space.decisions) and beyond: refinement rounds)
        self.kept: list[Architecture] = [self.default]  # S_level
        self.queue: list[Architecture] = []  # this round's candidates, best first
        self.round: list[Architecture] = []  # this round's asked candidates
        self.rounds = 0

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        for _ in range(len(self.space.decisions) + 2):
            if self.queue and len(self.round) < (4 * self.beam if self.rounds == 1 else self.beam):
                arch = self.queue.pop(0)
                self.round.append(arch)
                self.asked.add(arch)
                return arch
            self._next_round()
        arch = self.sample_unasked(self.asked)  # nothing left to expand: a random architecture
        self.asked.add(arch)
        return arch

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if not obs.failed and obs.feasible:
            self.values[obs.arch] = float(obs.value)

    # ---- the progressive rounds -----------------------------------------------------------------------------
    def _next_round(self) -> None:
        """Keep the K best of the last level, expand them by the next decision (or by any one decision after
        the last), rank the expansions with the surrogate."""
        if self.rounds > 0:
            pool = [a for a in dict.fromkeys(self.kept + self.round) if a in self.values]
            if self.level >= len(self.space.decisions):
                pool = list(self.values)
            if pool:
                self.kept = sorted(pool, key=lambda a: -self.values[a])[:self.beam]
            self.level += 1
        self.rounds += 1
        self.round = []
        cands = self._expansions()
        if len(cands) > self.max_candidates:
            cands = [cands[int(i)] for i in self.rng.choice(len(cands), self.max_candidates, replace=False)]
        self.queue = self._rank(cands)

    def _expansions(self) -> list[Architecture]:
        out: dict[Architecture, None] = {}
        if self.level < len(self.space.decisions):
            d = self.space.decisions[self.level]
            for parent in self.kept:
                for v in d.choices:
                    out[self.space.canonical(parent.with_choice(d.label, v))] = None
        else:
            for parent in self.kept:
                out.update(dict.fromkeys(self.space.neighbours(parent)))
        return [a for a in out if a not in self.asked]

    def _rank(self, cands: list[Architecture]) -> list[Architecture]:
        """Candidates by the surrogate's mean prediction, best first (in random order while fewer than two
        results are in)."""
        order = self.rng.permutation(len(cands))
        cands = [cands[int(i)] for i in order]
        if len(self.values) < 2 or len(cands) <= 1:
            return cands
        archs = list(self.values)
        y = normal_scores(np.fromiter(self.values.values(), float, len(archs)))
        with torch.random.fork_rng(devices=[]):
            model = MLPEnsemble.fitted(self.encoder.many(archs), y, seed=int(self.rng.integers(2**31)),
                                       members=self.members, hidden=self.hidden, steps=self.steps)
        pred = model.predict(self.encoder.many(cands))
        return [cands[int(i)] for i in np.argsort(-pred, kind="stable")]
