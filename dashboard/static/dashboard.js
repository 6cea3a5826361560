// kubenas dashboard: draws the charts with plotly.js and follows a running experiment by
// polling the JSON API. Every value from an experiment is user text: it reaches the page
// only through textContent / attribute setters, and plotly (which reads a little HTML in
// its labels) only through plotText().
"use strict";

const POLL_MS = Number(document.body.dataset.pollMs) || 2000;
const ROW_LIMIT = 200;
const FINISHED = new Set(["Succeeded", "Failed", "Killed", "EarlyStopped", "MetricsUnavailable"]);
const COLORS = {Succeeded: "#1f77b4", EarlyStopped: "#d62728", Failed: "#7f7f7f", Killed: "#7f7f7f",
                MetricsUnavailable: "#bcbd22", Running: "#2ca02c", Created: "#9467bd"};

function plotText(value) {
  return String(value).replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
}

function el(tag, text, attrs) {
  const node = document.createElement(tag);
  if (text !== undefined && text !== null) node.textContent = String(text);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  return node;
}

function initialData() {
  return JSON.parse(document.getElementById("initial-data").textContent);
}

function segment(text) { return encodeURIComponent(String(text)); }

function fmt(value) {
  if (value === null || value === undefined) return "";
  if (typeof value === "number") return Number.isInteger(value) ? String(value) : value.toPrecision(6).replace(/\.?0+$/, "");
  return String(value);
}

function age(created) {
  if (!created) return "";
  const seconds = Math.max(0, (Date.now() - Date.parse(created)) / 1000);
  if (!isFinite(seconds)) return "";
  if (seconds < 90) return Math.round(seconds) + " s";
  if (seconds < 5400) return Math.round(seconds / 60) + " min";
  if (seconds < 172800) return Math.round(seconds / 3600) + " h";
  return Math.round(seconds / 86400) + " d";
}

// Poll `url` every POLL_MS (5x slower once `slow()` says the experiment ended); call
// `onData` when the answer changed. Returns a stop function.
function poll(url, onData, keepGoing, slow) {
  let last = null, timer = null, stopped = false;
  const live = document.getElementById("live");
  async function tick() {
    try {
      const response = await fetch(url, {cache: "no-store"});
      const text = await response.text();
      live.className = response.ok ? "live ok" : "live error";
      live.title = response.ok ? "updated " + new Date().toLocaleTimeString() : text.slice(0, 300);
      if (response.ok && text !== last) { last = text; onData(JSON.parse(text)); }
    } catch (err) {
      live.className = "live error"; live.title = "the dashboard does not answer: " + err;
    }
    if (!stopped && (!keepGoing || keepGoing())) timer = setTimeout(tick, slow && slow() ? 5 * POLL_MS : POLL_MS);
  }
  timer = setTimeout(tick, POLL_MS);
  return () => { stopped = true; clearTimeout(timer); };
}

// ---- architecture drawings --------------------------------------------------------------
const EDGE_STYLE = {chain: {color: "#555", dash: "solid"}, skip: {color: "#ff7f0e", dash: "solid"},
                    op: {color: "#1f77b4", dash: "solid"}, concat: {color: "#999", dash: "dot"}};

