"""REINFORCE with an LSTM controller (``rl``): Zoph & Le, "Neural Architecture Search with Reinforcement
Learning", ICLR 2017; Zoph, Vasudevan, Shlens & Le, "Learning Transferable Architectures for Scalable Image
Recognition" (NASNet), CVPR 2018; Williams, "Simple statistical gradient-following algorithms", 1992.

Controller API (reused by the ENAS one-shot strategy to sample children)::

    ctrl = Controller(space, hidden=64, generator=torch.Generator().manual_seed(0))
    arch, log_prob, entropy = ctrl.sample()     # one architecture; scalar tensors with gradients
    log_prob, entropy = ctrl.score(arch)        # the same for a given architecture (teacher forcing)
    ctrl.log_prob(arch)                         # just the log-probability
    archs, log_probs, entropies = ctrl.sample_many(n)   # n at once, one batched pass; tensors of shape (n,)
    log_probs, entropies = ctrl.score_many(archs)       # batched teacher forcing

* One LSTM step per decision of the space, in the space's order; the input of a step is the embedding of the
  previous decision (a learned start vector for the first), as in Zoph & Le.
* 'layer' and 'value' decisions: a softmax classifier per decision on the LSTM output.
* 'inputs' decisions ("which earlier nodes feed this one"): additive attention as in Zoph & Le's anchor points,
  ``score_j = v . tanh(W h + k_j)``, with one learned key ``k_j`` per candidate input (the space does not say which
  earlier decision produced a candidate, so the keys are learned rather than taken from earlier LSTM states).
  ``n_chosen=None`` (any subset): an independent sigmoid per candidate, exactly Zoph & Le's skip connections;
  ``n_chosen=k``: k candidates without replacement from ``softmax(score)`` (Plackett-Luce; ENAS samples each
  input this way). The log-probability is that of the *set* (a sum over the k! orders, by dynamic programming
  over subsets; k <= 10), so sample and score agree. The next step's input is the sum of the chosen candidates'
  embeddings. Entropy of a Plackett-Luce decision is that of its first draw.
* ``sample`` returns the architecture exactly as drawn (not canonicalised), so ``log_prob`` of it is exact;
  call ``space.canonical`` for the model it builds. All randomness comes from the torch.Generator (parameters
  are initialised uniformly in [-0.1, 0.1] as in ENAS; the global torch RNG is not touched).

The strategy (``Reinforce``): REINFORCE with an exponential-moving-average baseline and an entropy bonus; reward =
the objective. The advantage ``(R - baseline)`` is divided by the standard deviation of the rewards seen so far,
which makes the learning rate and entropy weight independent of the objective's units (percent, fraction, a
MnasNet reward). The policy is updated once a batch of ``batch_size`` results is in, in whatever order they
arrive (several asks may be in flight; the log-probabilities are recomputed under the current policy at update
time, so results that arrive late still count). A failed or infeasible result gets the lowest reward seen so far
(skipped while there is none). With ``reuse_known=True`` (default) an architecture whose result is already known
is not asked again: the controller draws ``redraws`` architectures at once, known ones join the next update with
their known reward, and the first new one is asked (right for deterministic evaluators: the tabular benchmark,
or any study that does not re-measure an architecture).

Defaults, and where they come from: Adam with learning rate 0.01 and baseline decay 0.9 as NATS-Bench's REINFORCE
(Dong et al., TPAMI 2021) for budgets of hundreds of architectures (Zoph & Le's 6e-4 and ENAS's 3.5e-4 are for
tens of thousands of samples and barely move the policy in 150); ``batch_size=8`` architectures per update (Zoph
& Le average the gradient over m architectures per update; one per update collapses the policy early on
NAS-Bench-201, see docs/benchmarks.md); ``hidden=64`` LSTM units (Zoph & Le use 35, ENAS 100);
``entropy_weight=0.01`` per unit of reward standard deviation.
"""
from __future__ import annotations

import itertools
from collections import deque

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..result import Observation
from ..space import Architecture, Decision, SearchSpace
from .base import Strategy, register_strategy

