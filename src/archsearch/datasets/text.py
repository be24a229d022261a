"""Word-level text corpora for language modelling (the recurrent-cell spaces, :mod:`archsearch.spaces.rnn`).

A corpus is a folder in the Penn Treebank layout that DARTS and ENAS search on (Mikolov et al. 2010's
preprocessing): ``train.txt``, ``valid.txt`` and ``test.txt``, one sentence a line, words separated by spaces.
Every line ends with an ``<eos>`` token; the vocabulary is the training split's words plus ``<unk>``, and words of
the validation or test split outside it become ``<unk>``. Each split's token stream is cut into windows of
``bptt`` tokens (35, as DARTS and ENAS): ``x`` a window, ``y`` the same window shifted by one token.

The result is a :class:`TextDataset`, a :class:`~archsearch.datasets.Dataset` whose ``x`` and ``y`` hold token ids of
shape (N, bptt), so that every strategy, evaluator and training loop handles it unchanged: a language model
returns logits of shape (N, vocab, bptt), which is what ``cross_entropy`` takes, and the accuracy of a batch is
its next-word accuracy. Its ``shape`` is ``InputShape(1, 1, bptt, vocab)``. The metric is perplexity,
exp(mean cross-entropy per token): lower is better, so an objective minimises it (``min:val_perplexity``).
"""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from .core import Dataset
from ..errors import UserError
from ..space import InputShape

SPLIT_FILES = {"train": "train.txt", "val": "valid.txt", "test": "test.txt"}
EOS, UNK = "<eos>", "<unk>"
DEFAULT_BPTT = 35


@dataclass
class TextDataset(Dataset):
    """Token windows of a corpus: x (N, bptt) and y (N, bptt) int64, ``vocab[i]`` the word of id i."""

    vocab: list[str] = field(default_factory=list)

    @property
    def shape(self) -> InputShape:
        return InputShape(1, 1, int(self.x_train.shape[1]), self.num_classes)

    def summary(self) -> str:
        n = [int(x.numel()) for x in (self.x_train, self.x_val, self.x_test)]
        return (f"{self.name}: text, {n[0]} / {n[1]} / {n[2]} train/val/test tokens in windows of "
                f"{self.x_train.shape[1]}, vocabulary {self.num_classes}")


def is_corpus(path: str | os.PathLike | None) -> bool:
    """Whether ``path`` is a folder holding train.txt, valid.txt and test.txt."""
    if path is None:
        return False
    p = Path(path)
    return p.is_dir() and all((p / f).is_file() for f in SPLIT_FILES.values())


def tokenize(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as e:
        raise UserError(f"{path}: not UTF-8 text ({e.reason} at byte {e.start})") from None
    words: list[str] = []
    for line in text.splitlines():
        tokens = line.split()
        if tokens:
            words.extend(tokens + [EOS])
    return words


def windows(ids: list[int], bptt: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Non-overlapping windows of ``bptt`` tokens and their next-token targets."""
    n = (len(ids) - 1) // bptt
    t = torch.tensor(ids[: n * bptt + 1], dtype=torch.int64)
    return t[:-1].reshape(n, bptt), t[1:].reshape(n, bptt)


def load_corpus(path: str | os.PathLike, bptt: int = DEFAULT_BPTT) -> TextDataset:
    """Read a PTB-layout folder (see the module docstring) into a :class:`TextDataset`."""
    p = Path(path)
    if not p.is_dir():
        raise UserError(f"text corpus {p}: not a folder (expected train.txt, valid.txt and test.txt in it)")
    missing = [f for f in SPLIT_FILES.values() if not (p / f).is_file()]
    if missing:
        raise UserError(f"text corpus {p}: missing {', '.join(missing)} (PTB layout: train.txt valid.txt test.txt)")
    if bptt < 2:
        raise UserError(f"text windows need bptt >= 2, got {bptt}")
    words = {split: tokenize(p / f) for split, f in SPLIT_FILES.items()}
    vocab = sorted(set(words["train"]) | {EOS, UNK})
    index = {w: i for i, w in enumerate(vocab)}
    splits = {}
    for split, ws in words.items():
        ids = [index.get(w, index[UNK]) for w in ws]
        if len(ids) < bptt + 1:
            raise UserError(f"text corpus {p}: {SPLIT_FILES[split]} has {len(ids)} tokens; need more than the "
                            f"window of {bptt}")
        splits[split] = windows(ids, bptt)
    (xtr, ytr), (xva, yva), (xte, yte) = splits["train"], splits["val"], splits["test"]
    return TextDataset(p.name, xtr, ytr, xva, yva, xte, yte, len(vocab), vocab=vocab)


@torch.no_grad()
def perplexity(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch_size: int = 256,
               device: torch.device | None = None) -> float:
    """exp(mean cross-entropy per token) of a language model on windows (x, y), in eval mode."""
    if len(y) == 0:
        return float("nan")
    device = device or next(model.parameters(), torch.empty(0)).device
    was = model.training
    model.eval()
    total, n = 0.0, 0
    for i in range(0, len(y), batch_size):
        out = model(x[i:i + batch_size].to(device))
        out = out[0] if isinstance(out, (tuple, list)) else out
        total += float(F.cross_entropy(out, y[i:i + batch_size].to(device), reduction="sum"))
        n += y[i:i + batch_size].numel()
    model.train(was)
    return math.exp(min(total / n, 50.0))


def language_model_metrics(model: nn.Module, data: TextDataset, device: torch.device | str | None = None
                           ) -> dict[str, float]:
    """val_perplexity and test_perplexity (lower is better)."""
    dev = torch.device(device) if isinstance(device, str) else device
    return {"val_perplexity": perplexity(model, data.x_val, data.y_val, device=dev),
            "test_perplexity": perplexity(model, data.x_test, data.y_test, device=dev)}


def write_toy_corpus(path: str | os.PathLike, sentences: int = 400, seed: int = 0) -> Path:
    """A small generated corpus in the PTB layout (for tests and demos; nothing downloads): sentences of a tiny
    grammar, so that a language model has structure to learn."""
    import numpy as np

    rng = np.random.default_rng(seed)
    subjects = ["the cat", "a dog", "the old man", "my sister", "the bird", "a child"]
    verbs = ["sees", "likes", "chases", "finds", "hears"]
    objects = ["the ball", "a tree", "the red house", "some bread", "the river", "a small box"]
    tails = ["", "today", "in the park", "every day", "at night"]

    def sentence() -> str:
        parts = [subjects[rng.integers(len(subjects))], verbs[rng.integers(len(verbs))],
                 objects[rng.integers(len(objects))], tails[rng.integers(len(tails))]]
        if rng.random() < 0.3:
            parts += ["and", verbs[rng.integers(len(verbs))], objects[rng.integers(len(objects))]]
        return " ".join(p for p in parts if p)

    p = Path(path)
    p.mkdir(parents=True, exist_ok=True)
    n_val = n_test = max(20, sentences // 8)
    for name, n in (("train.txt", sentences), ("valid.txt", n_val), ("test.txt", n_test)):
        (p / name).write_text("\n".join(sentence() for _ in range(n)) + "\n")
    return p
