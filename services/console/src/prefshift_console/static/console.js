// prefshift console: live progress, the report as Plotly charts, the form's request preview.
// Everything it fetches comes from the console itself (/api/...), which holds the API token.
"use strict";

const SIGNIFICANT = 0.05;
// Arms stay apart in greyscale: lightness steps, dash styles and marker shapes all differ.
const ARM_STYLES = [
  { color: "#1b1b1b", dash: "solid", symbol: "circle" },
  { color: "#0072b2", dash: "dash", symbol: "square" },
  { color: "#d55e00", dash: "dot", symbol: "diamond" },
  { color: "#6b6b6b", dash: "dashdot", symbol: "triangle-up" },
  { color: "#009e73", dash: "longdash", symbol: "x" },
  { color: "#a0a0a0", dash: "longdashdot", symbol: "star" },
];
const PLOT_CONFIG = { responsive: true, displaylogo: false, toImageButtonOptions: { format: "svg" } };

async function getJSON(url, options) {
  const response = await fetch(url, { credentials: "same-origin", ...options });
  if (response.status === 401) {
    window.location.assign("/signin?next=" + encodeURIComponent(window.location.pathname));
    throw new Error("sign in required");
  }
  const body = await response.json();
  if (!response.ok) throw new Error(body.detail || response.statusText);
  return body;
}

function text(element, value) {
  if (element) element.textContent = value;
}

// --- experiment page -------------------------------------------------------------------------

function progressLine(state) {
  const p = state.progress;
  return `${state.status} — ${p.completed} of ${p.runs} runs completed, ${p.running} running, ` +
    `${p.queued} queued, ${p.failed} failed`;
}

function updateRuns(state) {
  for (const run of state.runs) {
    const row = document.querySelector(`#runs tr[data-run="${run.run_id}"]`);
    if (!row) continue;
    text(row.querySelector(".status"), run.status);
    text(row.querySelector(".pct"), `${Math.round(run.progress * 100)}%`);
  }
}

async function watchExperiment(section) {
  const id = section.dataset.experiment;
  const pollMs = Number(section.dataset.pollMs) || 1000;
  let state = { status: section.dataset.status };
  let drawn = false;
  const hasCompleted = () => document.querySelector("#runs .status") &&
    [...document.querySelectorAll("#runs .status")].some((cell) => cell.textContent === "completed");
  if (hasCompleted()) {
    await drawReport(id);
    drawn = true;
  }
  // Each poll asks for the counts alone (its cost does not grow with the runs); the runs'
  // table is refreshed from the whole experiment when the counts moved, at most every 10 s,
  // and once at the end.
  let counted = "";
  let runsAt = Date.now();
  while (state.status === "running") {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    try {
      state = await getJSON(`/api/experiments/${id}/progress`);
      const counts = JSON.stringify(state.progress);
      if (state.status !== "running" || (counts !== counted && Date.now() - runsAt >= 10000)) {
        updateRuns(await getJSON(`/api/experiments/${id}`));
        counted = counts;
        runsAt = Date.now();
      }
    } catch (error) {
      text(document.getElementById("progress-text"), `cannot reach the console: ${error.message}`);
      continue;
    }
    document.getElementById("progress").value = state.progress.progress;
    document.getElementById("progress").className = state.status;
    text(document.getElementById("progress-text"), progressLine(state));
    section.dataset.status = state.status;
  }
  if (!drawn || state.progress) await drawReport(id);
}

function overall(cells, metric) {
  return cells.filter((c) => c.metric === metric && c.archetype === null && c.genre === "");
}

function armStyle(index) {
  return ARM_STYLES[index % ARM_STYLES.length];
}