function drawGraph(container, graph, kind) {
  const at = {};
  for (const n of graph.nodes) at[n.id] = n;
  const shapes = [], annotations = [];
  let minX = Infinity, maxX = -Infinity, minY = Infinity, maxY = -Infinity;
  const grow = (x, y) => { minX = Math.min(minX, x); maxX = Math.max(maxX, x); minY = Math.min(minY, y); maxY = Math.max(maxY, y); };
  for (const n of graph.nodes) grow(n.x, n.y);
  for (const e of graph.edges) {
    const a = at[e.source], b = at[e.target];
    if (!a || !b) continue;
    const dx = b.x - a.x, dy = b.y - a.y, len = Math.hypot(dx, dy) || 1;
    const nx = -dy / len, ny = dx / len, mx = (a.x + b.x) / 2, my = (a.y + b.y) / 2;
    const cx = mx + 2 * e.bend * nx, cy = my + 2 * e.bend * ny;
    const style = EDGE_STYLE[e.kind] || EDGE_STYLE.op;
    shapes.push({type: "path", path: `M ${a.x},${a.y} Q ${cx},${cy} ${b.x},${b.y}`, layer: "below",
                 line: {color: style.color, width: 2, dash: style.dash}});
    const lx = mx + e.bend * nx, ly = my + e.bend * ny;
    grow(lx, ly);
    if (e.label) annotations.push({x: lx, y: ly, text: plotText(e.label), showarrow: false,
                                   font: {size: 11, color: "#123"}, bgcolor: "rgba(255,255,255,0.85)"});
  }
  const vertical = kind === "macro";
  const nodes = {
    type: "scatter", mode: "markers+text", x: graph.nodes.map(n => n.x), y: graph.nodes.map(n => n.y),
    text: graph.nodes.map(n => plotText(n.label)), hoverinfo: "text",
    textposition: vertical ? "middle right" : "top center", cliponaxis: false,
    marker: {size: 16, color: graph.nodes.map(n => /^(input|output|c_)/.test(n.id) ? "#444" : "#2ca02c")},
  };
  const height = vertical ? Math.max(240, 46 * graph.nodes.length) : 260;
  const layout = {
    title: {text: plotText(graph.title), font: {size: 13}}, height, showlegend: false,
    margin: {l: 10, r: 10, t: 30, b: 10}, shapes, annotations, hovermode: "closest",
    xaxis: {visible: false, range: vertical ? [minX - 0.4, Math.max(maxX, 0) + 3.2] : [minX - 0.6, maxX + 0.6]},
    yaxis: {visible: false, range: [minY - 0.5, maxY + 0.6]},
  };
  Plotly.react(container, [nodes], layout, {displayModeBar: false, responsive: true});
}

function drawArchitecture(container, arch, caption) {
  container.replaceChildren();
  if (!arch) { container.append(el("p", caption || "no architecture (a hyperparameter trial)", {class: "note"})); return; }
  const head = el("p", null, {class: "arch-summary"});
  head.append(el("b", arch.summary));
  if (caption) head.append(" ", el("span", caption, {class: "note"}));
  container.append(head);
  const row = el("div", null, {class: "arch-graphs"});
  container.append(row);
  for (const graph of arch.graphs) {
    const box = el("div", null, {class: "arch-graph"});
    row.append(box);
    drawGraph(box, graph, arch.kind);
  }
  const words = el("ol", null, {class: "arch-words"});
  for (const line of arch.lines) words.append(el("li", line));
  container.append(words);
}

// ---- experiment list --------------------------------------------------------------------
function listPage() {
  const body = document.querySelector("#experiments tbody");
  function render(data) {
    const rows = data.experiments.map(e => {
      const tr = el("tr", null, {"data-id": e.id});
      const link = el("a", e.name, {href: "/experiments/" + segment(e.id)});
      const name = el("td"); name.append(link);
      const status = el("td"); status.append(el("span", e.status, {class: "status s-" + e.status}), " ", el("span", e.reason, {class: "reason"}));
      tr.append(name, el("td", e.algorithm), status, el("td", fmt(e.best_value)), el("td", e.best_trial || ""),
                el("td", e.counts.total), el("td", e.counts.Succeeded), el("td", e.counts.Running),
                el("td", e.counts.Failed), el("td", e.counts.EarlyStopped),
                el("td", age(e.created), {class: "age"}), el("td", e.location, {class: "where"}));
      return tr;
    });
    body.replaceChildren(...rows);
    const problems = document.getElementById("problems");
    problems.replaceChildren(...data.problems.map(p => el("li", p)));
    const empty = document.getElementById("empty");
    if (empty) empty.hidden = data.experiments.length > 0;
  }
  render(initialData());
  poll("/api/experiments", render);
}

