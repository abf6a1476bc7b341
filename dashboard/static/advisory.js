// The advisory group's page: live bottom-2-box alerts, one alert's detail and
// its actions, and the survey charts.
import {
  $, api, channelBadge, clearBanner, debounce, errorText, fmtDateTime, fmtRelative, fmtWhen, h,
  label, liveSocket, requireToken, showBanner, statusBadge, timeEl,
} from "/static/common.js";

const STATUSES = ["open", "escalated", "acknowledged", "resolved"];
const DEFAULT_STATUSES = ["open", "escalated", "acknowledged"];
const LIST_LIMIT = 200;
const MAX_ROWS = 500;
const MAX_KEPT = 2000;
const CHART_REFRESH_MS = 60_000;
const CHART_AFTER_ALERT_MS = 3_000;

const alerts = new Map(); // alert_id -> newest alert seen
let selectedId = null;
let filters = readFiltersFromUrl();
let loadSeq = 0;

// --- filters -------------------------------------------------------------------

function readFiltersFromUrl() {
  const params = new URLSearchParams(location.search);
  const status = params.get("status");
  const statuses = status
    ? status.split(",").map((s) => s.trim()).filter((s) => STATUSES.includes(s))
    : DEFAULT_STATUSES;
  return {
    statuses: new Set(statuses),
    category: params.get("category") || "",
    queue: params.get("queue") || "",
    agent: params.get("agent") || "",
  };
}

function writeFiltersToForm() {
  for (const status of STATUSES) $(`#f-status-${status}`).checked = filters.statuses.has(status);
  $("#f-category").value = filters.category;
  $("#f-queue").value = filters.queue;
  $("#f-agent").value = filters.agent;
}

function readFiltersFromForm() {
  return {
    statuses: new Set(STATUSES.filter((s) => $(`#f-status-${s}`).checked)),
    category: $("#f-category").value,
    queue: $("#f-queue").value.trim(),
    agent: $("#f-agent").value.trim(),
  };
}

function filterParams() {
  const params = new URLSearchParams();
  // No status ticked means "show nothing" on screen; ask for all so the list
  // is ready when one is ticked again.
  const statuses = filters.statuses.size ? [...filters.statuses] : STATUSES;
  params.set("status", STATUSES.filter((s) => statuses.includes(s)).join(","));
  if (filters.category) params.set("category", filters.category);
  if (filters.queue) params.set("queue", filters.queue);
  if (filters.agent) params.set("agent", filters.agent);
  return params;
}

// Kept in the address bar so a reload or a shared link shows the same list.
function writeFiltersToUrl() {
  const params = filterParams();
  if (!filters.statuses.size) params.set("status", "");
  const defaults = params.get("status") === DEFAULT_STATUSES.join(",");
  if (defaults) params.delete("status");
  const query = params.toString();
  history.replaceState(history.state, "", location.pathname + (query ? `?${query}` : ""));
}

function matches(alert) {
  if (!filters.statuses.has(alert.status)) return false;
  if (filters.category && alert.category !== filters.category) return false;
  if (filters.queue && alert.queue !== filters.queue) return false;
  if (filters.agent && alert.agent_id !== filters.agent) return false;
  return true;
}

function onFiltersChanged() {
  filters = readFiltersFromForm();
  writeFiltersToUrl();
  renderList();
  loadAlerts();
}

// --- the list --------------------------------------------------------------------

function newer(incoming, current) {
  return !current || (incoming.version ?? 0) > (current.version ?? 0);
}

function raisedMs(alert) {
  const t = Date.parse(alert.raised_at);
  return Number.isNaN(t) ? 0 : t;
}

function byNewest(a, b) {
  return raisedMs(b) - raisedMs(a) || String(b.alert_id).localeCompare(String(a.alert_id));
}