function shiftChart(stats, metric, arms) {
  const traces = [];
  arms.forEach((arm, index) => {
    const style = armStyle(index);
    const cells = overall(stats.cells, metric).filter((c) => c.arm === arm && c.mean !== null)
      .sort((a, b) => a.page - b.page);
    const pages = cells.map((c) => c.page);
    const band = cells.filter((c) => c.ci_low !== null && c.ci_high !== null);
    traces.push({
      x: band.map((c) => c.page).concat(band.map((c) => c.page).reverse()),
      y: band.map((c) => c.ci_high).concat(band.map((c) => c.ci_low).reverse()),
      fill: "toself", fillcolor: style.color, opacity: 0.15, line: { width: 0 },
      hoverinfo: "skip", showlegend: false, type: "scatter", legendgroup: arm,
    });
    traces.push({
      x: pages, y: cells.map((c) => c.mean), name: arm, legendgroup: arm, type: "scatter",
      mode: "lines+markers", line: { color: style.color, dash: style.dash, width: 2.5 },
      marker: { symbol: style.symbol, size: 9 },
      customdata: cells.map((c) => [c.ci_low, c.ci_high, c.n, c.q_vs_zero]),
      hovertemplate: `${arm}, page %{x}: %{y:.3f} [%{customdata[0]:.3f}, %{customdata[1]:.3f}]` +
        "<br>n=%{customdata[2]}, q=%{customdata[3]:.3g}<extra></extra>",
    });
  });
  Plotly.newPlot("chart-shift", traces, {
    title: { text: metric === "net_shift" ? "Net shift (against control) by page" : "Shift by page" },
    xaxis: { title: { text: "page" }, dtick: 1 },
    yaxis: { title: { text: metric === "net_shift" ? "net shift (stars)" : "shift (stars)" }, zeroline: true },
    margin: { t: 50 }, height: 380,
  }, PLOT_CONFIG);
}

function genreChart(stats, metric, arms) {
  const cells = stats.cells.filter((c) => c.metric === metric && c.archetype === null && c.genre !== "");
  const lastPage = Math.max(...cells.map((c) => c.page), 0);
  const atLast = cells.filter((c) => c.page === lastPage);
  const genres = [...new Set(atLast.map((c) => c.genre))].sort();
  const lookup = new Map(atLast.map((c) => [`${c.arm}|${c.genre}`, c]));
  const z = arms.map((arm) => genres.map((g) => lookup.get(`${arm}|${g}`)?.mean ?? null));
  const labels = arms.map((arm) => genres.map((g) => {
    const c = lookup.get(`${arm}|${g}`);
    if (!c || c.mean === null) return "";
    const star = c.q_vs_zero !== null && c.q_vs_zero < SIGNIFICANT ? "✱" : "";
    return `${c.mean.toFixed(2)}${star}`;
  }));
  const limit = Math.max(0.1, ...z.flat().filter((v) => v !== null).map(Math.abs));
  Plotly.newPlot("chart-genres", [{
    type: "heatmap", x: genres, y: arms, z, text: labels, texttemplate: "%{text}",
    // cividis: lightness rises monotonically, so the scale reads in greyscale too
    colorscale: "Cividis", zmin: -limit, zmax: limit,
    colorbar: { title: { text: metric.replace("_", " ") } },
    hovertemplate: "%{y} × %{x}: %{z:.3f}<extra></extra>",
  }], {
    title: { text: `Per-genre ${metric.replace("_", " ")} at page ${lastPage} (✱ q < ${SIGNIFICANT})` },
    margin: { t: 50, l: 110 }, height: Math.max(260, 70 + 40 * arms.length),
    xaxis: { tickangle: -40 },
  }, PLOT_CONFIG);
}

