"""Neural Architecture Optimization (``nao``): Luo, Tian, Qin, Chen & Liu, "Neural Architecture Optimization",
NeurIPS 2018.

NAO maps architectures to a continuous space and optimises there:

* an **encoder** (an LSTM over the architecture as a token sequence, one token per decision) whose hidden states,
  mean-pooled, are the architecture's *embedding* e;
* a **performance predictor** f(e) (an MLP with a sigmoid, trained on the evaluated architectures);
* a **decoder** (an LSTM started from e) that reconstructs the token sequence;

trained jointly on ``lambda * MSE(f(e), y) + (1 - lambda) * reconstruction cross-entropy`` (NAO's trade-off,
lambda = 0.8). New architectures come from gradient ascent in the embedding space: starting from the embeddings of
the best architectures so far, ``e <- e + eta * grad f(e)`` is repeated until the decoder's reading of e is an
architecture not tried before; those found are evaluated, best predicted first, and the models are trained again
on the results (NAO's iterations).

Details here: the decoder reads each decision's token from that decision's choices only (masked softmax), so
every decoded sequence is a valid architecture of the space; targets are the values' rank quantiles in (0, 1) (NAO
scales accuracies to [0, 1]; ranks keep networks at chance level from flattening the rest); steps follow the
gradient's direction with a fixed length ``step`` (in units of the embedding's norm, which makes the step size
independent of how steep the predictor is: NAO instead grows a raw step size until the decoded architecture
changes). The models are trained from a seeded initialisation before the first round and further (warm) at
each round: ``first_steps`` full-batch Adam steps, then ``steps`` more per round (NAO keeps training one
controller across its iterations).

Schedule: ``n_init`` random architectures, then rounds of up to ``batch`` generated architectures from the
``batch`` best seeds. Several asks in flight: a new round starts from the results told so far once the previous
round's architectures have all been asked. When gradient ascent finds fewer than ``batch`` new architectures, the
round is filled up with one-decision mutations of its seeds (then random ones). Nothing is asked twice (unless the space seems exhausted).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..result import Observation
from ..space import Architecture, SearchSpace
from .base import Strategy, register_strategy

__all__ = ["NAO", "NAOModel"]


class NAOModel(nn.Module):
    """Encoder LSTM -> embedding (mean of the hidden states) -> predictor MLP and decoder LSTM."""

    def __init__(self, sizes: list[int], embed: int = 32, hidden: int = 64):
        super().__init__()
        self.sizes = list(sizes)
        self.offsets = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(int).tolist()
        vocab = int(sum(sizes))
        self.tokens = nn.Embedding(vocab + 1, embed)  # the last token starts the decoder
        self.encoder = nn.LSTM(embed, hidden, batch_first=True)
        self.predictor = nn.Sequential(nn.Linear(hidden, hidden), nn.ReLU(), nn.Linear(hidden, 1))
        self.decoder = nn.LSTM(embed + hidden, hidden, batch_first=True)
        self.out = nn.Linear(hidden, vocab)
        mask = torch.full((len(sizes), vocab), float("-inf"))
        for t, (o, n) in enumerate(zip(self.offsets, sizes)):
            mask[t, o:o + n] = 0.0
        self.register_buffer("mask", mask)
        self.start = vocab

    def encode(self, seq: torch.Tensor) -> torch.Tensor:
        """(N, L) global token ids -> (N, hidden) embeddings."""
        out, _ = self.encoder(self.tokens(seq))
        return F.normalize(out, dim=-1).mean(1)

    def predict(self, e: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.predictor(e)).squeeze(-1)

    def decode_logits(self, e: torch.Tensor, seq: torch.Tensor) -> torch.Tensor:
        """Teacher-forced logits (N, L, vocab), each step masked to its decision's choices."""
        prev = torch.cat([torch.full_like(seq[:, :1], self.start), seq[:, :-1]], dim=1)
        x = torch.cat([self.tokens(prev), e.unsqueeze(1).expand(-1, seq.shape[1], -1)], dim=-1)
        h0 = e.unsqueeze(0).contiguous()
        out, _ = self.decoder(x, (h0, torch.zeros_like(h0)))
        return self.out(out) + self.mask

    @torch.no_grad()
    def decode(self, e: torch.Tensor) -> torch.Tensor:
        """Greedy decoding: (N, hidden) -> (N, L) global token ids, each within its decision's choices."""
        n = e.shape[0]
        tok = torch.full((n, 1), self.start, dtype=torch.long)
        h = (e.unsqueeze(0).contiguous(), torch.zeros(1, n, e.shape[1]))
        seq = []
        for t in range(len(self.sizes)):
            x = torch.cat([self.tokens(tok), e.unsqueeze(1)], dim=-1)
            out, h = self.decoder(x, h)
            tok = (self.out(out[:, -1]) + self.mask[t]).argmax(-1, keepdim=True)
            seq.append(tok)
        return torch.cat(seq, dim=1)


