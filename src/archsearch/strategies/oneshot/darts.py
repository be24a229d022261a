"""DARTS: Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019.

Every mixed op outputs the softmax(α)-weighted sum of its candidates. The bilevel problem
min_α L_val(w*(α), α) s.t. w*(α) = argmin_w L_train(w, α) is approximated by alternating steps (Alg. 1): α on a
validation batch, then w on a training batch. First order (``darts``, ξ = 0) uses ∇_α L_val(w, α). Second order
(``darts2``) differentiates through one unrolled SGD step w' = w − ξ∇_w L_train(w, α) (eq. 7):

    ∇_α L_val(w', α) − ξ ∇²_{α,w} L_train(w, α) · ∇_{w'} L_val(w', α),

with the Hessian-vector product by finite differences (eq. 8): (∇_α L_train(w⁺, α) − ∇_α L_train(w⁻, α)) / 2ε,
w± = w ± ε∇_{w'} L_val(w', α), ε = 0.01 / ‖∇_{w'} L_val(w', α)‖. The unrolled weights are written into the model
in place and restored afterwards (no second copy of the network). The derived architecture keeps the argmax op of
each decision (for cells: the top-2 incoming edges per node, without 'none').
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

from ...errors import UserError
from .base import OneShotOptions, OneShotStrategy, register_oneshot


@dataclass
class DARTSOptions(OneShotOptions):
    order: int = 1  # 1: first order (ξ = 0); 2: the unrolled second-order gradient
    xi: float | None = None  # ξ of the unrolled step; None: the weights' current learning rate, as in DARTS

    def __post_init__(self):
        if self.order not in (1, 2):
            raise UserError(f"DARTS option order must be 1 or 2, got {self.order}")


@register_oneshot("darts")
class DARTS(OneShotStrategy):
    """Differentiable search by the softmax-weighted sum of all candidates (first order by default)."""

    Options = DARTSOptions

    def step(self, xt, yt, xv, yv) -> float:
        self.state.set("softmax")
        if self.opts.order == 2:
            self.unrolled_alpha_step(xt, yt, xv, yv)
        else:
            self.alpha_step(xv, yv)
        return self.w_step(xt, yt)

    def supernet_accuracy(self) -> float:
        """Validation accuracy of the relaxed (mixed) supernet, as DARTS reports during its search."""
        self.state.set("softmax")
        return self.accuracy(self.x_val, self.y_val)

    def unrolled_alpha_step(self, xt, yt, xv, yv) -> None:
        """One α step with the second-order gradient of eq. 7-8 (DARTS's ``Architect._backward_step_unrolled``)."""
        w, alphas = self.supernet.weights(), self.supernet.alphas.parameters()
        xi = self.opts.xi if self.opts.xi is not None else self.w_opt.param_groups[0]["lr"]
        saved = [p.detach().clone() for p in w]
        buffers = {k: b.detach().clone() for k, b in self.model.named_buffers()}
        # w' = w − ξ(momentum·v + ∇_w L_train + weight_decay·w), the step the weight optimiser would take
        grads = self._averaged(_grads(self.loss(xt, yt), w))
        with torch.no_grad():
            for p, g in zip(w, grads):
                d = g + self.opts.w_weight_decay * p
                buf = self.w_opt.state.get(p, {}).get("momentum_buffer")
                if buf is not None:
                    d = d + self.opts.w_momentum * buf
                p.sub_(xi * d)
        g_val = self._averaged(_grads(self.alpha_loss(xv, yv), alphas + w))
        d_alpha, d_w = g_val[:len(alphas)], g_val[len(alphas):]
        eps = 0.01 / torch.cat([g.flatten() for g in d_w]).norm().clamp_min(1e-12)
        hvp = []
        for sign in (1.0, -1.0):
            with torch.no_grad():
                for p, s, g in zip(w, saved, d_w):
                    p.copy_(s + sign * eps * g)
            hvp.append(self._averaged(_grads(self.loss(xt, yt), alphas)))
        with torch.no_grad():
            for p, s in zip(w, saved):
                p.copy_(s)
            for k, b in self.model.named_buffers():
                b.copy_(buffers[k])
        self.a_opt.zero_grad(set_to_none=True)
        for a, da, gp, gn in zip(alphas, d_alpha, *hvp):
            a.grad = da - xi * (gp - gn) / (2 * eps)
        self.a_opt.step()

    def _averaged(self, grads: list[torch.Tensor]) -> list[torch.Tensor]:
        """Gradients averaged over the ranks of a data-parallel run (as they are)."""
        if self.dp is not None:
            self.dp.average(grads)
        return grads


def _grads(loss: torch.Tensor, params: list[torch.Tensor]) -> list[torch.Tensor]:
    gs = torch.autograd.grad(loss, params, allow_unused=True)
    return [torch.zeros_like(p) if g is None else g for g, p in zip(gs, params)]


@register_oneshot("darts2")
class DARTS2(DARTS):
    """Second-order DARTS (``darts`` with ``order=2``)."""

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("order", 2)
        super().__init__(*args, **kwargs)