async function loadAlerts() {
  const seq = ++loadSeq;
  const params = filterParams();
  params.set("limit", String(LIST_LIMIT));
  try {
    const data = await api(`/api/alerts?${params}`);
    if (seq !== loadSeq) return; // a later filter change has its own load under way
    clearBanner("load");
    for (const alert of data?.alerts || []) {
      if (newer(alert, alerts.get(alert.alert_id))) alerts.set(alert.alert_id, alert);
    }
    renderList();
  } catch (err) {
    if (seq !== loadSeq) return;
    // A refused token has its own banner already (see api()).
    if (err.status !== 401) showBanner(`Cannot load alerts: ${errorText(err)}`, { id: "load" });
  } finally {
    if (seq === loadSeq) $("#alerts-loading").hidden = true;
    updateCount();
  }
}

function rowFor(alert) {
  const row = h(
    "tr",
    {
      class: `alert-row status-row-${alert.status}`,
      dataset: { alertId: alert.alert_id, version: String(alert.version ?? "") },
      tabindex: "0",
      "aria-selected": alert.alert_id === selectedId ? "true" : "false",
    },
    h("td", { class: "col-time raised-at" }, timeEl(alert.raised_at, { short: true })),
    h("td", { class: `status status-${alert.status}` }, alert.status),
    h("td", { class: "col-score score" }, `${alert.score ?? "?"}/${alert.scale_max ?? "?"}`),
    h("td", { class: "col-category category" },
      h("span", { class: `cat cat-${alert.category}` }, label(alert.category))),
    h("td", { class: "col-customer customer" }, alert.customer_id),
    h("td", { class: "col-queue queue" }, alert.queue || "–"),
    h("td", { class: "col-agent agent" }, alert.agent_id || "–"),
    h("td", { class: "col-comment comment", title: alert.comment || "" },
      alert.comment ? alert.comment : h("span", { class: "muted" }, "no comment")),
  );
  if (alert.alert_id === selectedId) row.classList.add("selected");
  return row;
}

// The selected alert stays listed while its detail is open, even once it no
// longer matches the filters (e.g. just resolved), so it does not vanish
// from under the person working on it.
function markStale(row) {
  row.classList.add("stale");
  row.title = "No longer matches the filters; leaves the list when the detail is closed.";
}

function renderList() {
  const tbody = $("#alerts");
  const visible = [...alerts.values()].filter(
    (a) => matches(a) || a.alert_id === selectedId,
  ).sort(byNewest).slice(0, MAX_ROWS);
  tbody.replaceChildren(...visible.map((alert) => {
    const row = rowFor(alert);
    if (!matches(alert)) markStale(row);
    return row;
  }));
  updateCount();
}

// One alert changed: update its row in place, insert it at its place, or drop
// it, without rebuilding the table (keeps focus and the highlight animation).
function upsertRow(alert, { flash = false } = {}) {
  const tbody = $("#alerts");
  const existing = tbody.querySelector(`tr[data-alert-id="${CSS.escape(alert.alert_id)}"]`);
  const keep = matches(alert) || alert.alert_id === selectedId;
  if (!keep) {
    existing?.remove();
    updateCount();
    return;
  }
  const row = rowFor(alert);
  if (!matches(alert)) markStale(row);
  if (existing) {
    existing.replaceWith(row);
  } else {
    const before = [...tbody.children].find((r) => {
      const other = alerts.get(r.dataset.alertId);
      return other && byNewest(alert, other) < 0;
    });
    tbody.insertBefore(row, before || null);
    while (tbody.children.length > MAX_ROWS) tbody.lastElementChild.remove();
  }
  if (flash) row.classList.add("flash");
  updateCount();
}

function updateCount() {
  const tbody = $("#alerts");
  const shown = tbody.querySelectorAll("tr:not(.stale)").length;
  $("#alerts-empty").hidden = shown > 0 || !$("#alerts-loading").hidden;
  $("#feed-count").textContent = `${shown} alert${shown === 1 ? "" : "s"} shown`;
}

// A message from /ws/alerts, or an action's reply: the newest version wins.
function receive(alert, { live = false } = {}) {
  if (!alert?.alert_id) return;
  const current = alerts.get(alert.alert_id);
  if (!newer(alert, current)) return;
  alerts.set(alert.alert_id, alert);
  if (alerts.size > MAX_KEPT) prune();
  const fresh = !current;
  upsertRow(alert, { flash: live });
  if (alert.alert_id === selectedId) renderDetail(alert);
  if (live && (fresh || alert.event === "raised")) chartsSoon();
}

