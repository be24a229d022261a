// archsearch dashboard: one run (summary, incumbent, every trial, trials table, curves, Pareto front, α).
"use strict";

// The trials table: sortable by any column, filtered by status, 100 rows a page; a row opens its trial.
AS.TrialsTable = class {
  constructor(box, runId) {
    this.runId = runId; this.rows = []; this.sortKey = "number"; this.desc = true; this.status = ""; this.page = 0;
    this.metricKeys = []; this.shown = []; this.rowCache = new Map(); this.headKey = ""; this.head = null;
    this.filter = AS.el("select", {id: "status-filter", onchange: () => { this.status = this.filter.value; this.page = 0; this.render(); }});
    this.info = AS.el("span", {class: "note"});
    this.prev = AS.el("button", {text: "‹ newer", onclick: () => { this.page--; this.render(); }});
    this.next = AS.el("button", {text: "older ›", onclick: () => { this.page++; this.render(); }});
    this.table = AS.el("table", {class: "trials", id: "trials"});
    box.append(AS.el("div", {class: "controls"}, "status ", this.filter, " ", this.prev, this.next, " ", this.info),
               this.table);
  }
  setData(rows, metricKeys, tableMetrics) {
    this.rows = rows; this.metricKeys = metricKeys; this.shown = tableMetrics;
    const statuses = [...new Set(rows.map((r) => r.status))].sort();
    const have = [...this.filter.options].map((o) => o.value).join("|");
    if (have !== ["", ...statuses].join("|")) {
      this.filter.replaceChildren(AS.el("option", {value: "", text: "all"}),
        ...statuses.map((s) => AS.el("option", {value: s, text: s})));
      this.filter.value = this.status;
    }
    this.render();
  }
  value(r, key) {
    if (key === "seconds") return r.finished === null ? null : r.finished - r.started;
    if (key.startsWith("m:")) { const i = this.metricKeys.indexOf(key.slice(2)); return i < 0 ? null : r.metrics[i]; }
    return r[key];
  }
  render() {
    const cols = [["number", "#"], ["status", "status"], ["value", "value"], ["fidelity", "fidelity"],
      ...this.shown.map((k) => ["m:" + k, k]), ["seconds", "seconds"], ["text", "architecture"], ["error", "error"]];
    const hasFid = this.rows.some((r) => r.fidelity !== null);
    const use = cols.filter(([k]) => k !== "fidelity" || hasFid);
    let rows = this.status ? this.rows.filter((r) => r.status === this.status) : this.rows.slice();
    const k = this.sortKey, sgn = this.desc ? -1 : 1;
    rows.sort((a, b) => {
      const x = this.value(a, k), y = this.value(b, k);
      if (x === y) return a.number - b.number;
      if (x === null || x === undefined) return 1;
      if (y === null || y === undefined) return -1;
      return (x < y ? -1 : 1) * sgn;
    });
    const pages = Math.max(1, Math.ceil(rows.length / 100));
    this.page = Math.min(Math.max(0, this.page), pages - 1);
    const slice = rows.slice(this.page * 100, this.page * 100 + 100);
    this.prev.disabled = this.page === 0; this.next.disabled = this.page >= pages - 1;
    AS.setText(this.info, `${rows.length} trials, page ${this.page + 1} of ${pages}`);
    const headKey = JSON.stringify([use, k, this.desc]);
    if (headKey !== this.headKey) {
      this.headKey = headKey;
      this.head = AS.el("tr", null, use.map(([key, label]) => AS.el("th", {class: "sortable" + (key === k ? (this.desc ? " desc" : " asc") : ""),
        "data-key": key, text: label, onclick: () => { if (this.sortKey === key) this.desc = !this.desc;
          else { this.sortKey = key; this.desc = key !== "text" && key !== "status"; } this.render(); }})));
    }
    // A row is built once per content (its cells' values and the columns); a poll that changes nothing on this
    // page touches no row, and a new trial adds one.
    const cache = new Map();
    const body = slice.map((r) => {
      const cells = use.map(([key]) => this.value(r, key));
      const sig = JSON.stringify([r.status, cells]) + headKey;
      const had = this.rowCache.get(r.number);
      const tr = had && had.sig === sig ? had.tr : this.row(r, use, cells);
      cache.set(r.number, {sig, tr});
      return tr;
    });
    this.rowCache = cache;
    AS.reconcile(this.table, [this.head, ...body]);
  }
  row(r, use, cells) {
    return AS.el("tr", {"data-trial": r.number, class: "status-" + r.status,
      onclick: (e) => { if (e.target.tagName !== "A") location.hash = AS.trialHash(this.runId, r.number); }},
      use.map(([key], i) => {
        const v = cells[i];
        if (key === "number") return AS.el("td", {class: "num"}, AS.el("a", {href: AS.trialHash(this.runId, r.number), text: v}));
        if (key === "text") return AS.el("td", {class: "arch"}, AS.el("code", {text: v}));
        if (key === "error") return AS.el("td", {class: "err", text: v || ""});
        if (key === "status") return AS.el("td", {text: v});
        return AS.el("td", {class: "num", text: AS.fmt(v)});
      }));
  }
};

