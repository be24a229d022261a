"""Dashboard benchmarks (issue 20), in Debian's headless Chromium (/usr/bin/chromium) driven by Playwright.

1. ``first-page``: a 10,000-trial NB-201 run (rows from the tabular evaluator, written straight through the run
   store's connection in one transaction) and time from navigation start to the view drawn (the app's
   ``main[data-drawn]`` marker and ``window.__drawnAt``), for the runs list and the run view; the dashboard is a
   separate ``archsearch dashboard`` process.
2. ``overhead``: a search's trials per hour (the tabular evaluator plus a fixed amount of pure-Python work per
   trial, about 15 ms: CPU- and GIL-bound, the worst case for a reader competing with it) with no dashboard, with ``archsearch dashboard`` in its own process and a
   browser polling the run view, and with ``search --dashboard`` (the server in a thread of the search) and a
   browser polling. Conditions alternate within each repetition; trials/hour comes from the run's own trial
   timestamps (first start to last finish), so interpreter start-up is not counted.
3. ``live``: seconds from a trial's commit to its row on the screen of a run view opened before the search began
   (trials of about 0.4 s; the target is 2 s).
4. ``page-cost``: the CPU an open page costs the machine (the browser's processes and the dashboard's server
   process, from /proc) over a fixed span: a blank page, the run view of a finished run, and the run view of a run
   that gains one trial every ``--every`` seconds (written by a thread of the benchmark, not counted).
5. ``--screenshots DIR``: PNGs of each view (runs list with a comparison, one run, one trial, a multi-fidelity
   run's curves, a multi-objective run's Pareto front, a one-shot run's architecture weights).

    python benchmarks/dashboard_bench.py first-page --trials 10000 --repeats 5
    python benchmarks/dashboard_bench.py overhead --trials 600 --repeats 3
    python benchmarks/dashboard_bench.py live --trials 40 --repeats 3
    python benchmarks/dashboard_bench.py page-cost --seconds 20 --repeats 3
    python benchmarks/dashboard_bench.py screenshots --out docs/dashboard
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable

import numpy as np

CHROMIUM = "/usr/bin/chromium"


def write_big_run(run_dir: Path, n: int, seed: int = 0) -> None:
    """An NB-201 random-search run of ``n`` trials with the tabular evaluator's metrics, written directly."""
    from archsearch.evaluators.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.storage import RunStore

    space = get_space("nb201")
    ev = TabularEvaluator(space)
    rng = np.random.default_rng(seed)
    store = RunStore(run_dir, create=True)
    store.set_meta("config", {"space": {"name": "nb201", "config": {}}, "strategy": {"name": "random", "options": {}},
                              "evaluator": {"name": "tabular", "options": {}},
                              "objective": {"kind": "metric", "metric": "val_accuracy", "maximize": True},
                              "budget": {"trials": n, "seconds": None}, "seed": seed})
    t = time.time() - n * 0.5
    rows = []
    for i in range(n):
        arch = space.sample(rng)
        res = ev.evaluate(arch, seed=i)
        ok = res.status == "ok" and i % 97 != 13  # a few failures, as a long run has
        m = res.metrics if ok else {}
        rows.append((i, arch.to_json(), "ok" if ok else "failed", m.get("val_accuracy"), None, json.dumps(m),
                     None if ok else "RuntimeError: out of memory (synthetic)", i, None, t + 0.5 * i,
                     t + 0.5 * i + 0.4, None, 2 * i, 2 * i + 1))
    with store.conn:
        store.conn.execute("BEGIN")
        store.conn.executemany('INSERT INTO trials(number, arch, status, value, "values", metrics, error, seed, '
                               "fidelity, started, finished, worker, ask_event, tell_event) "
                               "VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?)", rows)
    store.set_meta("elapsed_seconds", 0.5 * n)
    store.close()


def start_dashboard(folder: Path) -> tuple[subprocess.Popen, str]:
    proc = subprocess.Popen([sys.executable, "-m", "archsearch.cli", "dashboard", str(folder), "--port", "0",
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    m = re.search(r"(http://\S+)", line)
    if not m:
        proc.kill()
        raise SystemExit(f"dashboard did not start: {line!r}")
    return proc, m.group(1)


def browser():
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    return pw, pw.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])


