"""The report's figures (matplotlib, Agg backend): search progress, the distribution of results, the architecture
weights of a one-shot search over its epochs, and the curves of a final training."""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    fig.savefig(path)
    _plt().close(fig)
    return path


def plot_progress(trials: Sequence[Any], value_name: str, path: Path) -> Path:
    """Every finished trial's objective value and the best so far, against trial number and against time since
    the run started; failed trials as red crosses on the lower edge."""
    plt = _plt()
    done = [t for t in trials if t.finished is not None]
    t0 = min((t.started for t in trials), default=0.0)
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=110, sharey=True)
    ok = [t for t in done if t.value is not None and math.isfinite(t.value)]
    bad = [t for t in done if t.value is None or not math.isfinite(t.value)]
    low = min((t.value for t in ok), default=0.0)
    for ax, key, xlabel in ((axes[0], lambda t: t.number, "trial number"),
                            (axes[1], lambda t: t.finished - t0, "seconds since the start")):
        order = sorted(ok, key=key)
        ax.scatter([key(t) for t in order], [t.value for t in order], s=16, color="0.55", label="trial", zorder=2)
        best, xs, ys = -math.inf, [], []
        for t in order:
            best = max(best, t.value)
            xs.append(key(t))
            ys.append(best)
        ax.step(xs, ys, where="post", color="tab:blue", lw=1.8, label="best so far", zorder=3)
        if bad:
            ax.scatter([key(t) for t in bad], [low] * len(bad), marker="x", color="tab:red", s=24,
                       label=f"failed / infeasible ({len(bad)})", zorder=3)
        ax.set_xlabel(xlabel)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(value_name)
    axes[0].legend(loc="lower right", fontsize=8)
    return _save(fig, path)


def plot_curves(curves: dict[int, list[dict[str, Any]]], rungs: dict[int, list[float]], path: Path,
                reference: list[dict[str, Any]] | None = None, max_lines: int = 300) -> Path:
    """Every trial's validation accuracy per epoch (multi-fidelity runs: where each stopped, the rungs as
    vertical lines), the hand-designed reference's curve in black."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(8, 4), dpi=110)
    for t, rows in list(curves.items())[-max_lines:]:
        pts = [(r["epoch"], r["val_accuracy"]) for r in rows if r.get("val_accuracy") is not None]
        if pts:
            ax.plot(*zip(*pts), color="tab:blue", alpha=0.35, lw=1, marker="." if len(pts) == 1 else None)
    for f in sorted({f for fs in rungs.values() for f in fs}):
        ax.axvline(f, color="0.7", lw=0.8, ls="--")
    if reference:
        pts = [(r["epoch"], r["val_accuracy"]) for r in reference if r.get("val_accuracy") is not None]
        if pts:
            ax.plot(*zip(*pts), color="black", lw=2, label="hand-designed reference")
            ax.legend(loc="lower right", fontsize=8)
    ax.set_xlabel("epoch")
    ax.set_ylabel("validation accuracy (%)")
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_oneshot_progress(epochs: Sequence[Any], path: Path) -> Path:
    """A one-shot search's metrics per epoch (the supernet's accuracies and losses) against epoch and time."""
    plt = _plt()
    t0 = epochs[0].finished - epochs[0].metrics.get("seconds", 0.0) if epochs else 0.0
    fig, axes = plt.subplots(1, 2, figsize=(12, 4), dpi=110)
    keys = sorted({k for e in epochs for k, v in e.metrics.items() if isinstance(v, (int, float))
                   and ("accuracy" in k or "loss" in k)})
    for k in keys:
        ep = [e for e in epochs if isinstance(e.metrics.get(k), (int, float))]
        ax = axes[0] if "accuracy" in k else axes[1]
        ax.plot([e.epoch for e in ep], [e.metrics[k] for e in ep], marker="o", ms=3, label=k)
    axes[0].set_ylabel("accuracy (%)")
    axes[1].set_ylabel("loss")
    from matplotlib.ticker import MaxNLocator

    for ax in axes:
        ax.set_xlabel("search epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.grid(alpha=0.3)
        if ax.lines:
            ax.legend(fontsize=8)
    if epochs:
        axes[0].set_title(f"{len(epochs)} epochs in {epochs[-1].finished - t0:.0f} s", fontsize=9)
    return _save(fig, path)


def plot_distribution(values: dict[str, Sequence[float]], path: Path, title: str = "",
                      xrange: tuple[float, float] | None = None, xlabel: str = "") -> Path:
    """Histograms of result metrics (e.g. val and test accuracy of the successful trials), overlaid."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4), dpi=110)
    data = {k: [float(v) for v in vs if v is not None and math.isfinite(float(v))] for k, vs in values.items()}
    data = {k: v for k, v in data.items() if v}
    allv = [v for vs in data.values() for v in vs]
    lo, hi = xrange if xrange is not None else (min(allv, default=0.0), max(allv, default=1.0))
    bins = np.linspace(lo, hi + 1e-9, 21) if hi > lo else 10
    for k, vs in data.items():
        ax.hist(vs, bins=bins, alpha=0.55, label=f"{k} (n={len(vs)}, median {np.median(vs):.2f})")
    ax.set_ylabel("count")
    ax.set_xlabel(xlabel)
    ax.set_title(title, fontsize=9)
    ax.grid(alpha=0.3)
    if data:
        ax.legend(fontsize=8)
    return _save(fig, path)