AS.runView = function (main, runId) {
  const title = AS.el("h2", null, AS.el("a", {href: "#/", text: "runs"}), " / ", AS.el("span", {id: "run-name", text: runId}));
  const summary = AS.el("div", {id: "summary"});
  const charts = AS.el("div", {id: "charts"});
  main.append(title, summary, charts);
  const secProgress = AS.section(charts, "Incumbent and every trial", "progress");
  const boxTrial = AS.el("div", {class: "chart", id: "chart-trial"});
  const boxTime = AS.el("div", {class: "chart", id: "chart-time"});
  secProgress.append(boxTrial, boxTime);
  const secCost = AS.section(charts, "Every trial against a metric", "versus");
  const metricPick = AS.el("select", {id: "metric-pick"});
  const boxCost = AS.el("div", {class: "chart", id: "chart-metric"});
  secCost.append(AS.el("div", {class: "controls"}, "x axis ", metricPick), boxCost);
  const extra = AS.el("div", {id: "extra"});
  charts.after(extra);
  const secTable = AS.section(main, "Trials", "trials-section");
  const table = new AS.TrialsTable(secTable, runId);
  const trials = new Map();
  let cursor = 0, metricKeys = [], info = null, plots = {}, extrasKey = "", dirty = true, summaryKey = "";
  const elapsed = AS.el("span", {id: "elapsed"});

  function trialRows() {
    return [...trials.values()].sort((a, b) => a.number - b.number);
  }
  function fromRow(fields, a) { const r = {}; fields.forEach((f, i) => { r[f] = a[i]; }); return r; }

  function drawSummary() {
    AS.setText(elapsed, `${AS.fmt(info.elapsed_seconds, 0)} s`);
    const key = JSON.stringify(Object.assign({}, info, {elapsed_seconds: null}));
    if (key === summaryKey) return;  // only the clock moved
    summaryKey = key;
    const c = info.config || {}, st = c.strategy || {}, sp = c.space || {};
    const counts = Object.entries(info.counts || {}).map(([k, v]) => `${k} ${v}`).join(", ") || "none";
    const b = info.best;
    const bestCell = b ? AS.el("span", null, `${AS.fmt(b.value)} — trial `,
      AS.el("a", {href: AS.trialHash(runId, b.trial), id: "best-link", text: "#" + b.trial}), " ", AS.el("code", {text: b.text})) : "–";
    const rows = [["space", `${sp.name || "?"} ${JSON.stringify(sp.config || {})}`],
      ["strategy", `${st.name || "?"} ${JSON.stringify(st.options || {})}`],
      ["evaluator", (c.evaluator || {}).name], ["objective", JSON.stringify(c.objective || {})],
      ["budget", info.budget], ["status", info.status + (info.progress === null ? "" : ` (${Math.round(100 * info.progress)}%)`)],
      ["trials", counts], ["elapsed", elapsed], ["best so far", bestCell]];
    const ref = info.reference;
    if (ref) {
      const dv = info.vs_reference.val_accuracy, dt = info.vs_reference.test_accuracy;
      const txt = ref.status !== "ok" ? `reference ${ref.text}: ${ref.status} (${ref.error || "no result"})` :
        `best found vs reference: ${dv === null ? "–" : (dv > 0 ? "+" : "") + dv.toFixed(2)} points val` +
        (dt === null ? "" : `, ${(dt > 0 ? "+" : "") + dt.toFixed(2)} test`) +
        ` (reference val ${AS.fmt((ref.metrics || {}).val_accuracy)}%)` + (dv !== null && dv <= 0 ? " — the search did not beat it" : "");
      rows.push(["found vs reference", AS.el("span", {id: "versus-reference", text: txt})]);
    }
    summary.replaceChildren(AS.kv(rows));
  }

  function drawProgress(rows) {
    const done = rows.filter((r) => r.status !== "running");
    let best = null;
    const xs = [], ys = [], bs = [];
    for (const r of done) {
      if (r.status === "ok" && r.value !== null && (best === null || r.value > best)) best = r.value;
      xs.push(r.number); ys.push(r.status === "ok" ? r.value : null); bs.push(best);
    }
    const t0 = rows.length ? Math.min(...rows.map((r) => r.started)) : 0;
    const byTime = done.filter((r) => r.finished !== null).sort((a, b) => a.finished - b.finished);
    let b2 = null;
    const tx = [], ty = [], tb = [];
    for (const r of byTime) {
      if (r.status === "ok" && r.value !== null && (b2 === null || r.value > b2)) b2 = r.value;
      tx.push(r.finished - t0); ty.push(r.status === "ok" ? r.value : null); tb.push(b2);
    }
    const series = [{label: "objective", kind: "points", colour: "#8da0cb"}, {label: "best so far", kind: "step", colour: "#d62728"}];
    update("trial", boxTrial, {title: "objective by trial number", xLabel: "trial", yLabel: "objective", series}, [xs, ys, bs]);
    update("time", boxTime, {title: "objective by seconds since the first trial", xLabel: "seconds", yLabel: "objective", series}, [tx, ty, tb]);
  }

  function drawVersus(rows) {
    const keys = metricKeys.filter((k) => k !== "val_accuracy" || info.goals);
    const have = [...metricPick.options].map((o) => o.value).join("|");
    if (have !== keys.join("|")) {
      const was = metricPick.value;
      metricPick.replaceChildren(...keys.map((k) => AS.el("option", {value: k, text: k})));
      const pref = ["params", "flops", "latency_ms"].find((k) => keys.includes(k)) || keys[0];
      metricPick.value = keys.includes(was) ? was : pref;
      metricPick.onchange = () => { if (plots.metric) { plots.metric.destroy(); delete plots.metric; } drawVersus(trialRows()); };
    }
    const k = metricPick.value;
    secCost.hidden = !k;
    if (!k) return;
    const i = metricKeys.indexOf(k);
    const pts = rows.filter((r) => r.status === "ok" && r.value !== null && r.metrics[i] !== null && r.metrics[i] !== undefined)
      .map((r) => [r.metrics[i], r.value]).sort((a, b) => a[0] - b[0]);
    update("metric", boxCost, {title: `objective against ${k}`, xLabel: k, yLabel: "objective",
      series: [{label: "objective", kind: "points", colour: "#4c72b0"}]}, [pts.map((p) => p[0]), pts.map((p) => p[1])]);
  }

  function update(name, box, opts, data) {
    if (plots[name]) plots[name].setData(data);
    else plots[name] = AS.chart(box, Object.assign({data}, opts));
  }

  async function drawExtras() {
    const key = JSON.stringify([info.has_curves, info.n_rungs, info.goals, info.has_epochs, info.n_trials,
      (info.counts || {}).ok]);
    if (key === extrasKey) return;
    extrasKey = key;
    for (const n of ["curves", "pareto", "alphas", "epochs"]) if (plots[n]) { [].concat(plots[n]).forEach((p) => p.destroy()); delete plots[n]; }
    const parts = [];
    if (info.has_curves) parts.push(await AS.curvesSection(runId));
    if (info.goals) parts.push(await AS.paretoSection(runId));
    if (info.has_epochs) parts.push(...await AS.epochsSection(runId));
    extra.replaceChildren(...parts.map((p) => p.node));
    parts.forEach((p) => p.draw && (plots[p.name] = p.draw()));
  }

  const stop = AS.poll(async () => {
    const [head, delta] = await Promise.all([AS.api("/api/run", {run: runId}), AS.api("/api/trials", {run: runId, since: cursor})]);
    info = head;
    if (info.error) { summaryKey = ""; summary.replaceChildren(AS.el("p", {class: "err", text: "error: " + info.error})); AS.drawn("run"); return; }
    AS.setText(document.getElementById("run-name"), info.name);
    metricKeys = delta.metric_keys;
    for (const a of delta.rows) { const r = fromRow(delta.fields, a); trials.set(r.number, r); }
    if (delta.rows.length || dirty) {
      const rows = trialRows();
      drawSummary(); drawProgress(rows); drawVersus(rows);
      table.setData(rows, metricKeys, info.table_metrics);
      dirty = false;
    } else drawSummary();
    cursor = delta.cursor;
    await drawExtras();
    AS.drawn("run");
  });
  return {stop: () => { stop(); Object.values(plots).forEach((p) => [].concat(p).forEach((q) => q.destroy())); }};
};