def drawn_ms(page, url: str, view: str) -> float:
    page.goto(url)
    page.wait_for_selector(f"main[data-drawn={view}]", timeout=60000)
    return float(page.evaluate(f"window.__drawnAt['{view}']"))


def first_page(args) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        t0 = time.time()
        write_big_run(folder / "big", args.trials)
        print(f"wrote a {args.trials}-trial run in {time.time() - t0:.1f} s", flush=True)
        proc, url = start_dashboard(folder)
        pw, b = browser()
        try:
            out: dict[str, list[float]] = {"runs": [], "run": []}
            for i in range(args.repeats):
                for view, h in (("runs", "#/"), ("run", "#/run/big")):
                    ctx = b.new_context(viewport={"width": 1280, "height": 900})
                    page = ctx.new_page()
                    out[view].append(drawn_ms(page, url + h, view))
                    ctx.close()
            for view, ms in out.items():
                print(f"{view:5s} view, {args.trials} trials: first draw {ms[0]:.0f} ms (the server just started), "
                      f"then {statistics.mean(ms[1:]):.0f} ± {statistics.stdev(ms[1:]) if len(ms) > 2 else 0:.0f} "
                      f"ms (n={len(ms) - 1}); all: {', '.join(f'{v:.0f}' for v in ms)}")
        finally:
            b.close()
            pw.stop()
            proc.terminate()


def _rate(run_dir: Path) -> float:
    """Trials per hour from the run's own timestamps (first start to last finish)."""
    conn = sqlite3.connect(f"{(run_dir / 'study.db').resolve().as_uri()}?mode=ro", uri=True)
    n, t0, t1 = conn.execute("SELECT COUNT(*), MIN(started), MAX(finished) FROM trials").fetchone()
    conn.close()
    return (n - 1) / (t1 - t0) * 3600.0


class BusyTabular:
    """The tabular evaluator plus a fixed amount of pure-Python work per trial (``work`` loop iterations, about
    15 ms on this machine): trials of fixed size that slow down when a reader competes for the CPU or the GIL."""

    name = "bench-busy-tabular"

    def __init__(self, space, work: int = 200_000, **kw):
        from archsearch.evaluators.tabular import TabularEvaluator

        self.inner, self.work = TabularEvaluator(space, **kw), int(work)

    def config(self):
        return {"work": self.work}

    def evaluate(self, arch, seed=0, fidelity=None):
        sum(i * i for i in range(self.work))
        return self.inner.evaluate(arch, seed=seed, fidelity=fidelity)


def search_child(args) -> None:
    """(internal) A search with the busy evaluator: creates the run, says 'ready' (and the dashboard's address
    with --dashboard, as ``search --dashboard`` starts it), waits for a line on stdin, then runs."""
    from archsearch.dashboard.launch import beside_search
    from archsearch.evaluators import register_evaluator
    from archsearch.study import Budget, Study

    if args.real:  # real trials: random search of the default space trained on digits, the CLI's executor
        from archsearch.run_config import RunConfig

        study = RunConfig(strategy="random", trials=args.trials, epochs=args.real, seed=0, out=str(args.out),
                          reference=False, executor="auto").build()
        url = beside_search(study.run_dir, port=0) if args.dashboard else ""
        print(f"ready {url}", flush=True)
        sys.stdin.readline()
        study.run()
        return
    register_evaluator(BusyTabular.name)(BusyTabular)
    study = Study.create(space="nb201", strategy="random", evaluator=BusyTabular.name, budget=Budget(trials=args.trials),
                         seed=0, run_dir=args.out, reference=False, evaluator_options={"work": args.work})
    url = beside_search(study.run_dir, port=0) if args.dashboard else ""
    print(f"ready {url}", flush=True)
    sys.stdin.readline()
    study.run()


