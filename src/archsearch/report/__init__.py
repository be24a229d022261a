"""``archsearch report``: one self-contained HTML page (every figure embedded as base64 PNG, no external file,
script or font) plus the figures as PNG files, for a run of any strategy.

Sections: summary; search progress (every trial and the best so far against trial number and time; a one-shot
search's per-epoch metrics); the distribution of results; the best architecture drawn (:mod:`.draw`); the Pareto
front (multi-objective runs); the architecture weights over epochs (one-shot runs with α); the final training
(when ``archsearch train RUN_DIR`` has written ``RUN_DIR/final``); and the trials table.
"""
from __future__ import annotations

import base64
import html
import json
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from ..errors import UserError

__all__ = ["write_report", "Report"]

REPORT_DIR, REPORT_HTML = "report", "report.html"


@dataclass
class Report:
    html: Path
    figures: dict[str, Path] = field(default_factory=dict)
    sections: list[str] = field(default_factory=list)


@dataclass
class _Run:
    """What every section of a report reads: the run, its space, its one-shot epochs, where figures go."""

    run_dir: Path
    summary: Any
    space: Any
    epochs: list
    out: Path
    value_name: str
    oneshot: bool
    figs: dict[str, Path] = field(default_factory=dict)

    @property
    def objective_config(self) -> dict:
        return self.summary.config.get("objective") or {}


def write_report(run_dir: str | Path, out: str | Path | None = None, max_rows: int = 200) -> Report:
    """Write ``report.html`` and the PNGs into ``out`` (default ``RUN_DIR/report``)."""
    run = _open_run(Path(run_dir), out)
    parts: list[tuple[str, str]] = [("Summary", _summary_html(run.run_dir, run.summary, run.space, run.value_name,
                                                              run.oneshot))]
    for section in (_progress_section, _distribution_section, _reference_section, _curves_section, _best_section,
                    _pareto_section, _alphas_section, _final_training_section):
        parts += section(run)
    parts.append(("Trials", _trials_table(run.summary.trials, run.space, run.summary.best, max_rows)))
    page = _page(f"archsearch report: {run.run_dir.name}", parts)
    path = run.out / "report.html"
    path.write_text(page, encoding="utf-8")
    return Report(path, run.figs, [title for title, _ in parts])


def _open_run(run_dir: Path, out: str | Path | None) -> _Run:
    from ..objective import objective_from_config
    from ..storage import RunStore
    from ..study import space_of, summarize

    summary = summarize(run_dir)  # a UserError when run_dir is not a run
    try:
        space = space_of(summary)
    except Exception as e:
        raise UserError(f"{run_dir}: cannot rebuild its space ({type(e).__name__}: {e})") from None
    store = RunStore(run_dir, read_only=True)
    try:
        epochs = store.epochs()
    finally:
        store.close()
    out = Path(out) if out is not None else run_dir / REPORT_DIR
    out.mkdir(parents=True, exist_ok=True)
    cfg = summary.config
    try:
        value_name = objective_from_config(cfg.get("objective") or {}).describe()
    except Exception:
        value_name = "objective"
    return _Run(run_dir, summary, space, epochs, out, value_name, bool(epochs) or cfg.get("kind") == "oneshot")


def _progress_section(run: _Run) -> list[tuple[str, str]]:
    from . import plots

    if run.oneshot and run.epochs:
        run.figs["progress"] = plots.plot_oneshot_progress(run.epochs, run.out / "progress.png")
        note = "Supernet metrics after every search epoch (a one-shot search trains one supernet, then the derived " \
               "architecture)."
    else:
        obj = run.objective_config
        goals = (obj.get("base") or {}).get("goals") if obj.get("kind") == "constrained" else obj.get("goals")
        y_name = f"{goals[0]} (first objective)" if _is_multi_objective(obj) and goals else run.value_name
        run.figs["progress"] = plots.plot_progress(run.summary.trials, y_name, run.out / "progress.png")
        note = f"Every finished trial's objective ({html.escape(run.value_name)}) and the best so far."
    return [("Search progress", f"<p>{note}</p>" + _img(run.figs["progress"]))]