// A page left open for days must not hold every alert ever raised: forget the
// oldest ones that are not on screen.
function prune() {
  const hidden = [...alerts.values()]
    .filter((a) => !matches(a) && a.alert_id !== selectedId)
    .sort(byNewest);
  for (const alert of hidden.slice(Math.max(0, hidden.length - (alerts.size - MAX_KEPT)))) {
    alerts.delete(alert.alert_id);
  }
}

function onSocketMessage(message) {
  if (message?.type === "alert") receive(message.alert, { live: true });
  else if (message?.type === "hello") {
    const who = message.subject || message.actor || message.sub;
    if (who) $("#conn").dataset.subject = who;
  }
}

// --- the detail panel ---------------------------------------------------------------

function select(alertId) {
  const previous = selectedId;
  selectedId = alertId;
  for (const row of $("#alerts").querySelectorAll("tr.selected")) {
    row.classList.remove("selected");
    row.setAttribute("aria-selected", "false");
  }
  // The previously selected row may have stayed only because it was selected.
  if (previous && previous !== alertId) {
    const old = alerts.get(previous);
    if (old && !matches(old)) upsertRow(old);
  }
  const row = $("#alerts").querySelector(`tr[data-alert-id="${CSS.escape(alertId)}"]`);
  row?.classList.add("selected");
  row?.setAttribute("aria-selected", "true");
  clearActionMessages();
  $("#action-note").value = "";
  $("#resolve-category").value = "";
  $("#callback-outcome").value = "reached";
  const cached = alerts.get(alertId);
  $("#detail").hidden = false;
  document.body.classList.add("detail-open");
  if (cached) renderDetail(cached);
  else renderDetailLoading(alertId);
  // The list may hold an abridged or older copy; the single read is the truth.
  api(`/api/alerts/${encodeURIComponent(alertId)}`)
    .then((data) => {
      const alert = data?.alert_id ? data : data?.alert;
      if (!alert) return;
      const current = alerts.get(alertId);
      if (!current || (alert.version ?? 0) >= (current.version ?? 0)) {
        alerts.set(alertId, alert);
        upsertRow(alert);
        if (selectedId === alertId) renderDetail(alert);
      }
    })
    .catch((err) => {
      if (selectedId === alertId) showActionError(`Cannot load the alert: ${errorText(err)}`);
    });
}

function closeDetail() {
  const previous = selectedId;
  selectedId = null;
  $("#detail").hidden = true;
  document.body.classList.remove("detail-open");
  for (const row of $("#alerts").querySelectorAll("tr.selected")) {
    row.classList.remove("selected");
    row.setAttribute("aria-selected", "false");
  }
  const old = previous && alerts.get(previous);
  if (old && !matches(old)) upsertRow(old);
}

function renderDetailLoading(alertId) {
  $("#detail-title").replaceChildren(alertId);
  $("#detail-sub").replaceChildren("Loading…");
  $("#detail-body").replaceChildren();
  setButtons(null);
}

function section(title, ...children) {
  return h("section", { class: "detail-section" }, h("h3", {}, title), ...children);
}

function dl(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).flatMap(([k, v]) => [
    h("dt", {}, k),
    h("dd", {}, v === null || v === undefined || v === "" ? h("span", { class: "muted" }, "–") : v),
  ]));
}

function chips(items, cls = "chip") {
  if (!items?.length) return h("span", { class: "muted" }, "none");
  return h("span", { class: "chips" }, items.map((item) => h("span", { class: cls }, label(item))));
}