def _cpu_seconds(match: Callable[[int, str], bool]) -> float:
    """CPU seconds (user + system) used so far by the live processes ``match(pid, cmdline)`` picks (/proc)."""
    tick, total = os.sysconf("SC_CLK_TCK"), 0.0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            cmd = (d / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            if match(int(d.name), cmd):
                fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / tick
        except OSError:  # a process that ended meanwhile
            continue
    return total


USAGE: dict[str, list[float]] = {}  # mode -> cores the dashboard's processes kept busy, per repetition


def _search(run_dir: Path, args, mode: str, b) -> float:
    cmd = [sys.executable, __file__, "_search", "--out", str(run_dir), "--trials", str(args.trials),
           "--work", str(args.work), "--real", str(args.real)] + (["--dashboard"] if mode == "thread" else [])
    proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    url = proc.stdout.readline().split()[1:]
    dash, ctx = None, None
    if mode == "process":
        dash, base = start_dashboard(run_dir.parent)
        url = [base + f"#/run/{run_dir.name}"]
    if mode != "none":
        ctx = b.new_context(viewport={"width": 1280, "height": 900})
        page = ctx.new_page()
        page.goto(url[0])  # the run view polls every second while the search runs
        page.wait_for_selector("main[data-drawn=run]", timeout=60000)
    def cpu() -> float:  # the browser's processes, and the dashboard's server when it is a process of its own
        return _cpu_seconds(lambda pid, cmd: "chromium" in cmd or (dash is not None and pid == dash.pid))
    c0, t0 = cpu(), time.perf_counter()
    proc.communicate("go\n")
    if mode != "none":
        USAGE.setdefault(mode, []).append((cpu() - c0) / (time.perf_counter() - t0))
    if ctx is not None:
        ctx.close()
    if dash is not None:
        dash.terminate()
        dash.wait()
    return _rate(run_dir)


def overhead(args) -> None:
    pw, b = browser()
    rates: dict[str, list[float]] = {"none": [], "process": [], "thread": []}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.repeats):
                for mode in rates:
                    folder = Path(tmp) / f"{mode}-{rep}"
                    folder.mkdir()
                    rates[mode].append(_search(folder / "run", args, mode, b))
                    print(f"rep {rep} {mode:8s}: {rates[mode][-1]:,.0f} trials/hour", flush=True)
    finally:
        b.close()
        pw.stop()
    base = statistics.mean(rates["none"])
    for mode, r in rates.items():
        ratios = [x / y for x, y in zip(r, rates["none"])]
        print(f"{mode:8s}: {statistics.mean(r):,.0f} ± {statistics.stdev(r) if len(r) > 1 else 0:,.0f} trials/hour; "
              f"ratio to no dashboard {statistics.mean(r) / base:.3f} (per repetition: "
              f"{', '.join(f'{x:.3f}' for x in ratios)})"
              + (f"; the dashboard's processes (browser + server process) kept {statistics.mean(USAGE[mode]):.3f} "
                 f"cores busy" if mode in USAGE else ""))


SEEN_SCRIPT = """
window.__seen = {};
new MutationObserver(() => {
  for (const r of document.querySelectorAll('tr[data-trial]:not(.status-running)')) {  // shown as finished
    const n = r.dataset.trial;
    if (!(n in window.__seen)) window.__seen[n] = Date.now() / 1000;
  }
}).observe(document, {childList: true, subtree: true});
"""