function fidelityChart(pairs) {
  // Ratings sit on a 0.5 grid: a small fixed jitter keeps coinciding points visible.
  const jitter = (i) => ((i * 7919) % 100) / 100 * 0.2 - 0.1;
  Plotly.newPlot("chart-fidelity", [
    {
      type: "scatter", mode: "markers", name: "test movies",
      x: pairs.map((p, i) => p.real + jitter(i)), y: pairs.map((p, i) => p.predicted + jitter(i + 1)),
      customdata: pairs.map((p) => [p.user_id, p.real, p.predicted]),
      marker: { color: "#1b1b1b", opacity: 0.35, size: 6 },
      hovertemplate: "user %{customdata[0]}: real %{customdata[1]}, persona %{customdata[2]}<extra></extra>",
    },
    {
      type: "scatter", mode: "lines", name: "persona = real", x: [0.5, 5], y: [0.5, 5],
      line: { color: "#0072b2", dash: "dash" }, hoverinfo: "skip",
    },
  ], {
    title: { text: `Fidelity of the baseline (${pairs.length} test ratings)` },
    xaxis: { title: { text: "real user's rating" }, range: [0.2, 5.3] },
    yaxis: { title: { text: "persona's baseline rating" }, range: [0.2, 5.3] },
    margin: { t: 50 }, height: 420,
  }, PLOT_CONFIG);
}

function archetypeChart(stats, metric, arms) {
  const figure = document.getElementById("chart-archetypes").closest("figure");
  if (!stats.archetypes.length) {
    // only cohorts drawn by the seed study's rule (or imported with archetypes) have them
    figure.querySelector("figcaption").textContent =
      "No archetypes in this cohort: the seed study's cohort rule labels users Specialist, Explorer or Generalist.";
    figure.querySelector(".chart").hidden = true;
    return;
  }
  const cells = stats.cells.filter((c) => c.metric === metric && c.archetype !== null && c.genre === "");
  const lastPage = Math.max(...cells.map((c) => c.page), 0);
  const traces = stats.archetypes.map((archetype, index) => {
    const style = armStyle(index);
    const rows = arms.map((arm) => cells.find((c) => c.arm === arm && c.archetype === archetype && c.page === lastPage));
    return {
      type: "bar", name: archetype, x: arms, y: rows.map((c) => c?.mean ?? null),
      marker: { color: style.color, pattern: { shape: ["", "/", "."][index % 3] } },
      error_y: {
        type: "data", symmetric: false,
        array: rows.map((c) => (c && c.ci_high !== null ? c.ci_high - c.mean : 0)),
        arrayminus: rows.map((c) => (c && c.ci_low !== null ? c.mean - c.ci_low : 0)),
      },
      customdata: rows.map((c) => [c?.n ?? 0]),
      hovertemplate: `${archetype}, %{x}: %{y:.3f} (n=%{customdata[0]})<extra></extra>`,
    };
  });
  Plotly.newPlot("chart-archetypes", traces, {
    barmode: "group",
    title: { text: `${metric.replace("_", " ")} at page ${lastPage} per archetype` },
    yaxis: { title: { text: metric.replace("_", " ") } }, margin: { t: 50 }, height: 360,
  }, PLOT_CONFIG);
}

function summaryTable(stats, metric, arms) {
  const cells = overall(stats.cells, metric);
  const lastPage = Math.max(...cells.map((c) => c.page), 0);
  const table = document.createElement("table");
  table.id = "summary";
  table.innerHTML = `<caption>${metric.replace("_", " ")} at page ${lastPage}, all users</caption>` +
    "<thead><tr><th scope='col'>arm</th><th scope='col' class='num'>users</th><th scope='col' class='num'>mean</th>" +
    "<th scope='col' class='num'>95% interval</th><th scope='col' class='num'>q vs 0</th></tr></thead>";
  const body = document.createElement("tbody");
  for (const arm of arms) {
    const c = cells.find((cell) => cell.arm === arm && cell.page === lastPage);
    const row = document.createElement("tr");
    const fmt = (v, digits = 3) => (v === null || v === undefined ? "—" : Number(v).toFixed(digits));
    const values = [c?.n ?? 0, fmt(c?.mean), c ? `[${fmt(c.ci_low)}, ${fmt(c.ci_high)}]` : "—", c?.q_vs_zero == null ? "—" : Number(c.q_vs_zero).toPrecision(2)];
    const head = document.createElement("th");
    head.scope = "row";
    head.textContent = arm;
    row.appendChild(head);
    for (const value of values) {
      const cell = document.createElement("td");
      cell.className = "num";
      cell.textContent = value;
      row.appendChild(cell);
    }
    body.appendChild(row);
  }
  table.appendChild(body);
  const holder = document.getElementById("report-summary");
  holder.replaceChildren(table);
}