function renderDetail(alert) {
  const body = $("#detail-body");
  const scroll = body.scrollTop;
  const panel = $("#detail");
  // Not data-alert-id: that attribute marks the list rows, and tests select
  // `[data-alert-id=...] .status`, which must find exactly one element.
  panel.dataset.detailId = alert.alert_id;
  panel.dataset.status = alert.status;

  $("#detail-title").replaceChildren(
    h("span", { class: "detail-id" }, alert.alert_id), " ",
    statusBadge(alert.status, { cls: "badge detail-status" }),
  );
  $("#detail-title").querySelector(".detail-status").id = "detail-status";
  $("#detail-sub").replaceChildren(
    "Customer ", h("strong", {}, alert.customer_id), " · raised ", timeEl(alert.raised_at),
  );

  const scale = `${alert.scale_min ?? 1}–${alert.scale_max ?? 5}`;
  const survey = section(
    "Survey",
    h("div", { class: "survey-head" },
      h("div", { class: `score-big score-${alert.score === alert.scale_min ? "min" : "low"}` },
        String(alert.score ?? "?"), h("span", { class: "score-of" }, `/${alert.scale_max ?? "?"}`)),
      h("blockquote", { class: "survey-comment" },
        alert.comment ? `“${alert.comment}”` : h("span", { class: "muted" }, "no comment"))),
    dl([
      ["Scale", scale],
      ["Reason codes", chips(alert.reason_codes)],
      ["Category", h("span", { class: `cat cat-${alert.category}` }, label(alert.category))],
      ["Why", alert.category_reasons?.length
        ? h("ul", { class: "plain" }, alert.category_reasons.map((r) => h("li", {}, r)))
        : h("span", { class: "muted" }, alert.category_rule ? `rule ${alert.category_rule}` : "no rule matched")],
      alert.category_rule ? ["Rule", alert.category_rule] : null,
      ["Agent", alert.agent_id],
      ["Queue", alert.queue],
      ["Survey at", timeEl(alert.survey_occurred_at)],
      ["Latency", alert.latency_ms !== undefined ? `${alert.latency_ms} ms` : null],
      ["Ack by", alert.ack_deadline ? timeEl(alert.ack_deadline) : null],
    ]),
  );

  const rated = alert.rated_contact;
  const ratedSection = section(
    "Rated contact",
    rated
      ? dl([
        ["Channel", channelBadge(rated.channel)],
        ["Type", rated.type],
        ["When", timeEl(rated.occurred_at)],
        ["Intent", rated.payload?.intent],
        ["Queue", rated.payload?.queue],
        ["Agent", rated.payload?.agent_id],
        ["Outcome", rated.payload?.outcome ? label(rated.payload.outcome) : null],
        rated.payload?.transfers !== undefined ? ["Transfers", String(rated.payload.transfers)] : null,
        rated.payload?.subject ? ["Subject", rated.payload.subject] : null,
      ])
      : h("p", { class: "muted" }, alert.contact_id
        ? `The rated contact (${alert.contact_id}) is not in the customer's timeline.`
        : "The survey does not name the contact it rates."),
  );

  const context = alert.context || [];
  const contextSection = section(
    `Recent timeline (${context.length})`,
    context.length
      ? h("ol", { class: "timeline" }, context.map((entry) => h(
        "li",
        { class: `tl-item${entry.rated ? " rated" : ""}`, dataset: { eventId: entry.event_id } },
        h("div", { class: "tl-when" }, timeEl(entry.occurred_at, { short: true })),
        h("div", { class: "tl-what" },
          channelBadge(entry.channel), " ", h("span", { class: "tl-type" }, entry.type),
          entry.rated ? h("span", { class: "tag tag-rated" }, "rated") : null,
          h("div", { class: "tl-summary" }, summarise(entry))),
      )))
      : h("p", { class: "muted" }, "No earlier interactions."),
  );

  const history = alert.history || [];
  const historySection = section(
    "History",
    h("ol", { class: "history" }, history.map((step) => h(
      "li", { dataset: { event: step.event } },
      h("span", { class: "hist-when" }, timeEl(step.at, { short: true, relative: false })),
      h("div", { class: "hist-what" },
        h("strong", {}, label(step.event)),
        step.actor ? ` by ${step.actor}` : "",
        step.outcome ? h("span", { class: "chip" }, label(step.outcome)) : null,
        step.category_from
          ? ` (category ${label(step.category_from)} → ${label(alert.category)})` : "",
        step.note ? h("div", { class: "hist-note" }, step.note) : null),
    ))),
  );

  body.replaceChildren(survey, ratedSection, contextSection, historySection);
  body.scrollTop = scroll;
  setButtons(alert);
}