def plot_alphas(epochs: Sequence[Any], names: dict[str, Sequence[str]], path: Path, max_panels: int = 28) -> Path:
    """softmax(α) of every decision over the search epochs, one small panel per decision (the DARTS paper's
    'architecture weights' plots), the candidates coloured consistently across panels."""
    plt = _plt()
    with_a = [e for e in epochs if e.alphas]
    labels = _sorted_labels(with_a[-1].alphas)[:max_panels] if with_a else []
    cols = min(7, max(1, len(labels)))
    rows = max(1, math.ceil(len(labels) / cols))
    fig, axes = plt.subplots(rows, cols, figsize=(2.3 * cols + 1.5, 1.9 * rows + 0.8), dpi=100, squeeze=False,
                             sharex=True, sharey=True)
    every = sorted({n for lab in labels for n in names.get(lab, ())}, key=str)
    cmap = plt.get_cmap("tab10" if len(every) <= 10 else "tab20")
    colour = {n: cmap(i % cmap.N) for i, n in enumerate(every)}
    handles = {}
    for ax, lab in zip(axes.flat, labels):
        ep = [e.epoch for e in with_a if lab in e.alphas]
        w = np.array([e.alphas[lab] for e in with_a if lab in e.alphas], dtype=float)
        cand = list(names.get(lab, [])) or [str(i) for i in range(w.shape[1])]
        for k in range(w.shape[1]):
            name = cand[k] if k < len(cand) else str(k)
            (line,) = ax.plot(ep, w[:, k], color=colour.get(name, "0.4"), lw=1.4, marker="." if len(ep) < 12 else None)
            handles.setdefault(name, line)
        ax.set_title(lab, fontsize=8)
        ax.grid(alpha=0.3)
    for ax in list(axes.flat)[len(labels):]:
        ax.axis("off")
    if handles:
        fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(8, len(handles)), fontsize=8,
                   frameon=False)
    from matplotlib.ticker import MaxNLocator

    for ax in axes[-1]:
        ax.set_xlabel("search epoch", fontsize=8)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    fig.tight_layout(rect=(0, 0.08 if handles else 0, 1, 1))
    fig.savefig(path)
    plt.close(fig)
    return path


def _sorted_labels(alphas: dict[str, Any]) -> list[str]:
    def key(lab: str):
        return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", lab)]

    return sorted(alphas, key=key)


def plot_training(history: Sequence[dict[str, Any]], path: Path) -> Path:
    """A final training's per-epoch curves: training loss, training and validation accuracy."""
    plt = _plt()
    fig, axes = plt.subplots(1, 2, figsize=(11, 3.6), dpi=110)
    ep = [h["epoch"] for h in history]
    axes[0].plot(ep, [h["train_loss"] for h in history], color="tab:red")
    axes[0].set_ylabel("training loss")
    for k in ("train_accuracy", "val_accuracy"):
        ys = [h.get(k) for h in history]
        if any(isinstance(v, (int, float)) for v in ys):
            axes[1].plot(ep, [v if isinstance(v, (int, float)) else np.nan for v in ys], label=k)
    axes[1].set_ylabel("accuracy (%)")
    axes[1].legend(fontsize=8)
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    return _save(fig, path)
