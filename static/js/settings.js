// Settings (administrators only): AI on/off and model, what is synced and how often, the connection.
import {$, api, fmtWhen, h, initFrame} from "./hub24.js";

const INTERVALS = [[60, "1 minute"], [300, "5 minutes"], [900, "15 minutes"], [1800, "30 minutes"], [3600, "1 hour"],
                   [21600, "6 hours"], [86400, "1 day"]];

function say(el, text, ok) {
  el.textContent = text;
  el.className = "small " + (ok ? "ok" : "error");
}

function renderSettings(s) {
  $("#ai-enabled").checked = s.ai.enabled;
  $("#ai-model").value = s.ai.model || "";
  $("#ai-model").placeholder = s.ai.default_model;
  $("#ai-key-missing").classList.toggle("hidden", s.ai.key_configured);
  const c = s.connection;
  const last = c.last_sync;
  const facts = [
    ["Portal", c.domain], ["Status", c.needs_reinstall ? `needs reinstalling: ${c.reason || "authorisation lost"}` : c.status],
    ["Connected as", c.kind === "oauth_app" ? "installed application" : "incoming webhook"], ["Plan", c.plan],
    ["Installed", fmtWhen(c.installed_at)], ["Access token expires", fmtWhen(c.token_expires_at)],
    ["Last token refresh", fmtWhen(c.token_refreshed_at)],
    ["Last sync", last ? `${last.entity} ${last.mode}: ${last.status}, ${fmtWhen(last.finished_at || last.started_at)}` : "never"],
  ];
  $("#connection-facts").replaceChildren(...facts.flatMap(([k, v]) => [h("dt", {}, k), h("dd", {}, v || "—")]));
  $("#users-sync-row").classList.toggle("hidden", !s.users_sync_available);
}

async function loadSettings() {
  try { renderSettings(await api("/api/v1/settings")); } catch (e) { say($("#ai-status"), e.message, false); }
}

async function loadSync() {
  try {
    const cfg = await api("/api/v1/sync/config");
    $("#sync-rows").replaceChildren(...Object.entries(cfg).map(([name, c]) => h("tr", {dataset: {entity: name}},
      h("td", {}, c.title || name),
      h("td", {}, h("input", {type: "checkbox", class: "s-enabled", checked: c.enabled, "aria-label": `Sync ${name}`})),
      h("td", {}, h("select", {class: "s-interval", "aria-label": `Interval for ${name}`},
        ...INTERVALS.concat(INTERVALS.some(([v]) => v === c.interval_s) ? [] : [[c.interval_s, `${c.interval_s} s`]])
          .map(([v, l]) => h("option", {value: v, selected: v === c.interval_s}, l)))),
      h("td", {}, h("input", {type: "checkbox", class: "s-realtime", checked: c.realtime, "aria-label": `Real-time ${name}`})))));
  } catch (e) {
    $("#sync-rows").replaceChildren(h("tr", {}, h("td", {colspan: 4, class: "error"}, e.message)));
  }
}

$("#ai-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {ai_enabled: $("#ai-enabled").checked};
  const model = $("#ai-model").value.trim();
  if (model) body.ai_model = model;
  try { renderSettings(await api("/api/v1/settings", {method: "PUT", body})); say($("#ai-status"), "Saved.", true); }
  catch (e) { say($("#ai-status"), e.message, false); }
});

$("#sync-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  const body = {};
  for (const tr of document.querySelectorAll("#sync-rows tr[data-entity]")) {
    body[tr.dataset.entity] = {enabled: tr.querySelector(".s-enabled").checked,
      interval_s: Number(tr.querySelector(".s-interval").value), realtime: tr.querySelector(".s-realtime").checked};
  }
  try { await api("/api/v1/sync/config", {method: "PUT", body}); say($("#sync-status"), "Saved.", true); await loadSync(); }
  catch (e) { say($("#sync-status"), e.message, false); }
});

$("#users-sync").addEventListener("click", async () => {
  $("#users-sync").disabled = true;
  try { await api("/api/v1/users/sync", {method: "POST"}); say($("#users-sync-status"), "User sync started.", true); }
  catch (e) { say($("#users-sync-status"), e.message, false); }
  finally { $("#users-sync").disabled = false; }
});

initFrame();
loadSettings();
loadSync();
