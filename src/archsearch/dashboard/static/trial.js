// archsearch dashboard: one trial (its architecture drawn, metrics, learning curve, JSON, commands).
"use strict";
AS.trialView = function (main, runId, number) {
  const title = AS.el("h2", null, AS.el("a", {href: "#/", text: "runs"}), " / ",
    AS.el("a", {href: AS.runHash(runId), id: "run-link", text: runId}), " / ", `trial ${number}`);
  const body = AS.el("div", {id: "trial"});
  main.append(title, body);
  let lastStatus = null, plot = null;

  function draw(doc) {
    const d = doc.doc;
    const parts = [];
    parts.push(AS.el("p", null, AS.el("span", {class: "status " + doc.status, id: "trial-status", text: doc.status}),
      doc.is_best ? AS.el("b", {text: " — the run's best"}) : "", " ", AS.el("code", {id: "arch-text", text: doc.text})));
    if (d.error) parts.push(AS.el("p", {class: "err", id: "trial-error", text: "error: " + d.error}));
    const drawing = AS.el("section", {id: "drawing"}, AS.el("h3", {text: "Architecture"}));
    const img = AS.el("img", {id: "arch-img", alt: `architecture of trial ${number}`,
      src: `/api/arch.png?run=${encodeURIComponent(runId)}&n=${number}`});
    img.addEventListener("load", () => AS.drawn("trial"));
    img.addEventListener("error", () => { img.replaceWith(AS.el("p", {class: "note", text: "(this space has no drawing)"}));
      AS.drawn("trial"); });
    drawing.append(img);
    parts.push(drawing);
    const m = AS.section(AS.el("div"), "Metrics", "metrics");
    const keep = [["value", d.value], ["fidelity", d.fidelity], ["seconds", d.finished === null ? null : d.finished - d.started],
      ["seed", d.seed], ["attempts", d.attempts], ["worker", d.worker]];
    m.append(AS.kv(keep.concat(Object.entries(d.metrics)).filter(([, v]) => v !== undefined)));
    if (d.values) m.append(AS.el("p", {text: "objective vector: " + JSON.stringify(d.values)}));
    if (doc.rungs.length) m.append(AS.el("p", {text: "rungs: " + doc.rungs.map((r) => `${AS.fmt(r.fidelity)} epochs → ${AS.fmt(r.value)}`).join(", ")}));
    parts.push(m);
    let curveBox = null;
    if (doc.curve.length) {
      const c = AS.section(AS.el("div"), "Learning curve", "curve");
      curveBox = AS.el("div", {class: "chart"});
      c.append(curveBox);
      parts.push(c);
    }
    const cmds = AS.section(AS.el("div"), "Retrain or export", "commands");
    for (const c of doc.commands) cmds.append(AS.el("p", {class: "note", text: c.what}), AS.el("pre", {class: "command", text: c.command}));
    if (!doc.is_best) cmds.append(AS.el("p", {class: "note", text: "export writes a run's best with its weights; retrain this trial first to export it"}));
    parts.push(cmds);
    parts.push(AS.el("section", {id: "json"}, AS.el("h3", {text: "JSON"}),
      AS.el("pre", {id: "trial-json", text: JSON.stringify(d, null, 2)})));
    body.replaceChildren(...parts);
    if (plot) { plot.destroy(); plot = null; }
    if (curveBox) {
      const keys = [...new Set(doc.curve.flatMap((r) => Object.keys(r)))].filter((k) => k !== "epoch" && /acc|loss/.test(k));
      plot = AS.chart(curveBox, {title: "per epoch", xLabel: "epoch", yLabel: "metric",
        data: [doc.curve.map((r) => r.epoch), ...keys.map((k) => doc.curve.map((r) => r[k] ?? null))],
        series: keys.map((k) => ({label: k, kind: "line"}))});
    }
  }

  const stop = AS.poll(async () => {
    if (lastStatus !== null && lastStatus !== "running") return;  // a finished trial does not change
    let doc;
    try { doc = await AS.api("/api/trial", {run: runId, n: number}); }
    catch (e) { body.replaceChildren(AS.el("p", {class: "err", text: "error: " + e.message})); AS.drawn("trial"); lastStatus = "gone"; return; }
    if (doc.status !== lastStatus) draw(doc);  // marked drawn when its drawing has loaded (or failed to)
    lastStatus = doc.status;
  }, 2000);
  return {stop: () => { stop(); if (plot) plot.destroy(); }};
};