// A line of what matters in a timeline entry, whatever its channel.
export function summarise(entry) {
  const p = entry.payload || {};
  const parts = [];
  if (p.intent) parts.push(`intent ${p.intent}`);
  if (p.queue) parts.push(`queue ${p.queue}`);
  if (p.agent_id) parts.push(`agent ${p.agent_id}`);
  if (p.outcome) parts.push(label(p.outcome));
  if (p.subject) parts.push(`“${p.subject}”`);
  if (p.score !== undefined && p.score !== null) parts.push(`score ${p.score}/${p.scale_max ?? 5}`);
  if (p.comment) parts.push(`“${p.comment}”`);
  if (p.text) parts.push(`“${p.text}”`);
  return parts.join(" · ");
}

// Mirrors the worker's lifecycle: acknowledge from open or escalated, then
// call-backs and resolve once acknowledged. Resolve stays clickable for any
// unresolved alert so the service can say why it refuses (the lifecycle
// requires an acknowledgement first).
function setButtons(alert) {
  const status = alert?.status;
  $("#ack").disabled = !(status === "open" || status === "escalated");
  $("#callback").disabled = status !== "acknowledged";
  $("#callback-outcome").disabled = status !== "acknowledged";
  $("#resolve").disabled = !status || status === "resolved";
  $("#resolve-category").disabled = !status || status === "resolved";
  $("#action-note").disabled = !status || status === "resolved";
  const hint = {
    open: "Take ownership before calling the customer back.",
    escalated: "Not acknowledged in time: take ownership now.",
    acknowledged: `Acknowledged${alert?.acknowledged_by ? ` by ${alert.acknowledged_by}` : ""}.`,
    resolved: `Resolved${alert?.resolved_by ? ` by ${alert.resolved_by}` : ""}.`,
  }[status] || "";
  $("#ack-hint").textContent = hint;
}

function clearActionMessages() {
  $("#action-error").hidden = true;
  $("#action-error").textContent = "";
  $("#action-ok").hidden = true;
  $("#action-ok").textContent = "";
}

function showActionError(message) {
  $("#action-ok").hidden = true;
  $("#action-error").textContent = message;
  $("#action-error").hidden = false;
}

async function act(kind) {
  const alertId = selectedId;
  if (!alertId) return;
  const note = $("#action-note").value.trim();
  const body = {};
  if (note) body.note = note;
  if (kind === "callback") body.outcome = $("#callback-outcome").value;
  if (kind === "resolve" && $("#resolve-category").value) body.category = $("#resolve-category").value;
  const path = { ack: "ack", callback: "callback", resolve: "resolve" }[kind];
  const buttons = ["#ack", "#callback", "#resolve"].map((s) => $(s));
  const wasDisabled = buttons.map((b) => b.disabled);
  for (const b of buttons) b.disabled = true;
  $("#detail").setAttribute("aria-busy", "true");
  clearActionMessages();
  try {
    const data = await api(`/api/alerts/${encodeURIComponent(alertId)}/${path}`, {
      method: "POST", body,
    });
    const alert = data?.alert_id ? data : data?.alert;
    if (selectedId === alertId) {
      $("#action-note").value = "";
      $("#action-ok").textContent = {
        ack: "Acknowledged.", callback: "Call-back recorded.", resolve: "Resolved.",
      }[kind];
      $("#action-ok").hidden = false;
    }
    if (alert) receive(alert);
    const current = alerts.get(alertId);
    if (selectedId === alertId && current) renderDetail(current);
  } catch (err) {
    if (selectedId === alertId) {
      showActionError(errorText(err));
      buttons.forEach((b, i) => { b.disabled = wasDisabled[i]; });
    }
  } finally {
    $("#detail").removeAttribute("aria-busy");
  }
}