// ---- experiment page ----------------------------------------------------------------------
function experimentPage() {
  const state = {data: initialData(), curves: {}, sort: {key: null, dir: 1}, filter: "", status: "", selected: null,
                 allRows: false};
  const id = state.data.summary.id;
  const base = "/api/experiments/" + segment(id);
  document.getElementById("spec").textContent = state.data.spec ? JSON.stringify(state.data.spec, null, 2) : "unknown";
  document.getElementById("reproducibility").textContent = state.data.reproducibility
    ? JSON.stringify(state.data.reproducibility, null, 2) : "written to results.json when the run ends";

  const metricName = () => state.data.summary.objective_metric;
  const objectiveOf = t => { const v = t.observation[metricName()]; return typeof v === "number" ? v : null; };

  function facts() {
    const s = state.data.summary;
    const status = document.getElementById("status");
    status.textContent = s.status; status.className = "status s-" + s.status;
    document.getElementById("reason").textContent = s.reason;
    document.getElementById("best").textContent = s.best_value === null ? "—" : fmt(s.best_value);
    document.getElementById("trial-count").textContent = s.counts.total;
  }

  function objectiveChart() {
    const trials = state.data.trials.filter(t => objectiveOf(t) !== null && (t.condition === "Succeeded" || t.condition === "EarlyStopped"));
    trials.sort((a, b) => String(a.completion_time || "").localeCompare(String(b.completion_time || "")));
    const maximize = state.data.summary.objective_type !== "minimize";
    const bestX = [], bestY = [];
    let best = null;
    for (const t of trials) {
      const v = objectiveOf(t);
      if (best === null || (maximize ? v > best : v < best)) best = v;
      bestX.push(t.completion_time); bestY.push(best);
    }
    const byCondition = cond => trials.filter(t => t.condition === cond);
    const traces = ["Succeeded", "EarlyStopped"].map(cond => ({
      type: "scatter", mode: "markers", name: cond === "EarlyStopped" ? "early stopped" : "trial",
      x: byCondition(cond).map(t => t.completion_time), y: byCondition(cond).map(objectiveOf),
      text: byCondition(cond).map(t => plotText(t.name)), hovertemplate: "%{text}: %{y}<extra></extra>",
      marker: {color: COLORS[cond], symbol: cond === "EarlyStopped" ? "x" : "circle", size: 8},
    }));
    traces.push({type: "scatter", mode: "lines", name: "best so far", x: bestX, y: bestY,
                 line: {shape: "hv", color: "#2ca02c", width: 2}, hoverinfo: "skip"});
    Plotly.react("objective-chart", traces, {
      height: 320, margin: {l: 60, r: 10, t: 10, b: 50}, legend: {orientation: "h", y: -0.25},
      xaxis: {}, yaxis: {title: {text: plotText(metricName())}},
    }, {displayModeBar: false, responsive: true});
  }

  function curvesChart() {
    const select = document.getElementById("curve-metric");
    const metrics = new Set();
    for (const per of Object.values(state.curves)) for (const m of Object.keys(per)) metrics.add(m);
    const names = [...metrics].sort();
    const chosen = select.value || (metrics.has(metricName()) ? metricName() : names[0]);
    select.replaceChildren(...names.map(m => el("option", m, {value: m})));
    if (chosen) select.value = chosen;
    const conditions = {};
    for (const t of state.data.trials) conditions[t.name] = t.condition;
    // One trace per kind, trials separated by gaps: a thousand trials stay one plotly trace.
    const kinds = {normal: {x: [], y: [], text: []}, stopped: {x: [], y: [], text: []}, ends: {x: [], y: [], text: []}};
    for (const [trial, per] of Object.entries(state.curves)) {
      const values = per[chosen];
      if (!values) continue;
      const stopped = conditions[trial] === "EarlyStopped";
      const into = stopped ? kinds.stopped : kinds.normal;
      values.forEach((v, i) => { into.x.push(i + 1); into.y.push(v); into.text.push(plotText(trial)); });
      into.x.push(null); into.y.push(null); into.text.push("");
      if (stopped) { kinds.ends.x.push(values.length); kinds.ends.y.push(values[values.length - 1]); kinds.ends.text.push(plotText(trial)); }
    }
    // markers show one-report trials; past a few thousand points they only cost drawing time
    const mode = kinds.normal.x.length + kinds.stopped.x.length > 3000 ? "lines" : "lines+markers";
    const traces = [
      {type: "scatter", mode, marker: {size: 4}, name: "trial", ...kinds.normal, line: {color: "rgba(31,119,180,0.55)", width: 1.5},
       hovertemplate: "%{text} step %{x}: %{y}<extra></extra>", connectgaps: false},
      {type: "scatter", mode, marker: {size: 4}, name: "early stopped", ...kinds.stopped, line: {color: "rgba(214,39,40,0.7)", dash: "dash", width: 1.5},
       hovertemplate: "%{text} (early stopped) step %{x}: %{y}<extra></extra>", connectgaps: false},
      {type: "scatter", mode: "markers", name: "stopped here", ...kinds.ends, marker: {symbol: "x", size: 10, color: "#d62728"},
       hovertemplate: "%{text} stopped at step %{x}<extra></extra>"},
    ];
    Plotly.react("curves-chart", traces, {
      height: 320, margin: {l: 60, r: 10, t: 10, b: 50}, legend: {orientation: "h", y: -0.25},
      xaxis: {title: {text: "step (report number)"}}, yaxis: {title: {text: plotText(chosen || "")}},
    }, {displayModeBar: false, responsive: true});
  }

  function parcoords() {
    const spec = (state.data.spec || {}).spec || {};
    const params = (spec.parameters || []).map(p => String(p.name));
    const box = document.getElementById("parcoords-chart");
    const trials = state.data.trials.filter(t => objectiveOf(t) !== null);
    if (!params.length || !trials.length) {
      Plotly.purge(box);
      box.replaceChildren(el("p", params.length ? "no trial has reported the objective yet" : "no hyperparameters in this experiment (a NAS search)", {class: "note"}));
      return;
    }
    if (box.querySelector("p.note")) box.replaceChildren();
    const dimensions = params.map(name => {
      const raw = trials.map(t => t.assignments[name]);
      const numbers = raw.map(Number);
      if (raw.every(v => v !== undefined && v !== "" && isFinite(Number(v)))) {
        return {label: plotText(name), values: numbers};
      }
      const levels = [...new Set(raw.map(String))].sort();
      return {label: plotText(name), values: raw.map(v => levels.indexOf(String(v))),
              tickvals: levels.map((_, i) => i), // parcoords writes tick texts as plain SVG text (no markup is read), so they are not escaped
              ticktext: levels.map(v => v.length > 24 ? v.slice(0, 23) + "…" : v)};
    });
    const objective = trials.map(objectiveOf);
    dimensions.push({label: plotText(metricName()), values: objective});
    Plotly.react(box, [{type: "parcoords", dimensions,
      line: {color: objective, colorscale: "Viridis", showscale: true, reversescale: state.data.summary.objective_type === "minimize"}}],
      {height: 340, margin: {l: 60, r: 60, t: 40, b: 20}}, {displayModeBar: false, responsive: true});
  }

  function columns() {
    const keys = new Set(), metrics = new Set();
    for (const t of state.data.trials) {
      Object.keys(t.assignments).forEach(k => keys.add(k));
      Object.keys(t.observation).forEach(k => metrics.add(k));
    }
    const cols = [{key: "name", label: "trial", get: t => t.name},
                  {key: "condition", label: "status", get: t => t.condition}];
    const objectiveFirst = [...metrics].sort((a, b) => (b === metricName()) - (a === metricName()) || a.localeCompare(b));
    for (const m of objectiveFirst) cols.push({key: "m:" + m, label: m, get: t => t.observation[m]});
    for (const k of [...keys].sort()) cols.push({key: "a:" + k, label: k, get: t => t.assignments[k]});
    cols.push({key: "duration", label: "duration (s)", get: t => t.duration_s === null ? null : Math.round(t.duration_s * 10) / 10});
    cols.push({key: "start", label: "started", get: t => t.start_time});
    return cols;
  }

  function table() {
    const cols = columns();
    const statuses = document.getElementById("status-filter");
    const known = new Set(state.data.trials.map(t => t.condition));
    const current = statuses.value;
    statuses.replaceChildren(el("option", "any status", {value: ""}), ...[...known].sort().map(c => el("option", c, {value: c})));
    statuses.value = known.has(current) ? current : "";
    const head = el("tr");
    for (const c of cols) {
      const th = el("th", c.label + (state.sort.key === c.key ? (state.sort.dir > 0 ? " ▲" : " ▼") : ""), {"data-key": c.key});
      th.addEventListener("click", () => {
        state.sort = {key: c.key, dir: state.sort.key === c.key ? -state.sort.dir : 1};
        table();
      });
      head.append(th);
    }
    document.querySelector("#trials thead").replaceChildren(head);
    const needle = state.filter.toLowerCase();
    let rows = state.data.trials.filter(t => (!statuses.value || t.condition === statuses.value) &&
      (!needle || cols.some(c => String(c.get(t) ?? "").toLowerCase().includes(needle))));
    const sortCol = cols.find(c => c.key === state.sort.key);
    if (sortCol) {
      rows = rows.slice().sort((a, b) => {
        const x = sortCol.get(a), y = sortCol.get(b);
        if (x === y) return 0;
        if (x === null || x === undefined) return 1;
        if (y === null || y === undefined) return -1;
        const cmp = (typeof x === "number" && typeof y === "number") ? x - y : String(x).localeCompare(String(y), undefined, {numeric: true});
        return cmp * state.sort.dir;
      });
    }
    const best = state.data.summary.best_trial;
    // a thousand rows cost the browser more than every chart: draw the first ROW_LIMIT of
    // the sorted, filtered rows unless asked for all
    const shownRows = state.allRows ? rows : rows.slice(0, ROW_LIMIT);
    const body = shownRows.map(t => {
      const tr = el("tr", null, {"data-trial": t.name, class: (t.name === best ? "best " : "") + (t.name === state.selected ? "selected" : "")});
      for (const c of cols) {
        const value = c.get(t);
        const text = fmt(value);
        const td = el("td", null, text.length > 60 ? {title: text} : {});
        if (c.key === "name") {
          td.append(el("a", text, {href: "/experiments/" + segment(id) + "/trials/" + segment(t.name)}));
        } else if (c.key === "condition") {
          td.append(el("span", text, {class: "status s-" + text}));
        } else {
          td.textContent = text.length > 60 ? text.slice(0, 59) + "…" : text;
        }
        tr.append(td);
      }
      tr.addEventListener("click", ev => { if (ev.target.tagName !== "A") select(t.name); });
      return tr;
    });
    document.querySelector("#trials tbody").replaceChildren(...body);
    document.getElementById("shown").textContent = shownRows.length < rows.length
      ? `first ${shownRows.length} of ${rows.length} matching (${state.data.trials.length} trials)`
      : `${rows.length} of ${state.data.trials.length} trials`;
    const more = document.getElementById("show-all");
    more.hidden = shownRows.length >= rows.length;
  }

  async function select(name) {
    state.selected = name;
    table();
    const response = await fetch(base + "/trials/" + segment(name), {cache: "no-store"});
    if (!response.ok) return;
    const detail = await response.json();
    drawArchitecture(document.getElementById("architecture"), detail.architecture, "selected trial " + name);
    document.getElementById("arch-which").textContent = "selected trial " + name;
  }

  function bestArchitecture() {
    if (state.selected) return;
    const arch = state.data.best_architecture;
    const best = state.data.summary.best_trial;
    document.getElementById("arch-which").textContent = best ? "best trial " + best : "";
    drawArchitecture(document.getElementById("architecture"), arch,
                     best ? (arch ? "best trial " + best : "the best trial has no architecture (a hyperparameter search)")
                          : "no best trial yet");
  }

  document.getElementById("trial-filter").addEventListener("input", ev => { state.filter = ev.target.value; table(); });
  document.getElementById("show-all").addEventListener("click", () => { state.allRows = true; table(); });
  document.getElementById("status-filter").addEventListener("change", () => table());
  document.getElementById("curve-metric").addEventListener("change", () => curvesChart());

  // parcoords is WebGL: its first context costs seconds in a software renderer (no GPU), so it
  // is drawn last — once the curves are drawn and it is in view — never before the rest
  let parcoordsShown = false, parcoordsVisible = false, curvesDrawn = false;
  function maybeParcoords() {
    if (parcoordsShown || !parcoordsVisible || !curvesDrawn) return;
    parcoordsShown = true;
    setTimeout(() => { parcoords(); window.kubenasParcoordsAt = performance.now(); }, 50);
  }
  new IntersectionObserver((entries, observer) => {
    if (entries.some(e => e.isIntersecting)) { parcoordsVisible = true; observer.disconnect(); maybeParcoords(); }
  }).observe(document.getElementById("parcoords-chart"));

  function renderAll() { facts(); objectiveChart(); table(); bestArchitecture(); if (parcoordsShown) parcoords(); }
  renderAll();
  fetch(base + "/curves", {cache: "no-store"}).then(r => r.json()).then(d => {
    state.curves = d.curves; curvesChart(); curvesDrawn = true;
    window.kubenasDrawnAt = performance.now();  // page clock: everything but parcoords is drawn (benchmarks read it)
    maybeParcoords();
  });
  const ended = () => !["Running", "Starting"].includes(state.data.summary.status);
  poll(base, data => { state.data = data; renderAll(); }, null, ended);
  poll(base + "/curves", data => { state.curves = data.curves; curvesChart(); }, null, ended);
}

