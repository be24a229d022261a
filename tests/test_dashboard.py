"""archsearch dashboard (issue 20): the JSON API over a folder of runs (read-only, since-cursor, refused paths, a
damaged run among good ones, an empty folder, a port in use, escaping) and, in Debian's headless Chromium driven
by Playwright, the page on a run being written: a new trial appears without a reload, run -> trial shows the
drawing, metrics and commands, and planted markup shows as text and never runs."""
from __future__ import annotations

import hashlib
import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from archsearch.cli import main
from archsearch.dashboard.launch import host_warning
from archsearch.dashboard import DashboardServer
from archsearch.evaluators import EVALUATORS, register_evaluator
from archsearch.evaluators.tabular import TabularEvaluator
from archsearch.space import Architecture
from archsearch.storage import RunStore
from archsearch.study import Budget, Study

CHROMIUM = "/usr/bin/chromium"
EVIL_LABEL = "<img src=x onerror=window.__pwned=1>"
EVIL_OPTION = "<script>window.__pwned=2</script>"
EVIL_ERROR = "<img src=y onerror=window.__pwned=3>boom"


class SlowTabular(TabularEvaluator):
    """The tabular evaluator, slowed so that a search keeps committing trials while a test watches it."""

    name = "test-slow-tabular"

    def __init__(self, space, sleep_s: float = 0.25, **kw):
        super().__init__(space, **kw)
        self.sleep_s = float(sleep_s)

    def config(self):
        return {**super().config(), "sleep_s": self.sleep_s}

    def evaluate(self, arch, seed=0, fidelity=None):
        time.sleep(self.sleep_s)
        return super().evaluate(arch, seed=seed, fidelity=fidelity)


if "test-slow-tabular" not in EVALUATORS:
    register_evaluator("test-slow-tabular")(SlowTabular)


def _evil_run(path: Path) -> None:
    """A run whose strings (a choice label, a strategy option, a trial error) are markup."""
    store = RunStore(path, create=True)
    store.set_meta("config", {"space": {"name": "nb201", "config": {}},
                              "strategy": {"name": "random", "options": {"note": EVIL_OPTION}},
                              "evaluator": {"name": "tabular", "options": {}}, "budget": {"trials": 2}})
    arch = Architecture({EVIL_LABEL: "conv"})
    for n in range(2):
        store.add_trial(n, arch, seed=n, ask_event=n)
    store.finish_trial(0, "ok", 50.0, None, {"val_accuracy": 50.0}, None, 1)
    store.finish_trial(1, "failed", None, None, {}, EVIL_ERROR, 2)
    store.close()


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("dash")
    Study.create(space="nb201", strategy="random", evaluator="tabular", budget=Budget(trials=12), seed=0,
                 run_dir=root / "good", reference=False).run()
    Study.create(space="nb201", strategy="evolution", evaluator="tabular", budget=Budget(trials=12), seed=1,
                 run_dir=root / "good2", reference=False).run()
    _evil_run(root / "evil")
    (root / "broken").mkdir()
    (root / "broken" / "study.db").write_bytes(b"this is not a database" * 100)
    (root / "notes").mkdir()
    outside = tmp_path_factory.mktemp("outside")
    Study.create(space="nb201", strategy="random", evaluator="tabular", budget=Budget(trials=2), seed=0,
                 run_dir=outside / "secret", reference=False).run()
    os.symlink(outside / "secret", root / "link-out")
    return root


@pytest.fixture(scope="module")
def server(folder):
    srv = DashboardServer(folder, "127.0.0.1", 0).start()
    yield srv
    srv.stop()