// --- charts ------------------------------------------------------------------------

const charts = {};
const COLORS = {
  bottom2: "#c0392b",
  bottom2Fill: "rgba(192, 57, 43, 0.28)",
  top2: "#2e7d32",
  share: "#8e2a1f",
  grid: "rgba(31, 41, 51, 0.08)",
  text: "#52606d",
};

function periodLabel(period, kind) {
  if (kind === "hour") return String(period).slice(11, 16) || period;
  const date = new Date(`${period}T00:00:00Z`);
  if (Number.isNaN(date.getTime())) return period;
  return date.toLocaleDateString(undefined, { day: "numeric", month: "short", timeZone: "UTC" });
}

function percent(share) {
  return share === null || share === undefined ? null : Math.round(share * 1000) / 10;
}

function chartConfig(rows, kind) {
  return {
    data: {
      labels: rows.map((r) => periodLabel(r.period, kind)),
      datasets: [
        {
          type: "line",
          label: "bottom-2-box share",
          data: rows.map((r) => percent(r.bottom2_share)),
          yAxisID: "share",
          borderColor: COLORS.share,
          backgroundColor: COLORS.share,
          borderWidth: 2,
          pointRadius: 2,
          tension: 0.25,
          spanGaps: false,
          order: 1,
        },
        {
          type: "line",
          label: "top-2-box share",
          data: rows.map((r) => percent(r.top2_share)),
          yAxisID: "share",
          borderColor: COLORS.top2,
          backgroundColor: COLORS.top2,
          borderWidth: 2,
          borderDash: [5, 3],
          pointRadius: 2,
          tension: 0.25,
          spanGaps: false,
          order: 2,
        },
        {
          type: "bar",
          label: "bottom-2-box surveys",
          data: rows.map((r) => r.bottom2 ?? 0),
          yAxisID: "count",
          backgroundColor: COLORS.bottom2Fill,
          borderColor: COLORS.bottom2,
          borderWidth: 1,
          order: 3,
        },
      ],
    },
    options: {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      plugins: {
        legend: {
          position: "bottom",
          labels: { boxWidth: 12, boxHeight: 8, color: COLORS.text, font: { size: 11 } },
        },
        tooltip: {
          callbacks: {
            title: (items) => rows[items[0].dataIndex]?.period ?? "",
            label: (item) => {
              const v = item.parsed.y;
              if (item.dataset.yAxisID === "share") {
                return `${item.dataset.label}: ${v === null ? "–" : `${v}%`}`;
              }
              return `${item.dataset.label}: ${v}`;
            },
            footer: (items) => {
              const r = rows[items[0].dataIndex];
              if (!r) return "";
              const mean = r.mean === null || r.mean === undefined ? "–" : r.mean.toFixed(2);
              return `responses: ${r.responses ?? 0} · mean: ${mean}`;
            },
          },
        },
      },
      scales: {
        x: {
          grid: { display: false },
          ticks: { color: COLORS.text, font: { size: 10 }, maxRotation: 0, autoSkipPadding: 8 },
        },
        count: {
          type: "linear",
          position: "left",
          beginAtZero: true,
          grid: { color: COLORS.grid },
          ticks: { color: COLORS.text, font: { size: 10 }, precision: 0 },
          title: { display: true, text: "bottom-2-box", color: COLORS.text, font: { size: 10 } },
        },
        share: {
          type: "linear",
          position: "right",
          min: 0,
          max: 100,
          grid: { drawOnChartArea: false },
          ticks: { color: COLORS.text, font: { size: 10 }, callback: (v) => `${v}%` },
          title: { display: true, text: "share", color: COLORS.text, font: { size: 10 } },
        },
      },
    },
  };
}

function chartNote(canvasId, text) {
  const note = document.querySelector(`.chart-empty[data-for="${canvasId}"]`);
  note.textContent = text || "";
  note.hidden = !text;
}

