// archsearch dashboard: shared helpers and the runs list. Every string from a run is put on the page with
// textContent (through AS.el), never as HTML.
"use strict";
const AS = (window.AS = {});
AS.POLL_MS = 1000;
AS.COLOURS = ["#4c72b0", "#dd8452", "#55a868", "#c44e52", "#8172b2", "#937860", "#da8bc3", "#8c8c8c",
              "#ccb974", "#64b5cd"];

// el("td", {class: "x", onclick: f}, "text", child ...): a DOM element; strings become text nodes.
AS.el = function (tag, props, ...kids) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(props || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = String(v);
    else if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
    else e.setAttribute(k, String(v));
  }
  for (const kid of kids.flat()) {
    if (kid === null || kid === undefined || kid === false) continue;
    e.appendChild(kid instanceof Node ? kid : document.createTextNode(String(kid)));
  }
  return e;
};

// Puts nodes as parent's children in this order with the fewest DOM moves: a node already in place stays (a
// new trial at the top of a table inserts one row and removes one, instead of rebuilding a hundred).
AS.reconcile = function (parent, nodes) {
  let cur = parent.firstChild;
  for (const n of nodes) {
    if (n === cur) { cur = cur.nextSibling; continue; }
    parent.insertBefore(n, cur);
  }
  while (cur) { const next = cur.nextSibling; parent.removeChild(cur); cur = next; }
};

// Sets an element's text only when it changes (an unchanged page does no layout at a poll).
AS.setText = function (e, text) { if (e.textContent !== text) e.textContent = text; };

AS.api = async function (path, params) {
  const url = new URL(path, location.origin);
  for (const [k, v] of Object.entries(params || {})) url.searchParams.set(k, v);
  const r = await fetch(url, {cache: "no-store"});
  const body = await r.json();
  if (!r.ok) throw new Error(body.error || `HTTP ${r.status}`);
  return body;
};

AS.fmt = function (v, digits) {
  if (v === null || v === undefined || (typeof v === "number" && !isFinite(v))) return "–";
  if (typeof v !== "number") return String(v);
  const a = Math.abs(v);
  if (a >= 1e9) return (v / 1e9).toFixed(2) + "G";
  if (a >= 1e6) return (v / 1e6).toFixed(2) + "M";
  if (a >= 1e4) return (v / 1e3).toFixed(1) + "k";
  if (Number.isInteger(v)) return String(v);
  return v.toFixed(digits === undefined ? (a >= 100 ? 1 : a >= 1 ? 2 : 4) : digits);
};

AS.runHash = (id) => `#/run/${encodeURIComponent(id)}`;
AS.trialHash = (id, n) => `#/run/${encodeURIComponent(id)}/trial/${n}`;

// Marks a view as drawn (tests and the benchmark wait for it): main[data-drawn=VIEW], window.__drawnAt[VIEW].
AS.drawn = function (view) {
  const main = document.getElementById("main");
  if (main.dataset.drawn === view) return;
  main.dataset.drawn = view;
  (window.__drawnAt = window.__drawnAt || {})[view] = performance.now();
};

AS.setLive = function (ok, err) {
  const live = document.getElementById("live");
  if (live.className !== (ok ? "ok" : "down")) live.className = ok ? "ok" : "down";
  AS.setText(live, ok ? "live" : "not updating: " + (err && err.message ? err.message : "no answer"));
};

// Calls fn now and every ms after it finishes; returns stop(). A page nobody sees (a background tab, a minimised
// window) does not poll: it costs the machine nothing until it is shown again, and then it updates at once.
AS.poll = function (fn, ms) {
  let stopped = false, timer = null, busy = false;
  const tick = async () => {
    clearTimeout(timer);
    if (stopped || busy) return;
    if (document.hidden) { timer = null; return; }
    busy = true;
    try { await fn(); AS.setLive(true); } catch (e) { if (!stopped) AS.setLive(false, e); }
    busy = false;
    if (!stopped && !document.hidden) timer = setTimeout(tick, ms || AS.POLL_MS);
  };
  const shown = () => { if (!document.hidden) tick(); };
  document.addEventListener("visibilitychange", shown);
  tick();
  return () => { stopped = true; clearTimeout(timer); document.removeEventListener("visibilitychange", shown); };
};

AS.section = function (parent, title, id) {
  const s = AS.el("section", {id: id}, AS.el("h3", {text: title}));
  parent.appendChild(s);
  return s;
};

AS.kv = function (rows) {
  return AS.el("table", {class: "kv"}, rows.filter((r) => r).map(([k, v]) =>
    AS.el("tr", null, AS.el("th", {text: k}), AS.el("td", null, v instanceof Node ? v : Number.isInteger(v) ? String(v) : AS.fmt(v)))));
};

