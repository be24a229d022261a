"""What the dashboard's JSON endpoints send, built from a :class:`~.data.RunCache` (plain dicts and lists).

Strings from a run (labels, names, errors) go out as JSON values and are put on the page with ``textContent``
by the browser code, never parsed as HTML.
"""
from __future__ import annotations

import json
import math
import shlex
import time
from pathlib import Path
from typing import Any

from .data import TRIAL_COLUMNS, RunCache

TABLE_METRICS = ("val_accuracy", "test_accuracy", "params", "flops", "latency_ms")
ERROR_CHARS = 400  # of an error in the trials table (the trial view has all of it)
HEARTBEAT_FRESH_SECONDS = 20.0


def finite(v: Any) -> Any:
    """JSON-safe numbers: NaN and infinities become None."""
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def space_of(cache: RunCache):
    """The run's search space rebuilt from its config, or None when it cannot be (the text form falls back)."""
    def build(c: RunCache):
        from ..spaces import get_space

        sp = (c.meta.get("config") or {}).get("space") or {}
        try:
            return get_space(sp.get("name", "macro"), **(sp.get("config") or {}))
        except Exception:
            return None
    hit = cache._derived.get("space")
    if hit is None or hit[0] != json.dumps((cache.meta.get("config") or {}).get("space"), sort_keys=True):
        cache._derived["space"] = (json.dumps((cache.meta.get("config") or {}).get("space"), sort_keys=True),
                                   build(cache))
    return cache._derived["space"][1]


def arch_text(space, arch: str | dict[str, Any]) -> str:
    """The space's short text form of an architecture (given as its stored JSON), else the JSON itself."""
    raw = arch if isinstance(arch, str) else json.dumps(arch)
    if space is not None:
        try:
            from ..space import Architecture

            return space.format(Architecture.from_json(raw))
        except Exception:
            pass
    return raw


def _compact(cache: RunCache, number: int, space: Any) -> list:
    """One trial as the table and charts get it (columns: ``TRIAL_FIELDS``); ``space``: the run's
    :func:`space_of` (asked once by the caller: a 10,000-trial first load would otherwise ask per row)."""
    rev, row = cache.rev[number], cache.rows[number]
    hit = cache.compact.get(number)
    if hit is not None and hit[0] == rev:
        return hit[1]
    _, arch, status, value, values, metrics, error, fidelity, started, finished = row[:10]
    m = json.loads(metrics or "{}")
    for k, v in m.items():
        if isinstance(v, (int, float)) and not isinstance(v, bool) and k not in cache.metric_keys:
            cache.metric_keys.append(k)
    nums = [finite(m.get(k)) if isinstance(m.get(k), (int, float)) else None for k in cache.metric_keys]
    text = arch_text(space, arch)
    out = [number, status, finite(value), finite(fidelity), started, finished,
           None if error is None else str(error)[:ERROR_CHARS], text,
           None if not values else [finite(v) for v in json.loads(values)], nums]
    cache.compact[number] = (rev, out)
    return out


TRIAL_FIELDS = ("number", "status", "value", "fidelity", "started", "finished", "error", "text", "values",
                "metrics")


def trials_since(cache: RunCache, since: int = 0) -> dict[str, Any]:
    """The trials changed after revision ``since`` (all of them for 0), and the cursor to ask with next."""
    with cache.views_lock:
        space = space_of(cache)
        rows = [_compact(cache, n, space) for n in sorted(cache.rows) if cache.rev[n] > since]
    return {"cursor": cache.seq, "fields": TRIAL_FIELDS, "metric_keys": list(cache.metric_keys), "rows": rows,
            "total": len(cache.rows)}


def best(cache: RunCache) -> dict[str, Any] | None:
    """The best finished trial, judged as :func:`archsearch.summary.best_trial` does (top fidelity first)."""
    def compute(c: RunCache):
        ok = [(r[7] or 0.0, r[3], n) for n, r in c.rows.items()
              if r[2] == "ok" and isinstance(r[3], (int, float)) and math.isfinite(r[3])]
        if not ok:
            return None
        top = max((f, v) for f, v, _ in ok)
        tied = [n for f, v, n in ok if (f, v) == top]  # ties (a saturated accuracy): the lower loss, then first

        def key(n: int):
            loss = json.loads(c.rows[n][5] or "{}").get("val_loss")
            return (-(loss if isinstance(loss, (int, float)) and loss == loss else 0.0), -n)
        return max(tied, key=key)
    n = cache.derived("best", compute)
    if n is None:
        return None
    row = _compact(cache, n, space_of(cache))
    return {"trial": n, "value": row[2], "text": row[7], "fidelity": row[3],
            "metrics": {k: v for k, v in json.loads(cache.rows[n][5] or "{}").items()
                        if isinstance(v, (int, float, str)) or v is None}}