def _distribution_section(run: _Run) -> list[tuple[str, str]]:
    from . import plots

    ok = [t for t in run.summary.trials if t.status == "ok"]
    if run.oneshot and run.epochs and run.epochs[-1].alphas:
        last = run.epochs[-1].alphas
        run.figs["distribution"] = plots.plot_distribution(
            {"largest weight per decision": [max(v) for v in last.values()]}, run.out / "distribution.png",
            "how decided the architecture weights are at the last epoch", xrange=(0.0, 1.0),
            xlabel="largest softmax(α) of a decision (1: one candidate holds all the weight)")
    else:
        vals = {k: [t.metrics.get(k) for t in ok] for k in ("val_accuracy", "test_accuracy")}
        if not any(v is not None for vs in vals.values() for v in vs):
            vals = {"objective": [t.value for t in ok]}
        run.figs["distribution"] = plots.plot_distribution(vals, run.out / "distribution.png",
                                                           f"{len(ok)} successful trials", xlabel="accuracy (%)"
                                                           if "val_accuracy" in vals else "objective")
    return [("Distribution of results", _img(run.figs["distribution"]))]


def _reference_section(run: _Run) -> list[tuple[str, str]]:
    ref_html = _reference_html(run.summary)
    return [("Found vs hand-designed reference", ref_html)] if ref_html else []


def _curves_section(run: _Run) -> list[tuple[str, str]]:
    from . import plots

    summary = run.summary
    if not any(any(r.get("val_accuracy") is not None for r in c) for c in summary.curves.values()):
        return []
    run.figs["curves"] = plots.plot_curves(summary.curves, summary.rungs, run.out / "curves.png",
                                           (summary.reference or {}).get("curve"))
    n_multi = sum(1 for fs in summary.rungs.values() if len(fs) > 1)
    note = "Validation accuracy after every trained epoch of every trial" + (
        f"; dashed lines are the scheduler's rungs ({n_multi} trials promoted past the first)." if summary.rungs
        else ".")
    return [("Learning curves", f"<p>{note}</p>" + _img(run.figs["curves"]))]


def _best_section(run: _Run) -> list[tuple[str, str]]:
    from .draw import draw_architecture

    best, space = run.summary.best, run.space
    if best is None:
        return [("Best architecture", "<p>No trial finished successfully.</p>")]
    try:
        draw_architecture(space, best.arch, run.out / "architecture.png")
        run.figs["architecture"] = run.out / "architecture.png"
        drawing = _img(run.figs["architecture"])
    except Exception as e:  # a space the drawer does not know well: the text form still shows
        drawing = f"<p class=note>(could not draw: {html.escape(f'{type(e).__name__}: {e}')})</p>"
    return [("Best architecture", f"<p>trial {best.number}: <code>{html.escape(space.format(best.arch))}"
                                  f"</code></p>{_metrics_table(best.metrics)}{drawing}")]


def _pareto_section(run: _Run) -> list[tuple[str, str]]:
    if not _is_multi_objective(run.objective_config):
        return []
    from ..hardware.pareto_report import default_axes, front_report, plot_front

    try:
        x, y = default_axes(run.objective_config, run.summary.trials)
        rep = front_report(run.summary.trials, run.space.format, x, y)
        run.figs["pareto"] = plot_front(rep, run.out / "pareto.png")
    except UserError as e:
        return [("Pareto front", f"<p class=note>{html.escape(str(e))}</p>")]
    rows = "".join(f"<tr><td>{r['trial']}</td><td>{_fmt(r[rep.goals[0].metric])}</td>"
                   f"<td>{_fmt(r[rep.goals[1].metric])}</td><td><code>{html.escape(r['text'])}</code></td>"
                   f"</tr>" for r in rep.front)
    return [("Pareto front", _img(run.figs["pareto"]) + f"<table><tr><th>trial</th><th>"
                             f"{rep.goals[0].metric}</th><th>{rep.goals[1].metric}</th><th>architecture</th></tr>"
                             f"{rows}</table>")]


