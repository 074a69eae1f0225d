// The dashboard (app page and left menu): ask box, chart builder, result with PNG/CSV export and
// "save to dashboard", recent questions, saved dashboards with their refresh interval, sync status.
import {$, api, ApiError, download, drawChart, fmtNumber, fmtWhen, h, initFrame, slug, toCsv} from "./hub24.js";

const ASK_URL = "/api/v1/charts/ask";
const JOB_URL = (id) => `/api/v1/charts/jobs/${encodeURIComponent(id)}`;
const BUILD_URL = "/api/v1/charts/build";
const POLL_MS = 700;
const POLL_LIMIT = 400; // about five minutes of polling, then the page stops waiting
const root = $("#hub24-app");

const state = {current: null, catalog: [], dashboards: [], active: null, refreshTimer: null, syncTimer: null};

// -- the answer ---------------------------------------------------------------------------------

function showResult(result, source) {
  state.current = {result, source};
  $("#result-card").classList.remove("hidden");
  $("#result-title").textContent = result.title || "Chart";
  $("#result-explanation").textContent = result.explanation || "";
  $("#result-sql").textContent = result.sql || "";
  $("#sql-toggle").classList.toggle("hidden", !result.sql);
  $("#result-sql").classList.add("hidden");
  $("#sql-toggle").textContent = "Show SQL";
  $("#save-form").classList.add("hidden");
  $("#save-status").textContent = "";
  const chartEl = $("#result-chart");
  const tableEl = $("#result-table");
  tableEl.replaceChildren();
  const isTable = result.chart_type === "table" || !result.option || !Object.keys(result.option).length;
  chartEl.classList.toggle("hidden", isTable);
  $("#png-button").disabled = isTable;
  if (isTable) {
    tableEl.append(renderTable(result.columns, result.rows));
  } else {
    drawChart(chartEl, result.option);
  }
  if (!result.rows || !result.rows.length) {
    tableEl.append(h("p", {class: "muted"}, "The query returned no rows."));
  }
}

function renderTable(columns, rows, limit = 200) {
  const table = h("table", {class: "data"},
    h("thead", {}, h("tr", {}, (columns || []).map((c) => h("th", {}, typeof c === "object" ? c.title || c.name : c)))));
  const body = h("tbody");
  for (const r of (rows || []).slice(0, limit)) {
    body.append(h("tr", {}, (Array.isArray(r) ? r : Object.values(r)).map((v) =>
      h("td", {}, typeof v === "number" ? fmtNumber(v, 2) : v === null ? "" : String(v)))));
  }
  table.append(body);
  return table;
}

function setAskStatus(text, cls = "muted small") {
  const el = $("#ask-status");
  el.textContent = text;
  el.className = cls;
}

function describeProgress(job) {
  const meta = job.meta || {};
  if (typeof meta.progress === "string") return meta.progress;
  if (meta.step || meta.stage) return String(meta.step || meta.stage);
  if (typeof meta.progress === "number") return `Working… ${Math.round(meta.progress * 100)}%`;
  return job.status === "queued" ? "Waiting for a worker…" : "Thinking…";
}

function jobError(job) {
  const r = job.result || {};
  const meta = job.meta || {};
  return r.message || r.error || meta.error || meta.message || job.error || "The chart could not be made.";
}

async function pollJob(jobId, onProgress) {
  for (let i = 0; i < POLL_LIMIT; i++) {
    const job = await api(JOB_URL(jobId));
    if (job.status === "finished" && job.result && !job.result.error) return job.result;
    if (["failed", "stopped", "canceled", "finished"].includes(job.status)) throw new Error(jobError(job));
    onProgress(describeProgress(job));
    await new Promise((r) => setTimeout(r, POLL_MS));
  }
  throw new Error("No answer yet: the chart is still being prepared. Try again in a moment.");
}

/** Ask the AI; returns the result, or throws Error with a message for the user. */
async function askQuestion(question, onProgress) {
  let started;
  try {
    started = await api(ASK_URL, {method: "POST", body: {question}});
  } catch (e) {
    if (e instanceof ApiError && e.status === 409) showAiOff(e.message);
    if (e instanceof ApiError && e.status === 404 && !e.body.error) {
      throw new Error("AI charts are not available on this Hub24 server yet; use the chart builder.");
    }
    throw e;
  }
  if (started && started.result && !started.job_id) return {result: started.result, jobId: null};
  api("/api/v1/dashboards/recent", {method: "POST", body: {question, job_id: started.job_id}})
    .then(loadRecent).catch(() => {});
  return {result: await pollJob(started.job_id, onProgress), jobId: started.job_id};
}