def incumbent(cache: RunCache) -> dict[str, Any]:
    """Best value so far against finished trials (1, 2, ...) and against seconds since the run's first trial."""
    def compute(c: RunCache):
        done = sorted((r for r in c.rows.values() if r[2] != "running" and r[9] is not None), key=lambda r: r[9])
        t0 = min((r[8] for r in c.rows.values()), default=0.0)
        k, s, b, top = [], [], [], None
        for i, r in enumerate(done, 1):
            if r[2] == "ok" and r[3] is not None and math.isfinite(r[3]) and (top is None or r[3] > top):
                top = r[3]
            if top is not None:
                k.append(i)
                s.append(round(r[9] - t0, 3))
                b.append(top)
        return {"trials": k, "seconds": s, "best": b}
    return cache.derived("incumbent", compute)


def run_status(cache: RunCache) -> tuple[str, float | None]:
    """("running" | "done" | "stopped" | "empty", progress 0..1 or None) from the budget, the trials and the
    lock file's heartbeat (a recent one: a writer is at work)."""
    cfg = cache.meta.get("config") or {}
    budget = cfg.get("budget") or {}
    done = sum(n for s, n in cache.counts.items() if s != "running")
    progress = None
    if cfg.get("kind") == "oneshot" and budget.get("epochs"):
        progress = min(1.0, len(cache.epochs) / float(budget["epochs"])) if cache.epochs else None
    elif budget.get("trials"):
        progress = min(1.0, done / float(budget["trials"]))
    if budget.get("seconds"):
        by_time = min(1.0, float(cache.meta.get("elapsed_seconds") or 0.0) / float(budget["seconds"]))
        progress = by_time if progress is None else max(progress, by_time)
    beat = (cache.lock_info or {}).get("heartbeat")
    alive = isinstance(beat, (int, float)) and time.time() - beat < HEARTBEAT_FRESH_SECONDS
    if progress is not None and progress >= 1.0 and not cache.counts.get("running"):
        return "done", progress
    if alive:
        return "running", progress
    return ("stopped" if cache.rows or cache.epochs else "empty"), progress


def _objective_goals(cfg: dict[str, Any]) -> list[str] | None:
    obj = cfg.get("objective") or {}
    if obj.get("kind") == "constrained":
        obj = obj.get("base") or {}
    return list(obj.get("goals") or []) if obj.get("kind") == "pareto" else None


def overview(run_id: str, cache: RunCache) -> dict[str, Any]:
    """One line of the runs list."""
    cache.refresh()
    cfg = cache.meta.get("config") or {}
    if cache.error:
        return {"id": run_id, "name": cache.path.name, "error": cache.error}
    if cfg.get("kind") == "oneshot":
        cache.extras()
    status, progress = run_status(cache)
    b = best(cache)
    budget = cfg.get("budget") or {}
    return {"id": run_id, "name": cache.path.name, "space": (cfg.get("space") or {}).get("name"),
            "strategy": (cfg.get("strategy") or {}).get("name"), "evaluator": (cfg.get("evaluator") or {}).get("name"),
            "budget": ", ".join(f"{k} {v}" for k, v in budget.items() if v is not None), "status": status,
            "progress": progress, "n_trials": len(cache.rows), "counts": cache.counts,
            "best": None if b is None else b["value"], "best_trial": None if b is None else b["trial"],
            "created": cfg.get("created"), "kind": cfg.get("kind", "blackbox"),
            "elapsed_seconds": finite(float(cache.meta.get("elapsed_seconds") or 0.0))}


def detail(run_id: str, cache: RunCache) -> dict[str, Any]:
    """The run view's header: configuration, counts, best, reference comparison, which sections it has."""
    cache.extras()
    out = overview(run_id, cache)
    if cache.error:
        return out
    cfg = cache.meta.get("config") or {}
    ref = cache.meta.get("reference")
    b = best(cache)
    vs = {}
    for m in ("val_accuracy", "test_accuracy"):
        r = ((ref or {}).get("metrics") or {}).get(m)
        f = None if b is None else b["metrics"].get(m)
        vs[m] = None if not isinstance(r, (int, float)) or not isinstance(f, (int, float)) else float(f) - float(r)
    trials_since(cache, 0) if not cache.metric_keys and cache.rows else None  # fills metric_keys
    keys = cache.metric_keys
    table = [k for k in TABLE_METRICS if k in keys] or keys[:4]
    out.update({"config": cfg, "best": b, "reference": ref, "vs_reference": vs, "metric_keys": list(keys),
                "table_metrics": table, "goals": _objective_goals(cfg), "has_curves": bool(cache.curves),
                "n_rungs": len(cache.rungs), "has_epochs": bool(cache.epochs),
                "has_alphas": any(e["alphas"] for e in cache.epochs), "path": str(cache.path)})
    return out