def live(args) -> None:
    """Seconds from a trial's commit (its ``finished`` time in the run) to its row on the screen of a run view
    that was open before the search started (an in-page MutationObserver stamps each row when it first appears as finished)."""
    pw, b = browser()
    lat: list[float] = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            for rep in range(args.repeats):
                folder = Path(tmp) / f"live-{rep}"
                folder.mkdir()
                run_dir = folder / "run"
                cmd = [sys.executable, __file__, "_search", "--out", str(run_dir), "--trials", str(args.trials),
                       "--work", str(args.work)]
                proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
                proc.stdout.readline()
                dash, base = start_dashboard(folder)
                ctx = b.new_context(viewport={"width": 1280, "height": 900})
                ctx.add_init_script(SEEN_SCRIPT)
                page = ctx.new_page()
                page.goto(base + "#/run/run")
                page.wait_for_selector("main[data-drawn=run]", timeout=60000)
                proc.communicate("go\n")
                time.sleep(3.0)  # the last trial's poll
                seen = page.evaluate("window.__seen")
                ctx.close()
                dash.terminate()
                dash.wait()
                conn = sqlite3.connect(f"{(run_dir / 'study.db').resolve().as_uri()}?mode=ro", uri=True)
                finished = dict(conn.execute("SELECT number, finished FROM trials").fetchall())
                conn.close()
                got = [seen[str(n)] - f for n, f in finished.items() if str(n) in seen and f is not None]
                missing = len(finished) - len(got)
                lat += got
                print(f"rep {rep}: {len(got)} trials seen, {missing} never seen; latency mean {statistics.mean(got):.2f} s, "
                      f"max {max(got):.2f} s", flush=True)
    finally:
        b.close()
        pw.stop()
    q = np.percentile(lat, [50, 95, 100])
    print(f"all {len(lat)} trials: mean {statistics.mean(lat):.2f} s, median {q[0]:.2f}, p95 {q[1]:.2f}, max {q[2]:.2f}; "
          f"within 2 s: {sum(x <= 2.0 for x in lat)}/{len(lat)}")


def _grow(run_dir: Path, start: int, every: float, stop) -> None:
    """Appends one finished NB-201 trial (tabular metrics) to the run every ``every`` seconds until ``stop`` is set."""
    from archsearch.evaluators.tabular import TabularEvaluator
    from archsearch.spaces import get_space
    from archsearch.storage import RunStore

    space = get_space("nb201")
    ev, rng, store, n = TabularEvaluator(space), np.random.default_rng(1), RunStore(run_dir), start
    try:
        while not stop.wait(every):
            arch = space.sample(rng)
            res = ev.evaluate(arch, seed=n)
            store.add_trial(n, arch, seed=n, ask_event=2 * n)
            store.finish_trial(n, "ok", res.metrics["val_accuracy"], None, res.metrics, None, 2 * n + 1)
            n += 1
    finally:
        store.close()


PARTS = ("TaskDuration", "ScriptDuration", "LayoutDuration", "RecalcStyleDuration")  # Chrome's Performance metrics


def page_cost(args) -> None:
    """Cores kept busy by the browser's processes and the dashboard's server process while one page is open."""
    import threading

    pw, b = browser()
    cost: dict[str, list[float]] = {"blank page": [], "finished run": [], "growing run": []}
    parts: dict[str, dict[str, list[float]]] = {}
    served: dict[str, list[float]] = {}  # of which the dashboard's server process
    try:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp)
            write_big_run(folder / "done", args.trials)
            write_big_run(folder / "grow", args.trials, seed=1)
            dash, base = start_dashboard(folder)
            try:
                for rep in range(args.repeats):
                    for what in cost:
                        ctx = b.new_context(viewport={"width": 1280, "height": 900})
                        page = ctx.new_page()
                        stop, writer = threading.Event(), None
                        if what == "blank page":
                            page.goto("about:blank")
                        else:
                            run = "done" if what == "finished run" else "grow"
                            drawn_ms(page, base + f"#/run/{run}", "run")
                            if run == "grow":
                                writer = threading.Thread(target=_grow, args=(folder / "grow", args.trials + 10**6 * rep,
                                                                               args.every, stop))
                                writer.start()
                        page.wait_for_timeout(1000)

                        def cpu() -> float:
                            return _cpu_seconds(lambda pid, cmd: "chromium" in cmd or pid == dash.pid)

                        def server() -> float:
                            return _cpu_seconds(lambda pid, cmd: pid == dash.pid)
                        cdp = ctx.new_cdp_session(page)
                        cdp.send("Performance.enable")

                        def renderer() -> dict[str, float]:  # the page's main thread: script, layout, style
                            got = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                            return {k: got.get(k, 0.0) for k in PARTS}
                        c0, s0, r0, t0 = cpu(), server(), renderer(), time.perf_counter()
                        page.wait_for_timeout(1000 * args.seconds)  # the page runs (polls) only inside calls
                        span = time.perf_counter() - t0
                        cost[what].append((cpu() - c0) / span)
                        served.setdefault(what, []).append((server() - s0) / span)
                        r1 = renderer()
                        for k in PARTS:
                            parts.setdefault(what, {}).setdefault(k, []).append((r1[k] - r0[k]) / span)
                        stop.set()
                        if writer is not None:
                            writer.join()
                        ctx.close()
                        print(f"rep {rep} {what:13s}: {cost[what][-1]:.3f} cores (server {served[what][-1]:.3f}); page main thread per second: "
                              + ", ".join(f"{k} {1000 * parts[what][k][-1]:.1f} ms" for k in PARTS), flush=True)
            finally:
                dash.terminate()
                dash.wait()
    finally:
        b.close()
        pw.stop()
    for what, c in cost.items():
        print(f"{what:13s}: {statistics.mean(c):.3f} ± {statistics.stdev(c) if len(c) > 1 else 0:.3f} cores "
              f"(per repetition: {', '.join(f'{x:.3f}' for x in c)}; of which the server process "
              f"{statistics.mean(served[what]):.3f}); page main thread, ms per second: "
              + ", ".join(f"{k} {1000 * statistics.mean(parts[what][k]):.1f}" for k in PARTS))