def _alphas_section(run: _Run) -> list[tuple[str, str]]:
    from . import plots

    if not run.oneshot:
        return []
    epochs, space = run.epochs, run.space
    if not any(e.alphas for e in epochs):
        return [("Architecture weights over epochs", "<p>This strategy keeps no architecture weights "
                                                     "(α); see the derived architecture above.</p>")]
    names = {lab: _candidates(space, lab) for e in epochs[-1:] for lab in (e.alphas or {})}
    run.figs["alphas"] = plots.plot_alphas(epochs, names, run.out / "alphas.png")
    derived = "".join(f"<li>epoch {e.epoch}: <code>{html.escape(space.format(e.arch))}</code></li>"
                      for e in epochs if e.arch is not None)
    return [("Architecture weights over epochs", _img(run.figs["alphas"])
             + f"<details><summary>derived architecture after each epoch</summary><ul>{derived}</ul></details>")]


def _final_training_section(run: _Run) -> list[tuple[str, str]]:
    from . import plots

    final = run.run_dir / "final" / "result.json"
    if not final.is_file():
        return []
    try:
        doc = json.loads(final.read_text())
        run.figs["training"] = plots.plot_training(doc.get("history") or [], run.out / "training.png")
        keep = {k: doc.get(k) for k in ("test_accuracy", "val_accuracy", "params", "flops", "latency_ms",
                                        "epochs", "train_seconds")}
        return [("Final training", f"<p>{html.escape(doc.get('data', ''))}</p>{_metrics_table(keep)}"
                 + _img(run.figs["training"]))]
    except (ValueError, KeyError, TypeError):
        return []


# ---- pieces ------------------------------------------------------------------------------------------------
def _is_multi_objective(obj: dict[str, Any]) -> bool:
    if obj.get("kind") == "constrained":
        obj = obj.get("base") or {}
    return obj.get("kind") == "pareto"


def _candidates(space, label: str) -> list[str]:
    """Names of the candidates an α vector weighs: a cell supernet edge's ops ('none' first), else the decision's."""
    if re.fullmatch(r"(normal|reduce)_n\d+_e\d+", label):
        from ..genotypes import DEFAULT_CELL_OPS

        ops = space.config.get("ops", DEFAULT_CELL_OPS)
        return ["none"] + [o for o in ops if o != "none"]
    try:
        return [str(o) for o in space.decision(label).options]
    except Exception:
        return []


def _reference_html(summary) -> str | None:
    """'best found vs reference: +x.xx points', said plainly when the search did not beat it."""
    ref = summary.reference
    if not ref:
        return None
    text = html.escape(str(ref.get("text", "")))
    if ref.get("status") != "ok":
        return f"<p>The reference <code>{text}</code> has no result ({html.escape(str(ref.get('error')))}).</p>"
    dv, dt = summary.versus_reference("val_accuracy"), summary.versus_reference("test_accuracy")
    m = ref.get("metrics", {})
    verdict = "" if dv is None or dv > 0 else " <b>The search did not beat the hand-designed reference.</b>"
    return (f"<p>The space's hand-designed reference <code>{text}</code>, trained by the same evaluator, seed and "
            f"fidelity: val {_fmt(m.get('val_accuracy'))}%, test {_fmt(m.get('test_accuracy'))}%.</p>"
            f"<p>best found vs reference: <b>{'-' if dv is None else f'{dv:+.2f}'}</b> points val, "
            f"{'-' if dt is None else f'{dt:+.2f}'} points test.{verdict}</p>")


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.stem)}" src="data:image/png;base64,{data}">'


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, int) and not isinstance(v, bool):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "-"
        return f"{v:,.0f}" if abs(v) >= 1000 else f"{v:.4g}"
    return html.escape(str(v))