async function onAsk(ev) {
  ev.preventDefault();
  const question = $("#ask-input").value.trim();
  if (!question) { setAskStatus("Type a question first.", "error small"); return; }
  $("#ask-button").disabled = true;
  setAskStatus("Sending your question…");
  try {
    const {result} = await askQuestion(question, (t) => setAskStatus(t));
    setAskStatus("");
    showResult(result, {kind: "ask", question});
  } catch (e) {
    setAskStatus(e.message, "error small");
  } finally {
    $("#ask-button").disabled = false;
  }
}

function showAiOff(message) {
  const el = $("#ai-off");
  el.textContent = message;
  el.classList.remove("hidden");
  $("#ask-input").disabled = true;
  $("#ask-button").disabled = true;
}

function initAiNotice() {
  if (root.dataset.aiConfigured !== "yes") {
    showAiOff("AI answers are off: this Hub24 server has no OpenAI API key. To turn them on, whoever runs Hub24 " +
      "sets OPENAI_API_KEY (and, if needed, OPENAI_MODEL or OPENAI_BASE_URL for a compatible server) and restarts it. " +
      "The chart builder below works without AI.");
  } else if (root.dataset.aiEnabled !== "yes") {
    showAiOff("AI answers are switched off for this portal. A Bitrix24 administrator can switch them on in " +
      "Hub24 settings (Applications → Hub24 → Settings). The chart builder below works without AI.");
  }
}

// -- exports and saving --------------------------------------------------------------------------

function exportPng() {
  const chart = window.echarts && window.echarts.getInstanceByDom($("#result-chart"));
  if (!chart || !state.current) return;
  const bg = getComputedStyle(document.body).getPropertyValue("--card").trim() || "#fff";
  download(`${slug(state.current.result.title)}.png`, chart.getDataURL({type: "png", pixelRatio: 2, backgroundColor: bg}));
}

function exportCsv() {
  if (!state.current) return;
  const {columns, rows, title} = state.current.result;
  const url = URL.createObjectURL(new Blob(["\ufeff" + toCsv(columns, rows)], {type: "text/csv;charset=utf-8"}));
  download(`${slug(title)}.csv`, url);
  setTimeout(() => URL.revokeObjectURL(url), 5000);
}

function openSaveForm() {
  const sel = $("#save-target");
  sel.replaceChildren(...state.dashboards.filter((d) => d.mine).map((d) => h("option", {value: d.id}, d.title)),
    h("option", {value: "new"}, "New dashboard…"));
  if (state.active && state.dashboards.some((d) => d.id === state.active && d.mine)) sel.value = String(state.active);
  $("#save-new-title").classList.toggle("hidden", sel.value !== "new");
  $("#save-form").classList.remove("hidden");
}

async function onSave(ev) {
  ev.preventDefault();
  const {result, source} = state.current;
  const status = $("#save-status");
  try {
    let target = $("#save-target").value;
    if (target === "new") {
      const title = $("#save-new-title").value.trim() || "My dashboard";
      target = (await api("/api/v1/dashboards", {method: "POST", body: {title}})).id;
    }
    const body = {title: (result.title || source.question || "Chart").slice(0, 200), kind: source.kind,
                  chart_type: result.chart_type || "", result};
    if (source.kind === "ask") body.question = source.question; else body.spec = source.spec;
    await api(`/api/v1/dashboards/${target}/widgets`, {method: "POST", body});
    status.textContent = "Saved.";
    status.className = "ok small";
    $("#save-form").classList.add("hidden");
    state.active = Number(target);
    await loadDashboards();
  } catch (e) {
    status.textContent = e.message;
    status.className = "error small";
  }
}

// -- the builder ---------------------------------------------------------------------------------

function option(value, label) { return h("option", {value}, label); }

function currentEntity() { return state.catalog.find((e) => e.name === $("#b-entity").value); }

function fillBuilderFields() {
  const ent = currentEntity();
  const cols = ent ? ent.columns : [];
  const groupable = cols.filter((c) => c.role === "time" || c.role === "category");
  $("#b-dimension").replaceChildren(option("", "(nothing: one total)"),
    ...groupable.map((c) => option(c.name, c.title + (c.role === "time" ? " (date)" : ""))));
  const preferred = groupable.find((c) => /stage_id_label|assigned_by|created_time|category_id_label/.test(c.name));
  if (preferred) $("#b-dimension").value = preferred.name;
  $("#b-measure").replaceChildren(option("", "Number of records"),
    ...cols.filter((c) => c.role === "number" && c.name !== "id").map((c) => option(c.name, c.title)));
  $("#b-filters").replaceChildren();
  syncBuilderControls();
}