def screenshots(args) -> None:
    from archsearch.objective import parse_objective
    from archsearch.study import Budget, Study

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        for name, strategy, seed in (("nb201-random", "random", 0), ("nb201-evolution", "evolution", 1),
                                     ("nb201-bo", "local", 2)):
            Study.create(space="nb201", strategy=strategy, evaluator="tabular", budget=Budget(trials=120), seed=seed,
                         run_dir=folder / name).run()
        Study.create(space="nb201", strategy="random", evaluator="tabular", budget=Budget(trials=150), seed=3,
                     evaluator_options={"hardware": "pixel3"},
                     objective=parse_objective("pareto:val_accuracy,min:latency_ms"), run_dir=folder / "pareto").run()
        _multifidelity_run(folder / "asha-curves")
        oneshot = _oneshot_run(folder / "darts")
        (folder / "broken").mkdir()
        (folder / "broken" / "study.db").write_bytes(b"not a database" * 64)
        proc, url = start_dashboard(folder)
        pw, b = browser()
        try:
            page = b.new_page(viewport={"width": 1280, "height": 1000})
            drawn_ms(page, url + "#/", "runs")
            for rid in ("nb201-random", "nb201-evolution", "nb201-bo"):
                page.check(f"tr[data-run='{rid}'] input[type=checkbox]")
            page.wait_for_selector("#compare-seconds canvas")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "runs.png"), full_page=True)
            drawn_ms(page, url + "#/run/nb201-evolution", "run")
            page.wait_for_timeout(300)
            page.screenshot(path=str(out / "run.png"), full_page=False)
            page.click("#best-link")
            page.wait_for_selector("main[data-drawn=trial]")
            page.screenshot(path=str(out / "trial.png"), full_page=False)
            drawn_ms(page, url + "#/run/pareto", "run")
            page.wait_for_selector("#chart-pareto canvas")
            page.locator("#pareto").screenshot(path=str(out / "pareto.png"))
            drawn_ms(page, url + "#/run/asha-curves", "run")
            page.wait_for_selector("#chart-curves canvas")
            page.locator("#curves").screenshot(path=str(out / "curves.png"))
            if oneshot:
                drawn_ms(page, url + "#/run/darts", "run")
                page.wait_for_selector("#alphas canvas")
                page.locator("#alphas").screenshot(path=str(out / "alphas.png"))
        finally:
            b.close()
            pw.stop()
            proc.terminate()
    for p in sorted(out.glob("*.png")):
        print(f"{p}: {p.stat().st_size // 1024} KB")