__all__ = ["Adam", "Controller", "Reinforce"]

MAX_SET_SIZE = 10  # exact Plackett-Luce set probabilities up to this many chosen inputs


class Controller(nn.Module):
    """An autoregressive LSTM policy over the decisions of a space (see the module docstring)."""

    def __init__(self, space: SearchSpace, hidden: int = 64, generator: torch.Generator | None = None,
                 init_range: float = 0.1):
        super().__init__()
        self.space = space
        self.decisions: list[Decision] = list(space.decisions)
        self.hidden = hidden
        self.generator = generator if generator is not None else torch.Generator().manual_seed(0)
        for d in self.decisions:
            if d.kind == "inputs" and d.n_chosen is not None and d.n_chosen > MAX_SET_SIZE:
                raise ValueError(f"controller: decision {d.label!r} chooses {d.n_chosen} inputs, more than "
                                 f"{MAX_SET_SIZE}")
        with torch.random.fork_rng(devices=[]):  # module constructors draw from the global RNG: keep it intact
            self.start = nn.Parameter(torch.empty(1, hidden))
            self.lstm = nn.LSTMCell(hidden, hidden)
            self.embed = nn.ParameterList(
                [nn.Parameter(torch.empty(len(d.options) + (d.kind == "inputs"), hidden)) for d in self.decisions])
            self.heads = nn.ModuleList(
                [nn.Linear(hidden, len(d.options)) if d.kind != "inputs" else nn.Identity() for d in self.decisions])
            self.keys = nn.ParameterList(
                [nn.Parameter(torch.empty(len(d.options) if d.kind == "inputs" else 0, hidden))
                 for d in self.decisions])
            self.attn_query = nn.Linear(hidden, hidden, bias=False)
            self.attn_v = nn.Linear(hidden, 1, bias=False)
        with torch.no_grad():
            for p in self.parameters():
                p.uniform_(-init_range, init_range, generator=self.generator)

    # ---- public API -----------------------------------------------------------------------------------------
    def sample(self, generator: torch.Generator | None = None) -> tuple[Architecture, torch.Tensor, torch.Tensor]:
        """Draw an architecture: (arch as drawn, log-probability, entropy), scalar tensors with gradients."""
        archs, logp, ent = self.sample_many(1, generator)
        return archs[0], logp[0], ent[0]

    def sample_many(self, n: int, generator: torch.Generator | None = None
                    ) -> tuple[list[Architecture], torch.Tensor, torch.Tensor]:
        """Draw ``n`` architectures at once: (archs, log-probabilities (n,), entropies (n,))."""
        return self._run(None, n, generator or self.generator)

    def score(self, arch: Architecture) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probability and entropy of the policy along ``arch`` (teacher forcing)."""
        logp, ent = self.score_many([arch])
        return logp[0], ent[0]

    def score_many(self, archs: list[Architecture]) -> tuple[torch.Tensor, torch.Tensor]:
        """Log-probabilities and entropies (each of shape (len(archs),)) in one batched pass."""
        _, logp, ent = self._run(archs, len(archs), None)
        return logp, ent

    def log_prob(self, arch: Architecture) -> torch.Tensor:
        return self.score(arch)[0]

    # ---- the autoregressive pass (batched: B architectures at once) -----------------------------------------
    def _run(self, archs: list[Architecture] | None, batch: int, gen: torch.Generator | None):
        B = batch
        x = self.start.expand(B, -1)
        h = c = torch.zeros(B, self.hidden)
        logp = torch.zeros(B)
        ent = torch.zeros(B)
        columns: list[list] = []
        for i, d in enumerate(self.decisions):
            h, c = self.lstm(x, (h, c))
            if d.kind != "inputs":
                logits = F.log_softmax(self.heads[i](h), dim=-1)  # (B, options)
                if archs is None:
                    idx = torch.multinomial(logits.detach().exp(), 1, generator=gen)[:, 0]
                else:
                    idx = torch.tensor([d.options.index(a[d.label]) for a in archs])
                logp = logp + logits.gather(1, idx[:, None])[:, 0]
                ent = ent - (logits.exp() * logits).sum(1)
                columns.append([d.options[j] for j in idx.tolist()])
                x = self.embed[i][idx]
                continue
            scores = self.attn_v(torch.tanh(self.attn_query(h)[:, None, :] + self.keys[i][None]))[..., 0]  # (B, n)
            if d.n_chosen is None:  # any subset: one sigmoid per candidate (Zoph & Le's skip connections)
                if archs is None:
                    on = torch.rand(scores.shape, generator=gen) < torch.sigmoid(scores.detach())
                else:
                    on = torch.tensor([[j in a[d.label] for j in d.options] for a in archs], dtype=torch.bool)
                logp = logp + torch.where(on, F.logsigmoid(scores), F.logsigmoid(-scores)).sum(1)
                p = torch.sigmoid(scores)
                ent = ent - (p * F.logsigmoid(scores) + (1 - p) * F.logsigmoid(-scores)).sum(1)
                chosen = [tuple(j for j in range(len(d.options)) if row[j]) for row in on.tolist()]
            else:  # k inputs without replacement (Plackett-Luce over the attention scores)
                if archs is None:
                    drawn = torch.multinomial(F.softmax(scores.detach(), -1), d.n_chosen, replacement=False,
                                              generator=gen)
                    chosen = [tuple(sorted(row)) for row in drawn.tolist()]
                else:
                    chosen = [tuple(a[d.label]) for a in archs]
                logp = logp + torch.stack([_set_log_prob(scores[b], chosen[b]) for b in range(B)])
                lp = F.log_softmax(scores, -1)
                ent = ent - (lp.exp() * lp).sum(1)
                on = torch.zeros(scores.shape, dtype=torch.bool)
                for b, ch in enumerate(chosen):
                    on[b, list(ch)] = True
            columns.append(chosen)
            x = self.embed[i][-1] + on.to(self.embed[i].dtype) @ self.embed[i][:-1]
        out = [Architecture(zip((d.label for d in self.decisions), row)) for row in zip(*columns)]
        return out, logp, ent


def _set_log_prob(scores: torch.Tensor, chosen: tuple[int, ...]) -> torch.Tensor:
    """log P(the set ``chosen``) when drawing ``len(chosen)`` items without replacement with probabilities
    proportional to ``exp(scores)`` (Plackett-Luce), summed over draw orders by DP over subsets."""
    k = len(chosen)
    if k == 1:
        return F.log_softmax(scores, -1)[chosen[0]]
    n = len(scores)
    f = {0: torch.zeros(())}
    for size in range(1, k + 1):
        for subset in itertools.combinations(range(k), size):
            mask = sum(1 << b for b in subset)
            terms = []
            for b in subset:
                prev = mask & ~(1 << b)
                taken = [chosen[t] for t in range(k) if prev >> t & 1]
                rest = scores if not taken else scores[[j for j in range(n) if j not in taken]]
                terms.append(f[prev] + scores[chosen[b]] - torch.logsumexp(rest, 0))
            f[mask] = torch.logsumexp(torch.stack(terms), 0)
    return f[(1 << k) - 1]


class Adam:
    """Adam (Kingma & Ba, ICLR 2015) written out: constructing any ``torch.optim`` optimizer imports TorchDynamo,
    seconds per process, more than a whole search on a tabular benchmark."""

    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, (self.b1, self.b2), self.eps = lr, betas, eps
        self.m = [torch.zeros_like(p) for p in self.params]
        self.v = [torch.zeros_like(p) for p in self.params]
        self.t = 0

    def zero_grad(self) -> None:
        for p in self.params:
            p.grad = None

    @torch.no_grad()
    def step(self) -> None:
        self.t += 1
        c1, c2 = 1 - self.b1 ** self.t, 1 - self.b2 ** self.t
        for p, m, v in zip(self.params, self.m, self.v):
            if p.grad is None:
                continue
            m.mul_(self.b1).add_(p.grad, alpha=1 - self.b1)
            v.mul_(self.b2).addcmul_(p.grad, p.grad, value=1 - self.b2)
            p.addcdiv_(m / c1, (v / c2).sqrt_().add_(self.eps), value=-self.lr)


@register_strategy("rl")
class Reinforce(Strategy):
    """REINFORCE on an LSTM controller (see the module docstring for the method and the options)."""

    def __init__(self, space: SearchSpace, seed: int = 0, hidden: int = 64, lr: float = 0.01,
                 batch_size: int = 8, baseline_decay: float = 0.9, entropy_weight: float = 0.01,
                 reuse_known: bool = True, redraws: int = 32):
        super().__init__(space, seed)
        if batch_size < 1 or not 0 <= baseline_decay < 1 or lr <= 0:
            raise ValueError("rl needs batch_size >= 1, 0 <= baseline_decay < 1 and lr > 0")
        gen = torch.Generator().manual_seed(int(self.rng.integers(2 ** 62)))
        self.controller = Controller(space, hidden=hidden, generator=gen)
        self.optimizer = Adam(self.controller.parameters(), lr=lr)
        self.batch_size, self.baseline_decay, self.entropy_weight = batch_size, baseline_decay, entropy_weight
        self.reuse_known, self.redraws = reuse_known, max(1, redraws)
        self.baseline: float | None = None
        self.known: dict[Architecture, float | None] = {}  # told: reward, or None when failed / infeasible
        self._drawn: dict[Architecture, deque[Architecture]] = {}  # asked arch -> the arch as drawn
        self._batch: list[tuple[Architecture, float | None]] = []  # (arch as drawn, reward) since the last update
        self._told_in_batch = 0
        self._rewards: list[float] = []  # every successful reward, for the scale and the failure reward
        self.updates = 0
        self.reused = 0  # draws answered from known results

    # ---- ask / tell -----------------------------------------------------------------------------------------
    def _ask(self) -> Architecture:
        with torch.no_grad():
            draws = self.controller.sample_many(self.redraws if self.reuse_known else 1)[0]
        pick = draws[0]
        for drawn in draws:
            arch = self.space.canonical(drawn)
            if not self.reuse_known or (arch not in self.known and arch not in self.pending):
                pick = drawn
                break
            if arch in self.known:  # a known result: it joins the batch without being asked again
                self._batch.append((drawn, self.known[arch]))
                self.reused += 1
        arch = self.space.canonical(pick)
        self._drawn.setdefault(arch, deque()).append(pick)
        return arch

    def _tell(self, obs: Observation) -> None:
        queue = self._drawn.get(obs.arch)
        drawn = queue.popleft() if queue else obs.arch
        if queue is not None and not queue:
            del self._drawn[obs.arch]
        reward = None if obs.failed or not obs.feasible else float(obs.value)
        self.known[obs.arch] = reward
        if reward is not None:
            self._rewards.append(reward)
        self._batch.append((drawn, reward))
        self._told_in_batch += 1
        if self._told_in_batch >= self.batch_size:
            self._update()

    # ---- learning -------------------------------------------------------------------------------------------
    def _update(self) -> None:
        batch, self._batch, self._told_in_batch = self._batch, [], 0
        if not self._rewards:
            return  # only failures so far: nothing to compare them with
        low = min(self._rewards)
        rewards = [low if r is None else r for _, r in batch]
        if self.baseline is None:
            self.baseline = float(np.mean(rewards))
        scale = float(np.std(self._rewards)) if len(self._rewards) > 1 else 0.0
        scale = scale if scale > 1e-12 else 1.0
        advantages = [(r - self.baseline) / scale for r in rewards]
        logp, ent = self.controller.score_many([drawn for drawn, _ in batch])
        loss = -(torch.tensor(advantages) * logp).mean() - self.entropy_weight * ent.mean()
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        self.updates += 1
        for r in rewards:
            self.baseline = self.baseline_decay * self.baseline + (1 - self.baseline_decay) * r