function syncBuilderControls() {
  const ent = currentEntity();
  const dim = ent && ent.columns.find((c) => c.name === $("#b-dimension").value);
  $("#b-bucket-field").classList.toggle("hidden", !dim || dim.role !== "time");
  const agg = $("#b-aggregation");
  if (!$("#b-measure").value) agg.value = "count";
  agg.disabled = !$("#b-measure").value;
}

function addFilterRow() {
  const ent = currentEntity();
  if (!ent) return;
  const row = h("div", {class: "row filter"},
    h("select", {class: "f-column", "aria-label": "Filter field"}, ent.columns.map((c) => option(c.name, c.title))),
    h("select", {class: "f-op", "aria-label": "Condition"}, [["=", "is"], ["!=", "is not"], [">", ">"], [">=", "≥"],
      ["<", "<"], ["<=", "≤"], ["contains", "contains"], ["is_null", "is empty"], ["not_null", "is not empty"]]
      .map(([v, l]) => option(v, l))),
    h("input", {type: "text", class: "f-value grow", placeholder: "value", maxlength: 200, "aria-label": "Value"}),
    h("button", {type: "button", class: "btn btn-light btn-sm", onclick: () => row.remove()}, "×"));
  $("#b-filters").append(row);
}

function builderSpec() {
  const dimension = $("#b-dimension").value || null;
  const ent = currentEntity();
  const dim = ent && ent.columns.find((c) => c.name === dimension);
  const measure = $("#b-measure").value || null;
  return {
    entity: $("#b-entity").value, dimension,
    bucket: dim && dim.role === "time" ? $("#b-bucket").value : null,
    measure, aggregation: measure ? $("#b-aggregation").value : "count",
    filters: [...document.querySelectorAll("#b-filters .filter")].map((r) => ({
      column: r.querySelector(".f-column").value, op: r.querySelector(".f-op").value,
      value: r.querySelector(".f-value").value})),
    chart_type: $("#b-chart").value,
  };
}

async function runBuild(spec) {
  const out = await api(BUILD_URL, {method: "POST", body: spec});
  if (out && out.job_id && !out.result) return pollJob(out.job_id, () => {});
  return out.result || out;
}

async function onBuild(ev) {
  ev.preventDefault();
  const status = $("#builder-status");
  const spec = builderSpec();
  if (!spec.entity) { status.textContent = "Nothing to build from yet: the CRM mirror is empty."; return; }
  status.className = "muted small";
  status.textContent = "Building…";
  $("#b-build").disabled = true;
  try {
    const result = await runBuild(spec);
    status.textContent = "";
    showResult(result, {kind: "build", spec});
  } catch (e) {
    status.className = "error small";
    status.textContent = e instanceof ApiError && e.status === 404 && !e.body.error
      ? "The chart builder is not available on this Hub24 server yet." : e.message;
  } finally {
    $("#b-build").disabled = false;
  }
}

async function loadCatalog() {
  try {
    const cat = await api("/api/v1/dashboards/catalog");
    state.catalog = cat.entities || [];
    const sel = $("#b-entity");
    sel.replaceChildren(...state.catalog.map((e) => option(e.name, e.title)));
    if (state.catalog.some((e) => e.name === "deals")) sel.value = "deals";
    if (!state.catalog.length) {
      $("#builder-status").textContent = "The CRM mirror is still empty: the builder lists fields once the first sync has run.";
    }
    fillBuilderFields();
  } catch (e) {
    $("#builder-status").textContent = e.message;
  }
}

// -- recent questions ----------------------------------------------------------------------------

async function loadRecent() {
  const list = $("#recent-list");
  try {
    const {questions} = await api("/api/v1/dashboards/recent");
    if (!questions.length) { list.replaceChildren(h("li", {class: "muted small"}, "None yet.")); return; }
    list.replaceChildren(...questions.map((q) => h("li", {},
      h("button", {type: "button", class: "linkish", title: fmtWhen(q.asked_at),
                   onclick: () => { $("#ask-input").value = q.question; $("#ask-form").requestSubmit(); }}, q.question))));
  } catch (e) {
    list.replaceChildren(h("li", {class: "error small"}, e.message));
  }
}

// -- dashboards ----------------------------------------------------------------------------------

async function loadDashboards() {
  const {dashboards} = await api("/api/v1/dashboards");
  state.dashboards = dashboards;
  if (!dashboards.some((d) => d.id === state.active)) state.active = dashboards.length ? dashboards[0].id : null;
  renderDashboards();
}