def _multifidelity_run(run_dir: Path) -> None:
    """A Hyperband-like run written straight to the store (curves and rungs from a simple saturating model),
    so the learning-curve view has data without minutes of training."""
    from archsearch.spaces import get_space
    from archsearch.storage import RunStore

    space, rng = get_space("nb201"), np.random.default_rng(0)
    store = RunStore(run_dir, create=True)
    store.set_meta("config", {"space": {"name": "nb201", "config": {}}, "strategy": {"name": "random", "options": {}},
                              "evaluator": {"name": "train", "options": {"epochs": 9}},
                              "budget": {"trials": 27, "seconds": None}, "scheduler": {"name": "asha"}})
    finals = {}
    for n in range(27):
        store.add_trial(n, space.sample(rng), seed=n, ask_event=n, fidelity=1)
        top, rate = rng.uniform(55, 92), rng.uniform(0.3, 1.2)
        finals[n] = (top, rate)
    for fid, keep in ((1, 27), (3, 9), (9, 3)):
        ranked = sorted(finals, key=lambda t: -finals[t][0])[:keep]
        for n in sorted(ranked):
            top, rate = finals[n]
            curve = [{"epoch": e, "val_accuracy": top * (1 - np.exp(-rate * e)) + rng.normal(0, 0.8)}
                     for e in range(1, fid + 1)]
            store.finish_trial(n, "ok", curve[-1]["val_accuracy"], None, {"val_accuracy": curve[-1]["val_accuracy"]},
                               None, n, curve=curve, rung=(float(fid), None), fidelity=float(fid))
    store.close()


def _oneshot_run(run_dir: Path) -> bool:
    """A small DARTS search on NB-201 over the embedded digits (a few seconds), for the α view."""
    try:
        from archsearch.oneshot_study import OneShotStudy

        study = OneShotStudy.create(space="nb201", strategy="darts", epochs=6, seed=0,
                                    space_config={"channels": 4, "cells_per_stage": 1},
                                    strategy_options={"batch_size": 32, "bn_batches": 1},
                                    evaluator_options={"epochs": 1, "batch_size": 32}, run_dir=run_dir)
        study.run()
        return True
    except Exception as e:  # pragma: no cover - a screenshot less, said plainly
        print(f"one-shot run skipped: {type(e).__name__}: {e}")
        return False


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="what", required=True)
    fp = sub.add_parser("first-page")
    fp.add_argument("--trials", type=int, default=10000)
    fp.add_argument("--repeats", type=int, default=5)
    ov = sub.add_parser("overhead")
    ov.add_argument("--trials", type=int, default=600)
    ov.add_argument("--repeats", type=int, default=3)
    ov.add_argument("--work", type=int, default=200_000, help="pure-Python loop iterations per trial")
    ov.add_argument("--real", type=int, default=0, metavar="EPOCHS",
                    help="real trials instead: random search of the default space on digits, EPOCHS epochs a trial, "
                         "the CLI's executor (one 1-thread worker per core)")
    lv = sub.add_parser("live")
    lv.add_argument("--trials", type=int, default=40)
    lv.add_argument("--repeats", type=int, default=3)
    lv.add_argument("--work", type=int, default=5_000_000, help="pure-Python loop iterations per trial")
    pc = sub.add_parser("page-cost")
    pc.add_argument("--trials", type=int, default=1000, help="trials in each run before the page opens")
    pc.add_argument("--seconds", type=float, default=20.0)
    pc.add_argument("--repeats", type=int, default=3)
    pc.add_argument("--every", type=float, default=1.0, help="seconds between the growing run's new trials")
    ch = sub.add_parser("_search")
    ch.add_argument("--out", type=Path, required=True)
    ch.add_argument("--trials", type=int, required=True)
    ch.add_argument("--work", type=int, default=200_000)
    ch.add_argument("--real", type=int, default=0)
    ch.add_argument("--dashboard", action="store_true")
    sc = sub.add_parser("screenshots")
    sc.add_argument("--out", default="docs/dashboard")
    args = ap.parse_args()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    {"first-page": first_page, "overhead": overhead, "screenshots": screenshots, "live": live, "page-cost": page_cost,
     "_search": search_child}[args.what](args)


if __name__ == "__main__":
    main()