def _get(srv, path: str, host: str | None = None) -> tuple[int, object]:
    req = urllib.request.Request(srv.url.rstrip("/") + path, headers={"Host": host} if host else {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            body = r.read()
            return r.status, json.loads(body) if r.headers.get_content_type() == "application/json" else body
    except urllib.error.HTTPError as e:
        return e.code, e.read()


def _files(run_dir: Path) -> dict[str, tuple[str, int]]:
    return {p.name: (hashlib.sha256(p.read_bytes()).hexdigest(), p.stat().st_mtime_ns)
            for p in sorted(run_dir.iterdir())}


# ---- the API ------------------------------------------------------------------------------------------------
def test_the_first_page_data_is_built_at_start(folder):
    from archsearch.dashboard.data import RunFolder
    from archsearch.dashboard.server import warm
    f = RunFolder(folder)
    warm(f)  # make_app runs it in a thread; a damaged run or a link out of the folder stops nothing
    for rid in ("good", "good2"):
        c = f.cache(folder / rid)
        assert {"trials-json", "incumbent", "pareto"} <= set(c._derived)
        assert json.loads(c._derived["trials-json"][1])["total"] == 12
    assert f.cache(folder / "broken").error and not f.cache(folder / "broken")._derived


@pytest.mark.timeout(60)
def test_runs_list_shows_good_runs_and_one_line_for_a_damaged_one(server):
    code, doc = _get(server, "/api/runs")
    assert code == 200
    runs = {r["id"]: r for r in doc["runs"]}
    assert {"good", "good2", "evil", "broken", "link-out"} <= set(runs)
    good = runs["good"]
    assert (good["space"], good["strategy"], good["status"], good["n_trials"]) == ("nb201", "random", "done", 12)
    assert good["progress"] == 1.0 and good["best"] is not None
    assert "damaged" in runs["broken"]["error"] and "\n" not in runs["broken"]["error"]


@pytest.mark.timeout(60)
def test_run_trial_and_since_cursor(server):
    code, run = _get(server, "/api/run?run=good")
    assert code == 200 and run["counts"] == {"ok": 12} and run["best"]["trial"] in range(12)
    assert "val_accuracy" in run["table_metrics"]
    code, delta = _get(server, "/api/trials?run=good&since=0")
    assert len(delta["rows"]) == 12 and delta["cursor"] >= 12
    code, again = _get(server, f"/api/trials?run=good&since={delta['cursor']}")
    assert again["rows"] == [] and again["cursor"] == delta["cursor"]
    code, trial = _get(server, "/api/trial?run=good&n=3")
    assert code == 200 and trial["text"].startswith("|") and trial["doc"]["metrics"]["val_accuracy"] > 0
    assert any("archsearch train" in c["command"] for c in trial["commands"])
    code, png = _get(server, "/api/arch.png?run=good&n=3")
    assert code == 200 and png[:8] == b"\x89PNG\r\n\x1a\n"
    code, inc = _get(server, "/api/incumbent?run=good2")
    assert len(inc["trials"]) == 12 and inc["best"] == sorted(inc["best"])
    assert _get(server, "/api/trial?run=good&n=999")[0] == 404


@pytest.mark.timeout(60)
def test_read_only_nothing_in_a_run_changes(server, folder):
    before = {d: _files(folder / d) for d in ("good", "evil", "broken")}
    for path in ("/api/runs", "/api/run?run=good", "/api/trials?run=good", "/api/trial?run=good&n=1",
                 "/api/arch.png?run=good&n=1", "/api/curves?run=good", "/api/epochs?run=good",
                 "/api/pareto?run=good", "/api/run?run=evil", "/api/run?run=broken"):
        _get(server, path)
    # every file's bytes and mtime unchanged, no file added (a -wal/-shm the writer left is the writer's)
    assert {d: _files(folder / d) for d in ("good", "evil", "broken")} == before


@pytest.mark.timeout(60)
def test_paths_outside_the_folder_are_refused(server):
    for rid in ("../x", "/etc", "..", "good/../../x", "link-out"):
        code, _ = _get(server, "/api/run?run=" + urllib.request.quote(rid, safe=""))
        assert code == 403, rid
    assert _get(server, "/api/trial?run=nope&n=0")[0] == 404
    assert _get(server, "/api/run?run=notes")[0] == 404
    assert _get(server, "/static/../server.py")[0] == 404
    assert _get(server, "/api/runs", host="evil.example")[0] == 400  # a DNS-rebinding page gets nothing


@pytest.mark.timeout(60)
def test_run_strings_go_out_as_json_text(server):
    code, run = _get(server, "/api/run?run=evil")
    assert run["config"]["strategy"]["options"]["note"] == EVIL_OPTION
    code, delta = _get(server, "/api/trials?run=evil")
    rows = {r[0]: r for r in delta["rows"]}
    assert EVIL_LABEL in rows[0][7] and rows[1][6] == EVIL_ERROR
    with urllib.request.urlopen(server.url, timeout=10) as r:
        assert "script-src 'self'" in r.headers["Content-Security-Policy"]


@pytest.mark.timeout(60)
def test_empty_folder_says_so(tmp_path):
    srv = DashboardServer(tmp_path, "127.0.0.1", 0).start()
    try:
        code, doc = _get(srv, "/api/runs")
        assert doc["runs"] == [] and "no runs" in doc["message"]
    finally:
        srv.stop()


@pytest.mark.timeout(60)
def test_cli_port_in_use_is_one_line_and_exit_2(tmp_path, capsys):
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen(1)
    try:
        with pytest.raises(SystemExit) as e:
            main(["dashboard", str(tmp_path), "--port", str(sock.getsockname()[1]), "--no-browser"])
    finally:
        sock.close()
    assert e.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: port") and "in use" in err and len(err.splitlines()) == 1


@pytest.mark.timeout(60)
def test_cli_serves_an_empty_folder_and_warns_for_another_host(tmp_path):
    assert host_warning("127.0.0.1") is None and host_warning("localhost") is None
    assert "other machines" in host_warning("0.0.0.0")
    proc = subprocess.Popen([sys.executable, "-m", "archsearch.cli", "dashboard", str(tmp_path), "--port", "0",
                             "--no-browser"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("dashboard: http://127.0.0.1:") and "0 runs" in line
        url = line.split()[1]
        with urllib.request.urlopen(url + "api/runs", timeout=10) as r:
            assert json.loads(r.read())["runs"] == []
    finally:
        proc.terminate()
        _, err = proc.communicate(timeout=10)
    assert err.count("\n") == 1 and "no runs in" in err


# ---- in a real browser --------------------------------------------------------------------------------------
def _playwright():
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install chromium chromium-driver)")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        pytest.skip("playwright is not installed (pip install -e '.[test]')")
    return sync_playwright


@pytest.fixture(scope="module")
def page():
    sync_playwright = _playwright()
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"])
        pg = browser.new_page(viewport={"width": 1280, "height": 900})
        errors: list[str] = []
        pg.on("pageerror", lambda e: errors.append(str(e)))
        pg.errors = errors
        yield pg
        browser.close()


def _go(page, url: str, view: str) -> None:
    page.goto(url)
    page.wait_for_selector(f"main[data-drawn={view}]", timeout=15000)


@pytest.mark.timeout(120)
def test_browser_live_run_then_trial(page, tmp_path):
    run_dir = tmp_path / "live"
    started, failed = threading.Event(), []

    def search() -> None:  # the run store's connection belongs to the thread that made it
        try:
            study = Study.create(space="nb201", strategy="random", evaluator="test-slow-tabular",
                                 evaluator_options={"sleep_s": 0.3}, budget=Budget(trials=14), seed=0,
                                 run_dir=run_dir, reference=False)
            study.run(on_trial=lambda p: started.set() if p.finished >= 2 else None)
        except Exception as e:  # pragma: no cover - reported below
            failed.append(e)
            started.set()

    writer = threading.Thread(target=search, daemon=True)
    srv = DashboardServer(tmp_path, "127.0.0.1", 0).start()
    try:
        writer.start()
        assert started.wait(60) and not failed, failed
        _go(page, srv.url + "#/run/live", "run")
        shown = max(int(n) for n in page.eval_on_selector_all("tr[data-trial]", "rs => rs.map(r => r.dataset.trial)"))
        target = shown + 2  # a trial not committed yet when the page was drawn
        page.evaluate("() => { document.querySelector(\"tr[data-trial='0']\").__kept = true; }")
        page.wait_for_selector(f"tr[data-trial='{target}']:not(.status-running)", timeout=10000)  # shown finished
        seen = time.time()
        # new trials add rows; a row whose trial did not change is the same element (the table is not rebuilt)
        assert page.evaluate("() => document.querySelector(\"tr[data-trial='0']\").__kept === true")
        finished = {r.number: r.finished for r in RunStore(run_dir, read_only=True).trials()}[target]
        # the page polls every second (target: shown within 2 s); the bound leaves room for a busy CI machine
        assert finished is not None and seen - finished < 3.5, f"trial {target} appeared {seen - finished:.2f}s after"
        assert page.evaluate("performance.getEntriesByType('navigation').length") == 1  # no reload
        page.click(f"tr[data-trial='{target}'] td.arch")
        page.wait_for_selector("main[data-drawn=trial]", timeout=15000)
        assert page.eval_on_selector("#arch-img", "i => i.complete && i.naturalWidth > 100")
        assert "val_accuracy" in page.inner_text("#metrics")
        assert "archsearch train" in page.inner_text("#commands")
        assert '"1<-0"' in page.inner_text("#trial-json")
        assert page.inner_text("#arch-text").startswith("|")
        page.click("#run-link")
        page.wait_for_selector("main[data-drawn=run]", timeout=15000)
        assert page.is_visible("#chart-trial canvas") and page.is_visible("#trials")
    finally:
        writer.join(60)
        srv.stop()
    assert not page.errors


@pytest.mark.timeout(60)
def test_browser_a_hidden_page_does_not_poll_and_updates_when_shown(page, server):
    _go(page, server.url + "#/run/good", "run")
    calls: list[float] = []
    listener = lambda r: calls.append(time.time()) if "/api/" in r.url else None  # noqa: E731
    page.on("request", listener)
    try:
        def visibility(hidden: bool) -> None:
            page.evaluate("h => { Object.defineProperty(document, 'hidden', {configurable: true, get: () => h}); "
                          "document.dispatchEvent(new Event('visibilitychange')); }", hidden)
        page.evaluate("() => { document.querySelector('#summary table').__kept = true; }")
        page.wait_for_timeout(1500)  # (Playwright hands events over while it waits)
        assert calls, "a shown page polls"
        # a poll of a run that did not change redraws nothing (the summary is the same element)
        assert page.evaluate("() => document.querySelector('#summary table').__kept === true")
        visibility(True)
        page.wait_for_timeout(600)  # a poll already under way may finish
        hidden_at = time.time()
        page.wait_for_timeout(2500)
        assert not [t for t in calls if t > hidden_at], "a hidden page polled"
        shown_at = time.time()
        visibility(False)
        page.wait_for_timeout(500)
        assert [t for t in calls if t >= shown_at], "a page shown again polls at once"
    finally:
        page.remove_listener("request", listener)
    assert not page.errors


@pytest.mark.timeout(120)
def test_browser_runs_list_compare_and_escaping(page, server):
    _go(page, server.url + "#/", "runs")
    assert "error:" in page.inner_text("tr[data-run=broken]")
    page.check("tr[data-run=good] input[type=checkbox]")
    page.check("tr[data-run=good2] input[type=checkbox]")
    page.wait_for_selector("#compare-trials canvas", timeout=10000)
    assert page.is_visible("#compare-seconds canvas")
    _go(page, server.url + "#/run/evil", "run")
    text = page.inner_text("main")
    assert EVIL_OPTION in text and EVIL_ERROR in text and EVIL_LABEL in text
    page.click("tr[data-trial='1'] td.arch")
    page.wait_for_selector("main[data-drawn=trial]", timeout=15000)
    assert EVIL_ERROR in page.inner_text("#trial-error") and EVIL_LABEL in page.inner_text("#trial-json")
    assert page.evaluate("window.__pwned === undefined") and page.query_selector("img[src=x]") is None
    assert not page.errors