function activeDashboard() { return state.dashboards.find((d) => d.id === state.active) || null; }

function renderDashboards() {
  const tabs = $("#dashboard-tabs");
  tabs.replaceChildren(...state.dashboards.map((d) => h("button", {
    type: "button", class: d.id === state.active ? "active" : "", dataset: {id: d.id},
    onclick: () => { state.active = d.id; renderDashboards(); }}, d.title + (d.shared ? " ·shared" : ""))));
  const d = activeDashboard();
  const grid = $("#dashboard-widgets");
  for (const id of ["refresh-select", "refresh-now", "delete-dashboard"]) $("#" + id).disabled = !d;
  if (!d) {
    grid.replaceChildren(h("p", {class: "muted small"},
      "No dashboards yet: ask a question or build a chart, then “Save to dashboard”."));
    scheduleRefresh(null);
    return;
  }
  $("#refresh-select").value = String(d.refresh_s);
  $("#delete-dashboard").disabled = !d.mine;
  if (!d.widgets.length) grid.replaceChildren(h("p", {class: "muted small"}, "This dashboard has no charts yet."));
  else grid.replaceChildren(...d.widgets.map((w) => renderWidget(d, w)));
  scheduleRefresh(d);
}

function renderWidget(d, w) {
  const chartEl = h("div", {class: "chart mini"});
  const note = h("p", {class: "muted small"}, `Updated ${fmtWhen(w.refreshed_at)}`);
  const box = h("article", {class: "widget", dataset: {widgetId: w.id}},
    h("header", {},
      h("h3", {}, w.title),
      h("button", {type: "button", class: "btn btn-light btn-sm", title: "Refresh this chart",
                   onclick: () => refreshWidget(d, w).then(renderDashboards).catch((e) => { note.textContent = e.message; })}, "↻"),
      d.mine ? h("button", {type: "button", class: "btn btn-light btn-sm", title: "Remove from dashboard",
                            onclick: () => removeWidget(d, w)}, "×") : null),
    chartEl, note);
  const r = w.result || {};
  if (r.option && Object.keys(r.option).length && r.chart_type !== "table") {
    requestAnimationFrame(() => drawChart(chartEl, r.option));
  } else {
    chartEl.classList.remove("chart", "mini");
    chartEl.append(renderTable(r.columns, r.rows, 10));
  }
  return box;
}

/** A saved chart's fresh result: the builder spec again, or the answer's checked SQL again (no LLM call). */
async function rerun(w) {
  if (w.kind === "build") return runBuild(w.spec);
  const r = w.result || {};
  if (r.sql && r.spec) {
    try {
      const out = await api("/api/v1/charts/run", {method: "POST", body: {sql: r.sql, chart: r.spec, explanation: r.explanation || ""}});
      return Object.assign(out.result, {title: r.title || out.result.title, explanation: r.explanation || ""});
    } catch (e) {
      if (!(e instanceof ApiError) || e.status >= 500 || e.status === 401) throw e;
    }
  }
  return (await askQuestion(w.question, () => {})).result;  // the schema moved on: ask again
}

async function refreshWidget(d, w) {
  const result = await rerun(w);
  const saved = await api(`/api/v1/dashboards/${d.id}/widgets/${w.id}`, {method: "PUT", body: {result}});
  Object.assign(w, saved);
}

async function refreshDashboard(d) {
  for (const w of d.widgets) {
    try { await refreshWidget(d, w); } catch (e) { console.warn("refresh failed", w.id, e.message); }
  }
  if (state.active === d.id) renderDashboards();
}

function scheduleRefresh(d) {
  if (state.refreshTimer) clearInterval(state.refreshTimer);
  state.refreshTimer = null;
  if (d && d.refresh_s > 0) state.refreshTimer = setInterval(() => refreshDashboard(d), d.refresh_s * 1000);
}

async function removeWidget(d, w) {
  await api(`/api/v1/dashboards/${d.id}/widgets/${w.id}`, {method: "DELETE"});
  await loadDashboards();
}

async function onRefreshInterval() {
  const d = activeDashboard();
  if (!d) return;
  try {
    Object.assign(d, await api(`/api/v1/dashboards/${d.id}`, {method: "PATCH", body: {refresh_s: Number($("#refresh-select").value)}}));
    renderDashboards();
  } catch (e) {
    $("#refresh-select").value = String(d.refresh_s);
    alert(e.message);
  }
}

async function onDeleteDashboard() {
  const d = activeDashboard();
  if (!d || !confirm(`Delete the dashboard “${d.title}”?`)) return;
  await api(`/api/v1/dashboards/${d.id}`, {method: "DELETE"});
  state.active = null;
  await loadDashboards();
}

