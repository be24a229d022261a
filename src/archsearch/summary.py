"""What a run holds, read back from its directory: the summary (configuration, trials, best, counts, the
hand-designed reference), and reading architectures from files or text."""
from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import UserError
from .space import Architecture, SearchSpace
from .spaces import get_space
from .storage import RunStore, TrialRecord


def best_trial(recs) -> TrialRecord | None:
    """The best finished trial: at the highest fidelity reached (a multi-fidelity run's top rung), then the
    highest value, then the lowest validation loss (it breaks ties when accuracy saturates), then the first."""
    ok = [r for r in recs if r.status == "ok" and r.value is not None]
    if not ok:
        return None

    def key(r: TrialRecord):
        loss = r.metrics.get("val_loss")
        return (r.fidelity or 0.0, r.value, -(loss if isinstance(loss, (int, float)) and loss == loss else 0.0),
                -r.number)
    return max(ok, key=key)


@dataclass
class StudySummary:
    run_dir: Path
    config: dict[str, Any]
    trials: list[TrialRecord]
    best: TrialRecord | None
    counts: dict[str, int]
    elapsed_seconds: float
    reference: dict[str, Any] | None = None
    curves: dict[int, list[dict[str, Any]]] = field(default_factory=dict)  # trial -> its learning curve
    rungs: dict[int, list[float]] = field(default_factory=dict)  # trial -> fidelities of the rungs it finished

    def versus_reference(self, metric: str = "val_accuracy") -> float | None:
        """Best found minus the hand-designed reference, in points of ``metric`` (None when either is missing)."""
        ref = (self.reference or {}).get("metrics", {}).get(metric)
        best = None if self.best is None else self.best.metrics.get(metric)
        return None if ref is None or best is None else float(best) - float(ref)

    def to_dict(self, space: SearchSpace | None = None) -> dict[str, Any]:
        best = None
        if self.best is not None:
            b = self.best
            best = {"trial": b.number, "architecture": b.arch.to_dict(),
                    "text": space.format(b.arch) if space is not None else str(b.arch), "value": b.value,
                    "val_accuracy": b.metrics.get("val_accuracy"), "test_accuracy": b.metrics.get("test_accuracy"),
                    "metrics": b.metrics}
        return {"run_dir": str(self.run_dir), "best": best, "trials": self.counts,
                "n_trials": len(self.trials), "elapsed_seconds": self.elapsed_seconds, "config": self.config,
                "curves": {str(k): v for k, v in self.curves.items()},
                "rungs": {str(k): v for k, v in self.rungs.items()},
                "reference": self.reference, "vs_reference": {m: self.versus_reference(m) for m in
                                                              ("val_accuracy", "test_accuracy")}}


def summarize(run_dir: str | Path) -> StudySummary:
    """Read a run (also one being written: read-only, never taking its lock); a damaged database is one line."""
    import sqlite3

    if not RunStore.is_run(run_dir):
        raise UserError(f"{run_dir} is not an archsearch run directory (no study.db)")
    store = RunStore(run_dir, read_only=True)
    try:
        trials = store.trials()
        return StudySummary(Path(run_dir), store.get_meta("config", {}), trials, best_trial(trials), store.counts(),
                            float(store.get_meta("elapsed_seconds", 0.0)), store.get_meta("reference"),
                            store.curves(), _rungs(store))
    except (sqlite3.DatabaseError, ValueError, KeyError, TypeError) as e:
        raise UserError(f"{run_dir}: the run database is damaged ({type(e).__name__}: {e})") from None
    finally:
        store.close()


def space_of(summary: StudySummary) -> SearchSpace:
    sp = summary.config.get("space", {})
    return get_space(sp.get("name", "macro"), **sp.get("config", {}))


def load_architecture(space: SearchSpace, text: str) -> Architecture:
    """Read an architecture for ``space`` from a file (architecture JSON, or a run's best.json), inline JSON,
    or the space's own text form."""
    if _is_file(text):
        text = Path(text).read_text()
        try:
            doc = json.loads(text)
            if isinstance(doc, dict) and isinstance(doc.get("architecture"), dict):
                text = json.dumps(doc["architecture"])
        except ValueError:
            pass
    return space.parse(text)


def _is_file(text: str) -> bool:
    try:
        return len(text) < 4096 and Path(text).is_file()
    except OSError:  # a long JSON string is not a file name
        return False


def _rungs(store: RunStore) -> dict[int, list[float]]:
    out: dict[int, list[float]] = {}
    for t, fid, *_ in store.rungs():
        out.setdefault(t, []).append(fid)
    return out