// Learning curves of a multi-fidelity run (val accuracy per epoch), and its rungs.
AS.curvesSection = async function (runId) {
  const doc = await AS.api("/api/curves", {run: runId});
  const node = AS.el("section", {id: "curves"}, AS.el("h3", {text: "Learning curves and rungs"}));
  const box = AS.el("div", {class: "chart", id: "chart-curves"});
  const ids = Object.keys(doc.curves);
  node.append(AS.el("p", {class: "note", text: `validation accuracy after every epoch; ${ids.length} of ${doc.n_trials} trials drawn (the longest trained)`}), box);
  if (doc.rungs.length) {
    node.append(AS.el("table", {class: "kv", id: "rungs"}, AS.el("tr", null, ["rung (epochs)", "trials", "best"].map((h) => AS.el("th", {text: h}))),
      doc.rungs.map((r) => AS.el("tr", null, AS.el("td", {text: AS.fmt(r.fidelity)}), AS.el("td", {text: r.trials}), AS.el("td", {text: AS.fmt(r.best)})))));
  }
  const draw = () => {
    if (!ids.length) return null;
    const data = uPlot.join(ids.map((t) => [doc.curves[t].map((p) => p[0]), doc.curves[t].map((p) => p[1])]));
    return AS.chart(box, {title: "learning curves", xLabel: "epoch", yLabel: "val accuracy", data,
      series: ids.map((t) => ({label: "#" + t, kind: "line", width: 1}))});
  };
  return {node, draw, name: "curves"};
};