// -- sync status ---------------------------------------------------------------------------------

const ENTITY_TITLES = {deal: "Deals", lead: "Leads", contact: "Contacts", company: "Companies"};

async function loadSync() {
  let running = false;
  try {
    if (!loadSync.titled) {
      loadSync.titled = true;
      try {
        for (const [name, c] of Object.entries(await api("/api/v1/sync/config"))) if (c.title) ENTITY_TITLES[name] = c.title;
      } catch { /* titles are a nicety */ }
    }
    const st = await api("/api/v1/sync/status");
    const rows = [];
    let failed = 0, done = 0;
    for (const [name, e] of Object.entries(st.entities || {}).sort()) {
      const runs = Object.values(e.runs || {});
      const live = runs.find((r) => r.status === "running");
      const last = runs.sort((a, b) => (b.id || 0) - (a.id || 0))[0];
      running = running || !!live;
      if (last && last.status === "failed") failed++;
      if (e.full_completed_at) done++;
      const pct = live && typeof live.progress === "number" ? Math.round(live.progress * 100) : null;
      rows.push(h("div", {class: "sync-row", dataset: {entity: name}},
        h("div", {class: "row"},
          h("span", {class: "dot " + (live ? "run" : last && last.status === "failed" ? "bad" : e.full_completed_at ? "ok" : "")}),
          h("b", {class: "grow"}, ENTITY_TITLES[name] || name),
          h("span", {class: "small muted"}, live ? `${live.mode} ${pct !== null ? pct + "%" : "…"} · ${fmtNumber(live.rows_read)} read`
            : last ? `${last.status} ${fmtWhen(last.finished_at || last.started_at)}` : "not synced yet")),
        live ? h("div", {class: "progress"}, h("span", {style: `width:${pct ?? 5}%`})) : null,
        last && last.status === "failed" && last.error ? h("p", {class: "error small"}, last.error.slice(0, 200)) : null));
    }
    for (const job of st.jobs || []) {
      if (job.status === "queued") running = true;
    }
    $("#sync-list").replaceChildren(...(rows.length ? rows : [h("p", {class: "muted small"}, "Nothing mirrored yet.")]));
    if (st.paused) $("#sync-list").prepend(h("p", {class: "notice bad small"}, `Sync is paused: ${st.paused}`));
    $("#sync-dot").className = "dot " + (st.paused || failed ? "bad" : running ? "run" : done ? "ok" : "");
    $("#sync-text").textContent = st.paused ? "Sync paused" : running ? "Syncing…" : failed ? `${failed} sync failed`
      : done ? "CRM mirror up to date" : "Waiting for the first sync";
  } catch (e) {
    $("#sync-text").textContent = "Sync status unavailable";
    $("#sync-list").replaceChildren(h("p", {class: "error small"}, e.message));
  }
  state.syncTimer = setTimeout(loadSync, running ? 2000 : 15000);
}

// -- wiring --------------------------------------------------------------------------------------

function wire() {
  $("#ask-form").addEventListener("submit", onAsk);
  $("#sql-toggle").addEventListener("click", () => {
    const hidden = $("#result-sql").classList.toggle("hidden");
    $("#sql-toggle").textContent = hidden ? "Show SQL" : "Hide SQL";
  });
  $("#png-button").addEventListener("click", exportPng);
  $("#csv-button").addEventListener("click", exportCsv);
  $("#save-button").addEventListener("click", openSaveForm);
  $("#save-cancel").addEventListener("click", () => $("#save-form").classList.add("hidden"));
  $("#save-target").addEventListener("change", () =>
    $("#save-new-title").classList.toggle("hidden", $("#save-target").value !== "new"));
  $("#save-form").addEventListener("submit", onSave);
  $("#builder-form").addEventListener("submit", onBuild);
  $("#b-entity").addEventListener("change", fillBuilderFields);
  $("#b-dimension").addEventListener("change", syncBuilderControls);
  $("#b-measure").addEventListener("change", syncBuilderControls);
  $("#b-add-filter").addEventListener("click", addFilterRow);
  $("#refresh-select").addEventListener("change", onRefreshInterval);
  $("#refresh-now").addEventListener("click", () => { const d = activeDashboard(); if (d) refreshDashboard(d); });
  $("#delete-dashboard").addEventListener("click", onDeleteDashboard);
}

wire();
initAiNotice();
initFrame();
loadSync();
loadCatalog();
loadRecent();
loadDashboards().catch((e) => $("#dashboard-widgets").replaceChildren(h("p", {class: "error small"}, e.message)));