async function drawReport(id) {
  const status = document.getElementById("report-status");
  let data;
  try {
    data = await getJSON(`/api/experiments/${id}/report`);
  } catch (error) {
    text(status, `The report cannot be loaded: ${error.message}`);
    return;
  }
  const report = data.report;
  const stats = report.statistics;
  if (!report.n_completed) {
    text(status, "No run has completed yet.");
    return;
  }
  const metric = stats.control_arm ? "net_shift" : "shift";
  const arms = [...new Set(stats.cells.filter((c) => c.metric === metric).map((c) => c.arm))]
    .filter((arm) => metric === "shift" || arm !== stats.control_arm);
  text(status, `${report.n_completed} of ${report.n_users} users completed; ` +
    `${Math.round(stats.confidence * 100)}% bootstrap intervals (${stats.n_resamples} resamples).`);
  summaryTable(stats, metric, arms);
  shiftChart(stats, metric, arms);
  genreChart(stats, metric, arms);
  fidelityChart(data.fidelity);
  archetypeChart(stats, metric, arms);
  document.getElementById("report").dataset.drawn = "true";
}

// --- experiment form -------------------------------------------------------------------------

function watchForm(form) {
  const preview = document.getElementById("request-preview");
  const errors = document.getElementById("preview-errors");
  const showCohort = () => {
    const kind = form.querySelector("input[name=cohort_kind]:checked")?.value || "users";
    for (const group of form.querySelectorAll("[data-cohort]")) {
      group.hidden = !group.dataset.cohort.split(" ").includes(kind);
    }
  };
  let pending = 0;
  const refresh = async () => {
    showCohort();
    const ticket = ++pending;
    try {
      const body = await getJSON("/api/experiments/preview", { method: "POST", body: new FormData(form) });
      if (ticket !== pending) return;
      if (body.request) {
        preview.textContent = JSON.stringify(body.request, null, 2);
        text(errors, "");
      } else {
        text(errors, Object.entries(body.errors).map(([k, v]) => `${k}: ${v}`).join("; "));
      }
    } catch (error) {
      text(errors, error.message);
    }
  };
  form.addEventListener("input", refresh);
  form.addEventListener("change", refresh);
  refresh();
}

// --- overview and run pages ------------------------------------------------------------------

async function watchTraining(table) {
  const dataset = table.dataset.dataset;
  const training = () => [...table.querySelectorAll(".status")].some((c) => c.textContent.startsWith("training"));
  while (training()) {
    await new Promise((resolve) => setTimeout(resolve, 2000));
    const recommenders = await getJSON(`/api/recommenders?dataset=${encodeURIComponent(dataset)}`);
    for (const r of recommenders) {
      const cell = table.querySelector(`tr[data-name="${CSS.escape(r.name)}"] .status`);
      const pct = r.status === "training" && r.progress != null ? ` ${Math.round(r.progress * 100)}%` : "";
      text(cell, `${r.status}${pct}${r.detail ? " — " + r.detail : ""}`);
    }
  }
}

async function watchRun(element) {
  const pollMs = Number(element.dataset.pollMs) || 1000;
  let status = element.dataset.status;
  while (status === "queued" || status === "running") {
    await new Promise((resolve) => setTimeout(resolve, pollMs));
    const run = await getJSON(`/api/runs/${element.dataset.run}`);
    status = run.status;
    text(element, `${run.status} (${run.pages_done} of ${run.pages_total} pages)`);
    if (!["queued", "running"].includes(status)) window.location.reload();
  }
}

document.addEventListener("DOMContentLoaded", () => {
  const section = document.getElementById("progress-section");
  if (section) watchExperiment(section);
  const form = document.getElementById("experiment-form");
  if (form) watchForm(form);
  const recommenders = document.getElementById("recommenders");
  if (recommenders) watchTraining(recommenders);
  const run = document.getElementById("run-status");
  if (run) watchRun(run);
});