// The Pareto front of a multi-objective run: every trial, the front, infeasible trials.
AS.paretoSection = async function (runId) {
  const doc = await AS.api("/api/pareto", {run: runId});
  const node = AS.el("section", {id: "pareto"}, AS.el("h3", {text: "Pareto front"}));
  if (doc.error) { node.append(AS.el("p", {class: "note", text: doc.error})); return {node}; }
  const box = AS.el("div", {class: "chart", id: "chart-pareto"});
  node.append(box, AS.el("table", {class: "trials"}, AS.el("tr", null, ["#", doc.x_metric, doc.y_metric, "architecture"].map((h) => AS.el("th", {text: h}))),
    doc.front.map((f) => AS.el("tr", null, AS.el("td", null, AS.el("a", {href: AS.trialHash(runId, f[0]), text: f[0]})),
      AS.el("td", {text: AS.fmt(f[1])}), AS.el("td", {text: AS.fmt(f[2])}), AS.el("td", null, AS.el("code", {text: f[3]}))))));
  const draw = () => {
    const pts = doc.points.slice().sort((a, b) => a[1] - b[1]), fr = doc.front.slice().sort((a, b) => a[1] - b[1]);
    const data = uPlot.join([[pts.map((p) => p[1]), pts.map((p) => p[2])], [fr.map((p) => p[1]), fr.map((p) => p[2])]]);
    return AS.chart(box, {title: `${doc.y} against ${doc.x}`, xLabel: doc.x_metric, yLabel: doc.y_metric, data,
      series: [{label: "trials", kind: "points", colour: "#999"}, {label: "front", kind: "points", colour: "#d62728"}]});
  };
  return {node, draw, name: "pareto"};
};

// A one-shot run: supernet metrics per epoch and the architecture weights (softmax α) of each decision.
AS.epochsSection = async function (runId) {
  const doc = await AS.api("/api/epochs", {run: runId});
  const ep = doc.epochs.map((e) => e.epoch);
  const mkeys = [...new Set(doc.epochs.flatMap((e) => Object.keys(e.metrics)))].filter((k) => /acc|loss/.test(k));
  const node = AS.el("section", {id: "epochs"}, AS.el("h3", {text: "Supernet metrics over epochs"}));
  const box = AS.el("div", {class: "chart", id: "chart-epochs"});
  node.append(box);
  const out = [{node, name: "epochs", draw: () => AS.chart(box, {title: "one-shot search", xLabel: "epoch", yLabel: "metric",
    data: [ep, ...mkeys.map((k) => doc.epochs.map((e) => e.metrics[k] === undefined ? null : e.metrics[k]))],
    series: mkeys.map((k) => ({label: k, kind: "line"}))})}];
  if (doc.labels.length) {
    const anode = AS.el("section", {id: "alphas"}, AS.el("h3", {text: "Architecture weights over epochs"}),
      AS.el("p", {class: "note", text: "softmax(α) of each decision's candidates after every search epoch"}));
    const grid = AS.el("div", {class: "grid"});
    anode.append(grid);
    const labels = doc.labels.slice(0, 24);
    const boxes = labels.map((lab) => { const b = AS.el("div", {class: "chart small"}); grid.append(b); return b; });
    out.push({node: anode, name: "alphas", draw: () => labels.map((lab, i) => {
      const n = Math.max(...doc.epochs.map((e) => ((e.alphas || {})[lab] || []).length));
      const names = doc.names[lab] || [];
      return AS.chart(boxes[i], {title: lab, xLabel: "epoch", yLabel: "weight", height: 190,
        data: [ep, ...[...Array(n).keys()].map((j) => doc.epochs.map((e) => ((e.alphas || {})[lab] || [])[j] ?? null))],
        series: [...Array(n).keys()].map((j) => ({label: names[j] || `op ${j}`, kind: "line"}))});
    })});
  }
  return out;
};