// ---- trial page ---------------------------------------------------------------------------
function trialPage() {
  let data = initialData();
  const base = "/api/experiments/" + segment(data.experiment.id) + "/trials/" + segment(data.trial.name);

  function metrics() {
    const per = {};
    for (const m of data.metric_logs) {
      const v = Number(m.value);
      if (m.value === "" || !isFinite(v)) continue;
      (per[m.metric] = per[m.metric] || []).push(v);
    }
    const traces = Object.entries(per).map(([name, values]) => ({
      type: "scatter", mode: "lines+markers", name: plotText(name), x: values.map((_, i) => i + 1), y: values,
    }));
    Plotly.react("metrics-chart", traces, {height: 320, margin: {l: 60, r: 10, t: 10, b: 40}, legend: {orientation: "h"},
      xaxis: {title: {text: "step (report number)"}}}, {displayModeBar: false, responsive: true});
  }

  function facts() {
    const status = document.getElementById("status");
    status.textContent = data.trial.condition; status.className = "status s-" + data.trial.condition;
    document.getElementById("ended").textContent = data.trial.completion_time || "—";
    document.getElementById("duration").textContent = data.trial.duration_s === null ? "—" : data.trial.duration_s.toFixed(1) + " s";
    const rows = data.status_history.map(h => { const tr = el("tr"); tr.append(el("td", h.condition), el("td", h.time || ""), el("td", h.message)); return tr; });
    document.querySelector("#history tbody").replaceChildren(...rows);
  }

  const logBox = document.getElementById("log");
  function showLog(tail) {
    const follow = logBox.scrollTop + logBox.clientHeight >= logBox.scrollHeight - 20;
    logBox.textContent = tail.text;
    document.getElementById("log-note").textContent = !tail.available ? tail.note
      : (tail.truncated ? `last ${tail.text.length} characters of ${tail.size} bytes` : `${tail.size} bytes`) + (tail.note ? " — " + tail.note : "");
    if (follow) logBox.scrollTop = logBox.scrollHeight;
  }

  metrics(); facts();
  drawArchitecture(document.getElementById("architecture"), data.architecture, "");
  fetch(base + "/log", {cache: "no-store"}).then(r => r.json()).then(showLog);
  let running = () => !FINISHED.has(data.trial.condition);
  let finalRead = false;
  poll(base, d => { data = d; metrics(); facts(); }, () => running());
  // follow the output while the trial runs, and read it once more after it ended
  poll(base + "/log", showLog, () => { if (running()) return true; if (!finalRead) { finalRead = true; return true; } return false; });
}

const PAGES = {list: listPage, experiment: experimentPage, trial: trialPage};
(PAGES[document.body.dataset.page] || (() => {}))();