// A uPlot chart that keeps its size to its box. series: [{label, colour, kind: "points"|"line"|"step"|"dash"}]
AS.chart = function (box, {title, xLabel, yLabel, series, data, height, xLog}) {
  const stepped = uPlot.paths.stepped ? uPlot.paths.stepped({align: 1}) : undefined;
  const opts = {
    title: title, width: Math.max(320, box.clientWidth || 600), height: height || 260,
    scales: {x: {time: false, distr: xLog ? 3 : 1}},
    axes: [{label: xLabel}, {label: yLabel}],
    legend: {live: true, show: series.length <= 10},
    series: [{label: xLabel}].concat(series.map((s, i) => {
      const c = s.colour || AS.COLOURS[i % AS.COLOURS.length];
      const base = {label: s.label, stroke: c, width: s.width || 1.5, spanGaps: true};
      if (s.kind === "points") return Object.assign(base, {paths: () => null, points: {show: true, size: 5, fill: c}});
      if (s.kind === "step") return Object.assign(base, {paths: stepped, width: 2, points: {show: false}});
      if (s.kind === "dash") return Object.assign(base, {dash: [6, 4], points: {show: false}});
      return Object.assign(base, {points: {show: false}});
    })),
  };
  const u = new uPlot(opts, data, box);
  return u;
};

// ---- the runs list ---------------------------------------------------------------------------------------
AS.runsView = function (main) {
  const head = AS.el("h2", {text: "Runs"});
  const message = AS.el("p", {class: "message"});
  const table = AS.el("table", {class: "runs"});
  const compare = AS.el("section", {id: "compare"});
  main.append(head, message, table, compare);
  const selected = new Set();
  let last = "", charts = [], compareKey = "";

  const header = AS.el("tr", null, ["", "run", "space", "strategy", "evaluator", "budget", "status", "progress",
    "trials", "best"].map((h) => AS.el("th", {text: h})));

  function row(r) {
    if (r.error) {
      return AS.el("tr", {class: "error", "data-run": r.id}, AS.el("td"), AS.el("td", null, r.name),
        AS.el("td", {colspan: 8, class: "err", text: "error: " + r.error}));
    }
    const box = AS.el("input", {type: "checkbox", title: "compare", checked: selected.has(r.id) ? "checked" : null,
      onchange: (e) => { e.target.checked ? selected.add(r.id) : selected.delete(r.id); drawCompare(true); }});
    const prog = r.progress === null ? "–" : AS.el("progress", {max: 1, value: r.progress,
      title: `${Math.round(100 * r.progress)}%`});
    return AS.el("tr", {"data-run": r.id}, AS.el("td", null, box),
      AS.el("td", null, AS.el("a", {href: AS.runHash(r.id), class: "runlink", text: r.name})),
      AS.el("td", {text: r.space}), AS.el("td", {text: r.strategy}), AS.el("td", {text: r.evaluator}),
      AS.el("td", {text: r.budget}), AS.el("td", {class: "status " + r.status, text: r.status}),
      AS.el("td", null, prog), AS.el("td", {class: "num", text: r.n_trials}),
      AS.el("td", {class: "num"}, r.best === null ? "–" : `${AS.fmt(r.best)} (#${r.best_trial})`));
  }

  async function drawCompare(force) {
    const ids = [...selected];
    if (ids.length < 2) { compare.replaceChildren(ids.length ? AS.el("p", {class: "note",
      text: "pick one more run to compare"}) : ""); charts = []; compareKey = ""; return; }
    const curves = await Promise.all(ids.map((id) => AS.api("/api/incumbent", {run: id})));
    const key = JSON.stringify([ids, curves.map((c) => c.best.length)]);
    if (!force && key === compareKey) return;
    compareKey = key;
    compare.replaceChildren(AS.el("h3", {text: `Incumbent over time: ${ids.length} runs`}));
    const byTrial = AS.el("div", {class: "chart", id: "compare-trials"});
    const bySec = AS.el("div", {class: "chart", id: "compare-seconds"});
    compare.append(byTrial, bySec);
    const series = ids.map((id) => ({label: id, kind: "step"}));
    const join = (xs) => uPlot.join(curves.map((c) => [c[xs], c.best]));
    charts = [AS.chart(byTrial, {title: "best so far by finished trials", xLabel: "trials", yLabel: "best",
                                 series, data: join("trials")}),
              AS.chart(bySec, {title: "best so far by seconds", xLabel: "seconds", yLabel: "best", series,
                               data: join("seconds")})];
  }

  const stop = AS.poll(async () => {
    const doc = await AS.api("/api/runs");
    AS.setText(document.getElementById("root"), doc.root);
    const text = JSON.stringify(doc.runs);
    if (text !== last) {
      last = text;
      message.textContent = doc.message || `${doc.runs.length} run${doc.runs.length === 1 ? "" : "s"}; tick two ` +
        "or more to compare them.";
      table.replaceChildren(header, ...doc.runs.map(row));
      await drawCompare(false);
    }
    AS.drawn("runs");
  });
  return {stop: () => { stop(); charts.forEach((c) => c.destroy()); }};
};