def _metrics_table(m: dict[str, Any]) -> str:
    cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{_fmt(v)}</td></tr>" for k, v in m.items()
                    if isinstance(v, (int, float)) or v is None)
    return f"<table class=kv>{cells}</table>"


def _summary_html(run_dir: Path, summary, space, value_name: str, oneshot: bool) -> str:
    cfg = summary.config
    strategy = (cfg.get("strategy") or {}).get("name", "?")
    ev = cfg.get("evaluator") or {}
    rows = {"run directory": str(run_dir), "space": f"{space.name} {json.dumps(space.config)}",
            "strategy": strategy + (" (one-shot)" if oneshot else ""), "evaluator": ev.get("name", "?"),
            "data": (ev.get("options") or {}).get("data") or "digits", "objective": value_name,
            "budget": json.dumps(cfg.get("budget")), "seed": cfg.get("seed"),
            "trials": ", ".join(f"{k} {v}" for k, v in sorted(summary.counts.items())) or "none",
            "elapsed": f"{summary.elapsed_seconds:.0f} s",
            "generated": datetime.now().strftime("%Y-%m-%d %H:%M:%S")}
    return "<table class=kv>" + "".join(f"<tr><th>{k}</th><td>{html.escape(str(v))}</td></tr>"
                                        for k, v in rows.items()) + "</table>"


def _trials_table(trials, space, best, max_rows: int) -> str:
    metrics = [k for k in ("val_accuracy", "test_accuracy", "params", "flops", "latency_ms")
               if any(k in t.metrics for t in trials)]
    head = "".join(f"<th>{h}</th>" for h in ["#", "status", "value", *metrics, "seconds", "architecture"])
    shown = trials if max_rows <= 0 else trials[:max_rows]
    body = []
    for t in shown:
        cls = ' class="best"' if best is not None and t.number == best.number else ""
        status = t.status + (f": {t.error[:60]}" if t.error else "")
        cells = [str(t.number), html.escape(status), _fmt(t.value), *[_fmt(t.metrics.get(k)) for k in metrics],
                 _fmt(t.seconds), f"<code>{html.escape(space.format(t.arch))}</code>"]
        body.append(f"<tr{cls}>" + "".join(f"<td>{c}</td>" for c in cells) + "</tr>")
    more = f"<p class=note>{len(trials) - len(shown)} more trials not shown.</p>" if len(shown) < len(trials) else ""
    return f"<table class=trials><tr>{head}</tr>{''.join(body)}</table>{more}"


_CSS = """body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:2em auto;max-width:1300px;
color:#222;padding:0 1em}h1{font-size:1.5em}h2{font-size:1.2em;border-bottom:1px solid #ddd;padding-bottom:.2em;
margin-top:1.6em}img{max-width:100%;border:1px solid #eee}table{border-collapse:collapse;font-size:.85em;margin:.6em 0}
td,th{border:1px solid #ddd;padding:3px 7px;text-align:left;vertical-align:top}table.kv th{background:#f6f6f6}
table.trials tr.best{background:#fff3c4}code{font-size:.92em;word-break:break-all}.note{color:#777}
nav a{margin-right:1em}"""


def _page(title: str, parts: list[tuple[str, str]]) -> str:
    def anchor(t: str) -> str:
        return re.sub(r"[^a-z0-9]+", "-", t.lower()).strip("-")

    nav = "".join(f'<a href="#{anchor(t)}">{html.escape(t)}</a>' for t, _ in parts)
    body = "".join(f'<section id="{anchor(t)}"><h2>{html.escape(t)}</h2>{content}</section>' for t, content in parts)
    return (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>{html.escape(title)}</title>"
            f"<style>{_CSS}</style></head><body><h1>{html.escape(title)}</h1><nav>{nav}</nav>{body}</body></html>\n")