@register_strategy("nao")
class NAO(Strategy):
    """Neural Architecture Optimization (see the module docstring). Options: ``n_init``, ``batch`` (seeds and
    architectures per round), ``trade_off`` (lambda), ``step`` and ``max_steps`` (gradient ascent),
    ``first_steps``, ``steps`` and ``lr`` (training), ``embed`` / ``hidden`` (model sizes)."""

    def __init__(self, space: SearchSpace, seed: int = 0, n_init: int = 16, batch: int = 8, trade_off: float = 0.8,
                 step: float = 0.1, max_steps: int = 30, steps: int = 30, first_steps: int = 150, lr: float = 0.005,
                 embed: int = 32, hidden: int = 64):
        super().__init__(space, seed)
        if n_init < 1 or batch < 1 or not 0 <= trade_off <= 1 or step <= 0 or min(max_steps, steps, first_steps) < 1:
            raise ValueError("nao needs n_init, batch, max_steps, steps, first_steps >= 1, 0 <= trade_off <= 1 "
                             "and step > 0")
        self.n_init, self.batch, self.trade_off = n_init, batch, trade_off
        self.step, self.max_steps, self.steps, self.first_steps = step, max_steps, steps, first_steps
        self.decisions = list(space.decisions)
        self._choices = [d.choices for d in self.decisions]
        self._index = [{c: i for i, c in enumerate(ch)} for ch in self._choices]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(self.rng.integers(2**31)))
            self.model = NAOModel([len(c) for c in self._choices], embed, hidden)
        self.opt = torch.optim.Adam(self.model.parameters(), lr=lr)
        self.values: dict[Architecture, float] = {}
        self.asked: set[Architecture] = set()
        self.queue: list[Architecture] = []
        self.n_asked = 0
        self.trained_steps = 0
        self.fallbacks = 0  # architectures asked by mutation because gradient ascent found too few
        self._decoded: dict[tuple[int, ...], Architecture] = {}

    # ---- encoding -------------------------------------------------------------------------------------------
    def tokens(self, archs: list[Architecture]) -> torch.Tensor:
        rows = [[o + idx[a[d.label]] for d, idx, o in zip(self.decisions, self._index, self.model.offsets)]
                for a in archs]
        return torch.as_tensor(rows, dtype=torch.long)

    def arch_of(self, row: list[int]) -> Architecture:
        key = tuple(row)
        got = self._decoded.get(key)
        if got is None:
            choice = {d.label: ch[t - o] for d, ch, o, t in zip(self.decisions, self._choices, self.model.offsets, row)}
            got = self._decoded[key] = self.space.canonical(Architecture(choice))
        return got

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        self.n_asked += 1
        if self.n_asked > self.n_init and len(self.values) >= 2 and not self.queue:
            self.queue = self._generate()
        while self.queue:
            arch = self.queue.pop(0)
            if arch not in self.asked:
                return self._remember(arch)
        if self.n_asked > self.n_init and self.values:  # nothing new found: mutate the best
            self.fallbacks += 1
            best = max(self.values, key=self.values.__getitem__)
            for _ in range(20):
                arch = self.space.mutate(best, self.rng)
                if arch not in self.asked:
                    return self._remember(arch)
        return self._remember(self.sample_unasked(self.asked))

    def _tell(self, obs: Observation) -> None:
        self.asked.add(obs.arch)
        if not obs.failed and obs.feasible:
            self.values[obs.arch] = float(obs.value)

    # ---- one NAO round --------------------------------------------------------------------------------------
    def train(self) -> float:
        """Fit encoder, predictor and decoder on the results so far; returns the last loss."""
        from scipy.stats import rankdata  # imported at first use (start-up: see bayesopt)

        archs = list(self.values)
        seq = self.tokens(archs)
        y = torch.as_tensor((rankdata(list(self.values.values())) - 0.5) / len(archs), dtype=torch.float32)
        self.model.train()
        steps = self.first_steps if self.trained_steps == 0 else self.steps
        loss = torch.zeros(())
        for _ in range(steps):
            self.opt.zero_grad()
            e = self.model.encode(seq)
            mse = F.mse_loss(self.model.predict(e), y)
            logits = self.model.decode_logits(e, seq)
            ce = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), seq.reshape(-1))
            loss = self.trade_off * mse + (1 - self.trade_off) * ce
            loss.backward()
            self.opt.step()
        self.trained_steps += steps
        self.model.eval()
        return float(loss.detach())

    def _generate(self) -> list[Architecture]:
        """Gradient ascent on the predictor from the embeddings of the best architectures; new decoded
        architectures, best predicted first."""
        self.train()
        seeds = sorted(self.values, key=lambda a: -self.values[a])[:self.batch]
        e = self.model.encode(self.tokens(seeds)).detach()
        found: dict[Architecture, None] = {}
        done = torch.zeros(len(seeds), dtype=torch.bool)
        for _ in range(self.max_steps):
            e = e.clone().requires_grad_(True)
            (grad,) = torch.autograd.grad(self.model.predict(e).sum(), e)
            with torch.no_grad():
                size = e.norm(dim=-1, keepdim=True).clamp_min(1e-6)
                e = e + self.step * size * F.normalize(grad, dim=-1) * (~done).unsqueeze(-1)
            for k, row in enumerate(self.model.decode(e).tolist()):
                if done[k]:
                    continue
                arch = self.arch_of(row)
                if arch not in self.asked and arch not in found:
                    found[arch] = None
                    done[k] = True
            if bool(done.all()):
                break
        new = list(found)
        if len(new) > 1:
            with torch.no_grad():
                pred = self.model.predict(self.model.encode(self.tokens(new))).numpy()
            new = [new[int(i)] for i in np.argsort(-pred, kind="stable")]
        for parent in seeds:  # a round is ``batch`` architectures: fill up with mutations of the seeds
            if len(new) >= self.batch:
                break
            child = self.space.mutate(parent, self.rng)
            if child not in self.asked and child not in new:
                self.fallbacks += 1
                new.append(child)
        return new

    def _remember(self, arch: Architecture) -> Architecture:
        self.asked.add(arch)
        return arch