async function drawChart(canvasId, query, kind) {
  if (typeof window.Chart !== "function") {
    chartNote(canvasId, "Charts unavailable: /static/vendor/chart.umd.min.js did not load.");
    return;
  }
  let rows;
  try {
    const data = await api(`/api/metrics/surveys?${query}`);
    rows = data?.rows || [];
  } catch (err) {
    chartNote(canvasId, `Cannot load the metrics: ${errorText(err)}`);
    return;
  }
  const responses = rows.reduce((n, r) => n + (r.responses || 0), 0);
  chartNote(canvasId, responses ? "" : "No survey responses in this period yet.");
  const config = chartConfig(rows, kind);
  const chart = charts[canvasId];
  if (chart) {
    chart.data = config.data;
    chart.options = config.options;
    chart.update("none");
  } else {
    charts[canvasId] = new window.Chart($(`#${canvasId}`), config);
  }
  $(`#${canvasId}`).dataset.rows = String(rows.length);
}

function refreshCharts() {
  return Promise.all([
    drawChart("chart-hourly", "period=hour&hours=24", "hour"),
    drawChart("chart-daily", "period=day&days=30", "day"),
  ]);
}

const chartsSoon = debounce(refreshCharts, CHART_AFTER_ALERT_MS);

// --- wiring --------------------------------------------------------------------------

function refreshRelativeTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[datetime] .rel")) {
    const value = el.parentElement.getAttribute("datetime");
    el.textContent = fmtRelative(value, now);
  }
  for (const el of document.querySelectorAll("td.raised-at time[datetime]")) {
    el.firstChild.textContent = fmtWhen(el.getAttribute("datetime"));
  }
}

function wire() {
  writeFiltersToForm();
  const form = $("#filters");
  form.addEventListener("submit", (e) => e.preventDefault());
  for (const el of form.querySelectorAll("input[type=checkbox], select")) {
    el.addEventListener("change", onFiltersChanged);
  }
  const typed = debounce(onFiltersChanged, 400);
  for (const el of form.querySelectorAll("input[type=text]")) {
    el.addEventListener("input", typed);
    el.addEventListener("keydown", (e) => {
      if (e.key === "Enter") {
        e.preventDefault();
        onFiltersChanged();
      }
    });
  }
  $("#f-reset").addEventListener("click", () => {
    filters = { statuses: new Set(DEFAULT_STATUSES), category: "", queue: "", agent: "" };
    writeFiltersToForm();
    onFiltersChanged();
  });

  const tbody = $("#alerts");
  tbody.addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-alert-id]");
    if (row) select(row.dataset.alertId);
  });
  tbody.addEventListener("keydown", (e) => {
    const row = e.target.closest("tr[data-alert-id]");
    if (!row) return;
    if (e.key === "Enter" || e.key === " ") {
      e.preventDefault();
      select(row.dataset.alertId);
    } else if (e.key === "ArrowDown") {
      e.preventDefault();
      row.nextElementSibling?.focus();
    } else if (e.key === "ArrowUp") {
      e.preventDefault();
      row.previousElementSibling?.focus();
    }
  });
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && selectedId && !e.target.closest("select")) closeDetail();
  });
  $("#ack").addEventListener("click", () => act("ack"));
  $("#callback").addEventListener("click", () => act("callback"));
  $("#resolve").addEventListener("click", () => act("resolve"));
  setInterval(refreshRelativeTimes, 30_000);
}

function start() {
  wire();
  if (!requireToken()) {
    $("#alerts-loading").hidden = true;
    updateCount();
    $("#alerts-empty").textContent = "No token, so no alerts: see the message above.";
    return;
  }
  loadAlerts();
  refreshCharts();
  setInterval(refreshCharts, CHART_REFRESH_MS);
  let opened = false;
  liveSocket("/ws/alerts", onSocketMessage, {
    // After a gap, changes may have been missed: read the list again.
    onOpen: () => {
      if (opened) {
        loadAlerts();
        chartsSoon();
      }
      opened = true;
    },
  });
}

start();

// For the console and tests: the alerts as this page holds them.
window.cxtAdvisory = { alerts, refreshCharts, fmtDateTime };