def trial_detail(run_id: str, cache: RunCache, number: int) -> dict[str, Any] | None:
    """One trial: architecture (dict and text), metrics, error, learning curve, rungs and the commands."""
    cache.extras()
    row = cache.rows.get(number)
    if row is None:
        return None
    arch = json.loads(row[1])
    space = space_of(cache)
    cfg = cache.meta.get("config") or {}
    b = best(cache)
    doc = {name: row[i] for i, name in enumerate(TRIAL_COLUMNS) if name not in ("arch", "metrics", "values")}
    doc.update({"architecture": arch, "metrics": {k: finite(v) for k, v in json.loads(row[5] or "{}").items()},
                "values": json.loads(row[4]) if row[4] else None, "value": finite(row[3])})
    return {"run": run_id, "trial": number, "text": arch_text(space, arch), "status": row[2], "doc": doc,
            "curve": cache.curves.get(number, []),
            "rungs": [{"fidelity": f, "value": finite(v)} for t, f, v in cache.rungs if t == number],
            "is_best": b is not None and b["trial"] == number,
            "commands": commands(cache.path, cfg, arch, number, b is not None and b["trial"] == number)}


def commands(run_dir: Path, cfg: dict[str, Any], arch: dict[str, Any], number: int, is_best: bool) -> list[dict]:
    """Shell commands to retrain the trial's architecture from scratch, evaluate it, and export (the best)."""
    sp = cfg.get("space") or {}
    space_args = f"--space {shlex.quote(str(sp.get('name', 'macro')))}" + "".join(
        f" --space-opt {shlex.quote(f'{k}={json.dumps(v)}')}" for k, v in (sp.get("config") or {}).items())
    js = shlex.quote(json.dumps(arch, sort_keys=True))
    out = [{"what": "retrain from scratch (final training)",
            "command": f"echo {js} > trial-{number}.json && archsearch train trial-{number}.json {space_args}"},
           {"what": "train and evaluate once, as the search did",
            "command": f"archsearch evaluate --arch {js} {space_args}"}]
    rd = shlex.quote(str(run_dir))
    if is_best:
        out.append({"what": "export the run's best (this trial) with its weights",
                    "command": f"archsearch export {rd} --format onnx -o trial-{number}.onnx"})
        out.append({"what": "retrain the run's best with the run's data", "command": f"archsearch train {rd}"})
    return out


def pareto(cache: RunCache) -> dict[str, Any]:
    """The run's Pareto front in its first two objectives (x: the cost), every trial, and the front's trials."""
    def compute(c: RunCache):
        from types import SimpleNamespace

        from ..errors import UserError
        from ..hardware.pareto_report import default_axes, front_report

        recs = [SimpleNamespace(number=n, status=r[2], arch=json.loads(r[1]), metrics=json.loads(r[5] or "{}"))
                for n, r in sorted(c.rows.items())]
        cfg = c.meta.get("config") or {}
        try:
            x, y = default_axes(cfg.get("objective"), recs)
            rep = front_report(recs, lambda a: arch_text(space_of(c), a), x, y)
        except (UserError, Exception) as e:  # no trial with both metrics yet
            return {"error": str(e)}
        gx, gy = rep.goals
        return {"x": str(gx), "y": str(gy), "x_metric": gx.metric, "y_metric": gy.metric,
                "points": [[r["trial"], r[gx.metric], r[gy.metric]] for r in rep.points],
                "infeasible": [[r["trial"], r[gx.metric], r[gy.metric]] for r in rep.infeasible],
                "front": [[r["trial"], r[gx.metric], r[gy.metric], r["text"]] for r in rep.front]}
    cache.refresh()
    return cache.derived("pareto", compute)


def curves(cache: RunCache, max_trials: int = 300) -> dict[str, Any]:
    """Learning curves (val_accuracy per epoch) of the trials that trained longest, and every rung."""
    cache.extras()
    longest = sorted(cache.curves, key=lambda t: (-len(cache.curves[t]), t))[:max_trials]
    out = {str(t): [[r.get("epoch"), finite(r.get("val_accuracy"))] for r in cache.curves[t]] for t in sorted(longest)}
    rungs: dict[str, dict[str, Any]] = {}
    for t, f, v in cache.rungs:
        d = rungs.setdefault(f"{f:g}", {"fidelity": f, "trials": 0, "best": None})
        d["trials"] += 1
        if v is not None and math.isfinite(v) and (d["best"] is None or v > d["best"]):
            d["best"] = v
    return {"curves": out, "n_trials": len(cache.curves), "rungs": sorted(rungs.values(), key=lambda d: d["fidelity"])}


def epochs(cache: RunCache) -> dict[str, Any]:
    """A one-shot run's epochs: metrics, architecture weights (label -> softmax(α) per epoch) and their names."""
    cache.extras()
    space = space_of(cache)
    labels = sorted({lab for e in cache.epochs for lab in (e["alphas"] or {})})
    names: dict[str, list[str]] = {}
    if space is not None:
        from ..report import _candidates

        names = {lab: _candidates(space, lab) for lab in labels}
    return {"epochs": [{"epoch": e["epoch"], "metrics": {k: finite(v) for k, v in e["metrics"].items()},
                        "alphas": e["alphas"], "text": None if e["arch"] is None else arch_text(space, e["arch"])}
                       for e in cache.epochs], "labels": labels, "names": names}
