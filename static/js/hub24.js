// Shared by every Hub24 frame page: the API client (bearer frame token), the Bitrix24 JS SDK frame
// (size, slider links), ECharts set-up with the Hub24 theme, and small DOM helpers.

const SDK_INIT_TIMEOUT_MS = 4000;
let framePromise = null;

/** The Bitrix24 frame ($b24) or null outside Bitrix24 / without the SDK. Resolves once. */
export function initFrame() {
  if (framePromise) return framePromise;
  framePromise = (async () => {
    if (!window.B24Js || !window.name || window.parent === window) return null;
    try {
      const timeout = new Promise((resolve) => setTimeout(() => resolve(null), SDK_INIT_TIMEOUT_MS));
      const $b24 = await Promise.race([window.B24Js.initializeB24Frame(), timeout]);
      if ($b24) keepFitted($b24);
      return $b24;
    } catch (e) {
      console.warn("Bitrix24 frame unavailable:", e && e.message);
      return null;
    }
  })();
  return framePromise;
}

function keepFitted($b24) {
  let last = 0, pending = null;
  const fit = () => {
    pending = null;
    const h = Math.ceil(document.documentElement.scrollHeight);
    if (Math.abs(h - last) < 4) return;
    last = h;
    $b24.parent.fitWindow().catch(() => {});
  };
  const schedule = () => { if (!pending) pending = setTimeout(fit, 120); };
  new ResizeObserver(schedule).observe(document.body);
  fit();
}

/** Open a portal path (e.g. /crm/deal/details/5/) in Bitrix24's slider; a new tab outside Bitrix24. */
export async function openPortalPath(path) {
  const $b24 = await initFrame();
  if ($b24) {
    try { return await $b24.slider.openPath($b24.slider.getUrl(path)); } catch (e) { console.warn(e); }
  }
  window.open((window.HUB24.portalUrl || "") + path, "_blank", "noopener");
}

/** Links marked data-portal-path open through the SDK. */
export function wirePortalLinks(root = document) {
  root.addEventListener("click", (ev) => {
    const a = ev.target.closest("a[data-portal-path]");
    if (!a) return;
    ev.preventDefault();
    openPortalPath(a.dataset.portalPath);
  });
}

export class ApiError extends Error {
  constructor(status, body) {
    super((body && body.message) || `HTTP ${status}`);
    this.status = status;
    this.body = body || {};
  }
}

/** JSON API call with the frame token; throws ApiError with the server's message on 4xx/5xx. */
export async function api(url, {method = "GET", body} = {}) {
  const opts = {method, headers: {Accept: "application/json"}};
  if (body !== undefined) {
    opts.body = JSON.stringify(body);
    opts.headers["Content-Type"] = "application/json";
  }
  const resp = await window.hub24Fetch(url, opts);
  let data = null;
  if (resp.status !== 204) {
    const text = await resp.text();
    try { data = text ? JSON.parse(text) : null; } catch { data = {message: text.slice(0, 200)}; }
  }
  if (!resp.ok) throw new ApiError(resp.status, data);
  return data;
}

export const $ = (sel, root = document) => root.querySelector(sel);

/** Create an element: h("div", {class: "x", onclick: f}, "text", child). */
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith("on")) el.addEventListener(k.slice(2), v);
    else if (k === "class") el.className = v;
    else if (k === "dataset") Object.assign(el.dataset, v);
    else el.setAttribute(k, v === true ? "" : v);
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    el.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return el;
}

export function isDark() {
  const forced = document.documentElement.dataset.theme;
  if (forced) return forced === "dark";
  return window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
}

const PALETTE = ["#2fc6f6", "#9dcf00", "#ffa900", "#ff5752", "#8f6bd8", "#00b4ac", "#2067b0", "#f7a3c3", "#a1a6ac"];

function registerThemes() {
  if (!window.echarts || registerThemes.done) return;
  registerThemes.done = true;
  window.echarts.registerTheme("hub24", {color: PALETTE, backgroundColor: "transparent",
    textStyle: {fontFamily: "Open Sans, Helvetica Neue, Arial, sans-serif", color: "#333"}});
  window.echarts.registerTheme("hub24-dark", {color: PALETTE, backgroundColor: "transparent",
    textStyle: {fontFamily: "Open Sans, Helvetica Neue, Arial, sans-serif", color: "#e6e8ea"},
    legend: {textStyle: {color: "#e6e8ea"}}, title: {textStyle: {color: "#e6e8ea"}},
    categoryAxis: {axisLabel: {color: "#c5cad0"}, axisLine: {lineStyle: {color: "#5a6068"}}},
    valueAxis: {axisLabel: {color: "#c5cad0"}, splitLine: {lineStyle: {color: "#3a3f47"}}}});
}

/** Draw an ECharts option into `el` (replacing what was there); returns the chart instance. */
export function drawChart(el, option) {
  if (!window.echarts) {
    el.replaceChildren(h("p", {class: "error"}, "ECharts is missing from static/vendor (run make vendor)."));
    return null;
  }
  registerThemes();
  const old = window.echarts.getInstanceByDom(el);
  if (old) old.dispose();
  const chart = window.echarts.init(el, isDark() ? "hub24-dark" : "hub24", {renderer: "canvas"});
  const opt = Object.assign({animation: false}, option || {});
  if (!opt.grid && (opt.xAxis || opt.yAxis)) opt.grid = {left: 8, right: 16, top: 28, bottom: 8, containLabel: true};
  chart.setOption(opt, true);
  if (!drawChart.observed) {
    drawChart.observed = new WeakSet();
  }
  if (!drawChart.observed.has(el)) {
    drawChart.observed.add(el);
    new ResizeObserver(() => { const c = window.echarts.getInstanceByDom(el); if (c) c.resize(); }).observe(el);
  }
  return chart;
}

/** A result's table (columns, rows) as CSV text (RFC 4180 quoting). */
export function toCsv(columns, rows) {
  const cell = (v) => {
    if (v === null || v === undefined) return "";
    const s = typeof v === "object" ? JSON.stringify(v) : String(v);
    return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  const lines = [(columns || []).map((c) => cell(typeof c === "object" && c ? (c.title || c.name) : c)).join(",")];
  for (const r of rows || []) lines.push((Array.isArray(r) ? r : Object.values(r)).map(cell).join(","));
  return lines.join("\r\n") + "\r\n";
}

export function download(filename, href) {
  const a = h("a", {href, download: filename, class: "hidden"});
  document.body.append(a);
  a.click();
  a.remove();
}

export function slug(text) {
  return (text || "chart").toLowerCase().replace(/[^a-z0-9]+/g, "-").replace(/^-|-$/g, "").slice(0, 60) || "chart";
}

export function fmtNumber(v, digits = 0) {
  if (v === null || v === undefined || Number.isNaN(v)) return "—";
  return Number(v).toLocaleString(undefined, {maximumFractionDigits: digits});
}

export function fmtWhen(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
