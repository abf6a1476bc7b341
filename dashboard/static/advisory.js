// The advisory group's page: live bottom-2-box alerts grouped by customer, the
// call-back panel (who to call, every open alert of theirs, the actions), and
// the survey charts.
import {
  $, api, channelBadge, clearBanner, debounce, errorText, formatUtc, fmtRelative, h,
  label, liveSocket, requireToken, showBanner, statusBadge, timeEl,
} from "/static/common.js";
import { channelText, hoursStatus, languageText } from "/static/own_words.js";

const STATUSES = ["open", "escalated", "acknowledged", "resolved"];
const DEFAULT_STATUSES = ["open", "escalated", "acknowledged"];
const UNACKNOWLEDGED = ["open", "escalated"];
// Most urgent first: a customer's row shows the most urgent status of its alerts.
const URGENCY = ["escalated", "open", "acknowledged", "resolved"];
const SORTS = ["raised", "deadline"];
// schemas/alert.v1.json `kind`; an alert stored before kinds existed is a bottom-2-box one.
const KINDS = ["bottom_2_box", "negative_interaction"];
const NEGATIVE = "negative_interaction";
const kindOf = (alert) => alert?.kind || "bottom_2_box";
const LIST_LIMIT = 200;
const MAX_ROWS = 500;
const MAX_KEPT = 2000;
const CHART_REFRESH_MS = 60_000;
const CHART_AFTER_ALERT_MS = 3_000;
const CLOCK_MS = 30_000;

const alerts = new Map(); // alert_id -> newest alert seen
const customers = new Map(); // customer_id -> CRM record (null: none on file)
const openBriefs = new Map(); // customer_id -> their unresolved alerts, from the detail route
// customer_id -> {preferences, hoursNow}: their own preferences and whether the moment the
// detail route was read is inside their contact hours.
const wishes = new Map();
let selectedId = null;
let filters = readFiltersFromUrl();
let loadSeq = 0;
let acting = false; // an action is under way: its buttons stay disabled until it ends
const flashing = new Set(); // customer ids whose row changed live since the last render

// --- filters -------------------------------------------------------------------

function readFiltersFromUrl() {
  const params = new URLSearchParams(location.search);
  const status = params.get("status");
  const statuses = status
    ? status.split(",").map((s) => s.trim()).filter((s) => STATUSES.includes(s))
    : DEFAULT_STATUSES;
  const sort = params.get("sort");
  const kind = params.get("kind");
  return {
    statuses: new Set(statuses),
    kind: KINDS.includes(kind) ? kind : "",
    category: params.get("category") || "",
    queue: params.get("queue") || "",
    agent: params.get("agent") || "",
    sort: SORTS.includes(sort) ? sort : "raised",
  };
}

function writeFiltersToForm() {
  for (const status of STATUSES) $(`#f-status-${status}`).checked = filters.statuses.has(status);
  $("#f-kind").value = filters.kind;
  $("#f-category").value = filters.category;
  $("#f-queue").value = filters.queue;
  $("#f-agent").value = filters.agent;
}

function readFiltersFromForm() {
  return {
    statuses: new Set(STATUSES.filter((s) => $(`#f-status-${s}`).checked)),
    kind: $("#f-kind").value,
    category: $("#f-category").value,
    queue: $("#f-queue").value.trim(),
    agent: $("#f-agent").value.trim(),
    sort: filters.sort,
  };
}

function filterParams() {
  const params = new URLSearchParams();
  // No status ticked means "show nothing" on screen; ask for all so the list
  // is ready when one is ticked again.
  const statuses = filters.statuses.size ? [...filters.statuses] : STATUSES;
  params.set("status", STATUSES.filter((s) => statuses.includes(s)).join(","));
  if (filters.kind) params.set("kind", filters.kind);
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
  if (filters.sort !== "raised") params.set("sort", filters.sort);
  const query = params.toString();
  history.replaceState(history.state, "", location.pathname + (query ? `?${query}` : ""));
}

function matches(alert) {
  if (!filters.statuses.has(alert.status)) return false;
  if (filters.kind && kindOf(alert) !== filters.kind) return false;
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

function setSort(sort) {
  filters.sort = sort;
  writeFiltersToUrl();
  renderList();
}

// --- deadlines -------------------------------------------------------------------

function ms(value) {
  const t = Date.parse(value);
  return Number.isNaN(t) ? null : t;
}

// Where an alert stands against its acknowledgement deadline. Only alerts not
// yet acknowledged have a countdown; acknowledged and resolved ones have none.
export function ackState(alert, now = Date.now()) {
  if (alert.status === "resolved") return { kind: "resolved" };
  if (alert.status === "acknowledged") return { kind: "acknowledged" };
  const due = ms(alert.ack_deadline);
  if (due === null) return { kind: "none" };
  return { kind: due < now || alert.status === "escalated" ? "overdue" : "due", due, left: due - now };
}

export function countdown(left) {
  // Never "0 min": the first minute either way reads as 1 min.
  const minutes = Math.max(1, Math.round(Math.abs(left) / 60_000));
  const span = minutes < 60 ? `${minutes} min`
    : `${Math.floor(minutes / 60)} h${minutes % 60 ? ` ${minutes % 60} min` : ""}`;
  return left < 0 ? `overdue ${span}` : `in ${span}`;
}

// The deadline cell (and the panel's line): the time in UTC and the countdown,
// marked when overdue.
function deadlineEl(alert, now = Date.now()) {
  const state = ackState(alert, now);
  if (state.kind === "acknowledged") {
    return h("span", {
      class: "deadline deadline-done muted",
      title: `Acknowledged${alert.acknowledged_by ? ` by ${alert.acknowledged_by}` : ""}`
        + `${alert.acknowledged_at ? ` at ${formatUtc(alert.acknowledged_at)}` : ""}`,
    }, alert.acknowledged_at ? formatUtc(alert.acknowledged_at, "time") : null,
    h("span", { class: "deadline-left" }, "acknowledged"));
  }
  if (state.kind === "resolved") return h("span", { class: "deadline deadline-done muted" }, "resolved");
  if (state.kind === "none") return h("span", { class: "deadline muted" }, "–");
  return h("span", {
    class: `deadline deadline-${state.kind}`,
    title: `Acknowledge by ${formatUtc(alert.ack_deadline)}`,
    dataset: { kind: state.kind },
  },
  h("span", { class: "deadline-at" }, formatUtc(alert.ack_deadline, "time")),
  h("span", { class: "deadline-left" }, countdown(state.left)));
}

// --- groups: one row per customer ----------------------------------------------------

function raisedMs(alert) {
  return ms(alert.raised_at) ?? 0;
}

function byNewest(a, b) {
  return raisedMs(b) - raisedMs(a) || String(b.alert_id).localeCompare(String(a.alert_id));
}

function newer(incoming, current) {
  return !current || (incoming.version ?? 0) > (current.version ?? 0);
}

// Alerts on screen, by customer: the newest leads the row, and the earliest
// deadline of those not yet acknowledged is the row's deadline.
function groups() {
  const byCustomer = new Map();
  for (const alert of alerts.values()) {
    if (!matches(alert) && alert.alert_id !== selectedId) continue;
    const list = byCustomer.get(alert.customer_id) || [];
    list.push(alert);
    byCustomer.set(alert.customer_id, list);
  }
  const now = Date.now();
  const out = [...byCustomer.entries()].map(([customerId, list]) => {
    list.sort(byNewest);
    const waiting = list.filter((a) => UNACKNOWLEDGED.includes(a.status))
      .sort((a, b) => (ms(a.ack_deadline) ?? Infinity) - (ms(b.ack_deadline) ?? Infinity));
    return {
      customerId,
      alerts: list,
      lead: list[0],
      urgent: waiting[0] || list[0],
      status: URGENCY.find((s) => list.some((a) => a.status === s)),
      due: waiting.length ? ms(waiting[0].ack_deadline) ?? Infinity : Infinity,
      now,
    };
  });
  out.sort(filters.sort === "deadline"
    ? (a, b) => a.due - b.due || byNewest(a.lead, b.lead)
    : (a, b) => byNewest(a.lead, b.lead));
  return out.slice(0, MAX_ROWS);
}

function customerName(customerId) {
  return customers.get(customerId)?.name || null;
}

function rowFor(group) {
  const { lead, alerts: list } = group;
  const selected = list.some((a) => a.alert_id === selectedId);
  const lowest = list.reduce((a, b) => ((b.score ?? 99) < (a.score ?? 99) ? b : a));
  const stale = !list.some(matches);
  const row = h(
    "tr",
    {
      class: `alert-row status-row-${group.status}${selected ? " selected" : ""}${stale ? " stale" : ""}`,
      dataset: {
        alertId: lead.alert_id, customerId: group.customerId, count: String(list.length),
        version: String(lead.version ?? ""), kinds: [...new Set(list.map(kindOf))].join(" "),
      },
      tabindex: "0",
      "aria-selected": selected ? "true" : "false",
      title: stale ? "No longer matches the filters; leaves the list when the panel is closed." : null,
    },
    h("td", { class: "col-time raised-at" }, timeEl(lead.raised_at, { short: true, relative: false })),
    h("td", { class: "col-deadline" }, deadlineEl(group.urgent, group.now)),
    h("td", { class: `col-status status status-${group.status}` }, group.status),
    h("td", { class: "col-score score" }, typeof lowest.score === "number"
      ? `${lowest.score}/${lowest.scale_max ?? "?"}`
      : h("span", { class: "muted", title: "No survey: a negative-interaction alert" }, "–")),
    h("td", { class: "col-category category" },
      h("span", { class: `cat cat-${lead.category}` }, label(lead.category))),
    h("td", { class: "col-customer customer" },
      h("span", { class: "customer-id" }, customerName(group.customerId) || group.customerId),
      list.length > 1
        ? h("span", {
          class: "group-count",
          title: `${list.length} alerts for this customer: one call-back covers them`,
        }, `${list.length} alerts`)
        : null),
    h("td", { class: "col-queue queue" }, lead.queue || "–"),
    h("td", { class: "col-agent agent" }, lead.agent_id || "–"),
    kindOf(lead) === NEGATIVE
      ? h("td", { class: "col-comment comment row-signals", title: signalPhrases(lead).join("; ") },
        h("span", { class: "comment-text" }, kindTag(NEGATIVE, "negative"), " ",
          signalPhrases(lead).join(" · ") || "no signals"))
      : h("td", { class: "col-comment comment", title: lead.comment || "" },
        h("span", { class: "comment-text" },
          lead.comment ? lead.comment : h("span", { class: "muted" }, "no comment"))),
  );
  if (flashing.has(group.customerId)) row.classList.add("flash");
  return row;
}

function renderList() {
  const tbody = $("#alerts");
  const focused = document.activeElement?.closest?.("tr[data-customer-id]")?.dataset.customerId;
  const rows = groups().map(rowFor);
  tbody.replaceChildren(...rows);
  flashing.clear();
  if (focused) tbody.querySelector(`tr[data-customer-id="${CSS.escape(focused)}"]`)?.focus();
  for (const th of document.querySelectorAll(".alerts-table th[data-sort]")) {
    th.setAttribute("aria-sort", th.dataset.sort === filters.sort
      ? (filters.sort === "deadline" ? "ascending" : "descending") : "none");
  }
  updateCount();
}

function updateCount() {
  const tbody = $("#alerts");
  const shown = tbody.querySelectorAll("tr:not(.stale)");
  const count = [...shown].reduce((n, r) => n + Number(r.dataset.count || 1), 0);
  $("#alerts-empty").hidden = shown.length > 0 || !$("#alerts-loading").hidden;
  $("#feed-count").textContent = `${count} alert${count === 1 ? "" : "s"} for `
    + `${shown.length} customer${shown.length === 1 ? "" : "s"}`;
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

// A message from /ws/alerts, or an action's reply: the newest version wins.
function receive(alert, { live = false } = {}) {
  if (!alert?.alert_id) return;
  const current = alerts.get(alert.alert_id);
  if (!newer(alert, current)) return;
  alerts.set(alert.alert_id, alert);
  if (alerts.size > MAX_KEPT) prune();
  if (live) flashing.add(alert.customer_id);
  renderList();
  const shown = alerts.get(selectedId);
  if (shown && shown.customer_id === alert.customer_id) renderDetail(shown);
  if (live && (!current || alert.event === "raised")) chartsSoon();
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

// --- the call-back panel ---------------------------------------------------------------

// The customer's unresolved alerts: those the detail route listed, each replaced
// by the newest full copy this page holds, plus any the page learnt of since.
function openAlertsOf(customerId) {
  const byId = new Map((openBriefs.get(customerId) || []).map((a) => [a.alert_id, a]));
  for (const alert of alerts.values()) {
    if (alert.customer_id !== customerId) continue;
    if (newer(alert, byId.get(alert.alert_id))) byId.set(alert.alert_id, alert);
  }
  return [...byId.values()].filter((a) => a.status !== "resolved").sort(byNewest);
}

function select(alertId) {
  selectedId = alertId;
  clearActionMessages();
  $("#action-note").value = "";
  $("#resolve-category").value = "";
  $("#callback-outcome").value = "reached";
  $("#act-all").checked = true;
  updateNoteCount();
  const cached = alerts.get(alertId);
  $("#detail").hidden = false;
  document.body.classList.add("detail-open");
  renderList();
  if (cached) renderDetail(cached);
  else renderDetailLoading(alertId);
  // The list may hold an older copy, and only this read has the customer record.
  api(`/api/alerts/${encodeURIComponent(alertId)}`)
    .then((data) => {
      if (!data?.alert_id) return;
      const {
        customer, customer_open_alerts: open, preferences, contact_hours_now: hoursNow, ...alert
      } = data;
      customers.set(alert.customer_id, customer ?? null);
      openBriefs.set(alert.customer_id, open || []);
      wishes.set(alert.customer_id, { preferences: preferences ?? null, hoursNow: hoursNow ?? null });
      const current = alerts.get(alertId);
      if (!current || (alert.version ?? 0) >= (current.version ?? 0)) alerts.set(alertId, alert);
      renderList();
      if (selectedId === alertId) renderDetail(alerts.get(alertId));
    })
    .catch((err) => {
      if (selectedId === alertId) showActionError(`Cannot load the alert: ${errorText(err)}`);
    });
}

function closeDetail() {
  selectedId = null;
  $("#detail").hidden = true;
  document.body.classList.remove("detail-open");
  renderList();
}

function renderDetailLoading(alertId) {
  $("#detail-title").replaceChildren(alertId);
  $("#detail-sub").replaceChildren("Loading…");
  $("#callback-card").replaceChildren();
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

// Copy to the clipboard where the browser allows it; otherwise select the text
// so Ctrl+C copies it.
function copyButton(value, target) {
  return h("button", {
    type: "button",
    class: "btn-copy",
    title: `Copy ${value}`,
    onclick: async (event) => {
      const button = event.currentTarget;
      try {
        await navigator.clipboard.writeText(value);
        button.textContent = "Copied";
      } catch {
        const range = document.createRange();
        range.selectNodeContents(target);
        getSelection().removeAllRanges();
        getSelection().addRange(range);
        button.textContent = "Ctrl+C";
      }
      setTimeout(() => { button.textContent = "Copy"; }, 2000);
    },
  }, "Copy");
}

function contactLine(kind, value) {
  const href = kind === "phone" ? `tel:${value.replace(/\s+/g, "")}` : `mailto:${value}`;
  const link = h("a", { class: `cb-value cb-${kind}`, href }, value);
  return h("li", { class: "cb-line" },
    h("span", { class: "cb-icon", "aria-hidden": "true" }, kind === "phone" ? "☎" : "✉"),
    link, copyButton(value, link));
}

// What the advisor needs to call the customer back, first in the panel.
function renderCallbackCard(alert) {
  const card = $("#callback-card");
  const customerId = alert.customer_id;
  if (!customers.has(customerId)) {
    card.replaceChildren(h("p", { class: "muted" }, "Loading the customer record…"));
    return;
  }
  const record = customers.get(customerId);
  if (!record) {
    card.replaceChildren(
      h("div", { class: "cb-name" }, customerId),
      h("p", { class: "muted cb-none" }, customerId.startsWith("~")
        ? "A provisional customer: the CRM has no record yet, so no phone or e-mail on file."
        : "No CRM record for this customer, so no phone or e-mail on file."),
      whenToCall(customerId));
    return;
  }
  const ids = record.identifiers || {};
  const phones = ids.phones || [];
  const emails = ids.emails || [];
  card.replaceChildren(
    h("div", { class: "cb-head" },
      h("span", { class: "cb-name" }, record.name || customerId),
      record.segment ? h("span", { class: `segment segment-${record.segment}` }, record.segment) : null),
    h("div", { class: "cb-sub muted" }, customerId,
      record.plan ? ` · ${label(record.plan)} plan` : "",
      record.region ? ` · ${record.region}` : ""),
    h("ul", { class: "cb-contacts" },
      phones.map((p) => contactLine("phone", p)),
      emails.map((e) => contactLine("email", e)),
      phones.length || emails.length ? null
        : h("li", { class: "muted" }, "No phone or e-mail in the CRM record.")),
    whenToCall(customerId),
  );
}

// When and how the customer asked to be contacted (their own preferences): the verdict
// on their contact hours first, in words, then their hours, their time, channel, language.
function whenToCall(customerId) {
  const { preferences, hoursNow } = wishes.get(customerId) || {};
  const p = preferences && typeof preferences === "object" ? preferences : {};
  const status = hoursNow?.status || "no_preference";
  return h("div", { class: "cb-when", id: "cb-when", dataset: { hours: status } },
    h("p", { class: "cb-hours-verdict" }, hoursStatus(hoursNow)),
    dl([
      ["Contact hours", hoursNow?.hours_text || null],
      ["Their time now", hoursNow?.local_text || null],
      ["Prefers", channelText(p.preferred_channel)],
      ["Language", languageText(p.language)],
      p.accessibility_needs ? ["Accessibility", h("span", { class: "accessibility-needs" }, p.accessibility_needs)] : null,
      p.no_sales_offers === true ? ["Sales offers", h("strong", { class: "no-offers" }, "No sales offers, please")] : null,
    ]),
  );
}

function customerAlertsSection(alert) {
  const open = openAlertsOf(alert.customer_id);
  if (open.length < 2) return null;
  return section(
    `Open alerts for this customer (${open.length})`,
    h("p", { class: "muted group-note" },
      "One call-back covers them all: the actions below apply to every one of them."),
    h("ol", { class: "customer-alerts", id: "customer-alerts" }, open.map((a) => h(
      "li",
      {
        class: `ca-item${a.alert_id === alert.alert_id ? " current" : ""}`,
        dataset: { refId: a.alert_id },
        tabindex: "0",
        title: "Show this alert",
        onclick: () => { if (a.alert_id !== selectedId) select(a.alert_id); },
      },
      h("span", { class: `ca-status status-${a.status}` }, statusBadge(a.status)),
      h("span", { class: "ca-score" }, kindOf(a) === NEGATIVE
        ? kindTag(NEGATIVE, "negative")
        : `${a.score ?? "?"}/${a.scale_max ?? "?"}`),
      h("span", { class: "ca-when" }, formatUtc(a.raised_at, "short")),
      deadlineEl(a),
      h("div", { class: "ca-comment" }, kindOf(a) === NEGATIVE
        ? `about ${a.intent || "no intent"}`
        : a.comment || h("span", { class: "muted" }, "no comment")),
    ))),
  );
}

function categoryWhy(alert) {
  if (alert.categorised_by) {
    return h("span", {}, `set by ${alert.categorised_by} when resolving`);
  }
  if (alert.category_reasons?.length) {
    return h("ul", { class: "plain" }, alert.category_reasons.map((r) => h("li", {}, r)));
  }
  return h("span", { class: "muted" }, alert.category_rule ? `rule ${alert.category_rule}` : "no rule matched");
}

function historyLine(step) {
  const recategorised = step.category_from && step.category_to;
  return h(
    "li", { dataset: { event: step.event } },
    h("span", { class: "hist-when" }, formatUtc(step.at, "short")),
    h("div", { class: "hist-what" },
      h("strong", {}, label(step.event)),
      step.actor ? ` by ${step.actor}` : "",
      step.outcome ? h("span", { class: "chip" }, label(step.outcome)) : null,
      recategorised
        ? h("div", { class: "hist-recat" },
          `Re-categorised by ${step.actor}: ${label(step.category_from)} → ${label(step.category_to)}`,
          step.rule_from ? ` (rule ${step.rule_from} had decided)` : "")
        : null,
      // An `updated` step: the rated contact arrived and the rules could then decide.
      !recategorised && step.category_to
        ? h("div", { class: "hist-recat" }, `Category by the rules: ${label(step.category_to)}`)
        : null,
      step.note ? h("div", { class: "hist-note" }, step.note) : null),
  );
}

function renderDetail(alert) {
  const body = $("#detail-body");
  const scroller = $("#detail .detail-scroll");
  const scroll = scroller.scrollTop;
  const panel = $("#detail");
  // Not data-alert-id: that attribute marks the list rows, and tests select
  // `[data-alert-id=...] .status`, which must find exactly one element.
  panel.dataset.detailId = alert.alert_id;
  panel.dataset.status = alert.status;
  panel.dataset.customerId = alert.customer_id;

  $("#detail-title").replaceChildren(
    h("span", { class: "detail-id" }, alert.alert_id), " ",
    statusBadge(alert.status, { cls: "badge detail-status" }),
  );
  $("#detail-title").querySelector(".detail-status").id = "detail-status";
  $("#detail-sub").replaceChildren(kindTag(kindOf(alert)), " raised ", timeEl(alert.raised_at), " · ",
    UNACKNOWLEDGED.includes(alert.status) ? "acknowledge by " : "", deadlineEl(alert));
  renderCallbackCard(alert);

  const scale = `${alert.scale_min ?? 1}–${alert.scale_max ?? 5}`;
  const negative = kindOf(alert) === NEGATIVE;
  const survey = negative ? negativeSection(alert) : section(
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
      ["Why", categoryWhy(alert)],
      alert.category_rule ? ["Rule", alert.category_rule] : null,
      ["Agent", alert.agent_id],
      ["Queue", alert.queue],
      ["Survey at", timeEl(alert.survey_occurred_at)],
      ["Latency", alert.latency_ms !== undefined ? `${alert.latency_ms} ms` : null],
      alert.linked_alert_id ? ["Linked to", alertLink(alert.linked_alert_id)] : null,
    ]),
  );

  const rated = alert.rated_contact;
  const ratedSection = negative && !rated ? null : section(
    negative ? "Contact" : "Rated contact",
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
        h("div", { class: "tl-when" }, formatUtc(entry.occurred_at, "short")),
        h("div", { class: "tl-what" },
          channelBadge(entry.channel), " ", h("span", { class: "tl-type" }, entry.type),
          entry.rated ? h("span", { class: "tag tag-rated" }, "rated") : null,
          h("div", { class: "tl-summary" }, summarise(entry))),
      )))
      : h("p", { class: "muted" }, "No earlier interactions."),
  );

  const historySection = section(
    "History", h("ol", { class: "history" }, (alert.history || []).map(historyLine)));

  body.replaceChildren(...[customerAlertsSection(alert), survey, ratedSection, contextSection,
    historySection].filter(Boolean));
  scroller.scrollTop = scroll;
  setButtons(alert);
}

const KIND_LABELS = { bottom_2_box: "bottom-2-box", negative_interaction: "negative interaction" };

function kindTag(kind, text) {
  return h("span", { class: `kind-tag kind-${kind}` }, text || KIND_LABELS[kind] || label(kind));
}

// A button that opens another alert in this panel (linked alerts).
function alertLink(alertId) {
  return h("button", {
    type: "button", class: "btn-link alert-link", dataset: { refId: alertId },
    title: "Show this alert", onclick: () => select(alertId),
  }, alertId);
}

// One signal of a negative-interaction alert in words, as dashboard/at_risk.py
// writes it for the agent page; a rule this page does not know shows its name.
export function signalText(signal, intent) {
  const channel = signal.channel || "a contact";
  const { count, detail, score } = signal;
  const whole = Number.isInteger(count);
  switch (signal.rule) {
    case "escalation_language":
      if (detail) return `said '${String(detail).replace(/^said /, "").replace(/^['"]|['"]$/g, "")}' on ${channel}`;
      break;
    case "negative_sentiment":
      return `negative words on ${channel}${typeof score === "number" ? ` (${score >= 0 ? "+" : ""}${score.toFixed(2)})` : ""}`;
    case "repeat_contact":
      if (whole) return `${ordinal(count)} contact${intent ? ` about ${intent}` : ""}`;
      break;
    case "many_transfers":
      if (whole) return `${channel} transferred ${count} times`;
      break;
    case "long_wait":
      if (whole) return `waited ${count < 120 ? `${count} s` : `${Math.round(count / 60)} min`} on ${channel}`;
      break;
    case "abandoned_then_contact":
      return `came back on ${channel} after an abandoned call`;
    default:
  }
  const words = String(signal.rule || "signal").replace(/_/g, " ");
  return detail ? `${words}: ${detail}` : words;
}

function ordinal(n) {
  const tens = n % 100;
  const suffix = tens >= 10 && tens <= 20 ? "th" : { 1: "st", 2: "nd", 3: "rd" }[n % 10] || "th";
  return `${n}${suffix}`;
}

function signalPhrases(alert) {
  const out = [];
  for (const signal of Array.isArray(alert.signals) ? alert.signals : []) {
    const text = signalText(signal, alert.intent);
    if (!out.includes(text)) out.push(text);
  }
  return out;
}

// In place of the survey section: what fired, from which contact, and the
// bottom-2-box alerts linked to it. No survey fields: they are null for this kind.
function negativeSection(alert) {
  const signals = Array.isArray(alert.signals) ? alert.signals : [];
  const linked = Array.isArray(alert.linked_alerts) ? alert.linked_alerts : [];
  return section(
    "Negative interaction",
    h("ol", { class: "signals", id: "signals", "aria-label": "Signals, oldest first" },
      signals.map((signal) => h(
        "li", { class: "signal", dataset: { rule: signal.rule || "", eventId: signal.event_id || "" } },
        h("span", { class: "signal-rule" }, signalText(signal, alert.intent)),
        h("span", { class: "signal-when" }, formatUtc(signal.occurred_at, "short"), " · ", signal.contact || ""),
      ))),
    signals.length ? null : h("p", { class: "muted" }, "No signals recorded."),
    dl([
      ["Intent", alert.intent || h("span", { class: "muted" }, "none")],
      ["Category", h("span", { class: `cat cat-${alert.category}` }, label(alert.category))],
      ["Why", categoryWhy(alert)],
      alert.category_rule ? ["Rule", alert.category_rule] : null,
      ["Agent", alert.agent_id],
      ["Queue", alert.queue],
      ["Latency", alert.latency_ms !== undefined ? `${alert.latency_ms} ms` : null],
      ["Linked surveys", linked.length
        ? h("span", { class: "linked-alerts" }, linked.map((id, i) => [i ? ", " : null, alertLink(id)]))
        : h("span", { class: "muted" }, "none")],
    ]),
  );
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

// --- actions ---------------------------------------------------------------------------

// The alerts an action goes to: the shown one, or every open alert of the
// customer when "all" is ticked; each still travels as its own action.
function targets(alert) {
  const open = openAlertsOf(alert.customer_id);
  if (open.length > 1 && $("#act-all").checked) return open;
  return [alert];
}

// Which of the targets an action applies to, mirroring the worker's lifecycle:
// acknowledge from open or escalated, then call-backs and resolve once acknowledged.
function applicable(kind, list) {
  if (kind === "ack") return list.filter((a) => UNACKNOWLEDGED.includes(a.status));
  return list.filter((a) => a.status === "acknowledged");
}

function setButtons(alert) {
  const status = alert?.status;
  if (acting) return; // act() sets them again when its replies are in
  const list = alert ? targets(alert) : [];
  const open = alert ? openAlertsOf(alert.customer_id) : [];
  $("#act-all-row").hidden = open.length < 2;
  $("#act-all-count").textContent = String(open.length);
  $("#ack").disabled = !applicable("ack", list).length;
  $("#callback").disabled = !applicable("callback", list).length;
  $("#callback-outcome").disabled = $("#callback").disabled;
  // Resolve stays clickable for any unresolved alert so the service can say why
  // it refuses (an acknowledgement comes first).
  const unresolved = list.some((a) => a.status !== "resolved");
  $("#resolve").disabled = !unresolved;
  $("#resolve-category").disabled = !unresolved;
  markCategoryRequired(applicable("resolve", list));
  $("#action-note").disabled = !unresolved;
  // Nothing left to do: the panel's room goes to the alert, not to disabled controls.
  $("#detail .actions").classList.toggle("done", Boolean(alert) && !unresolved);
  $("#actions-title").textContent = list.length > 1
    ? `Act on all ${list.length} open alerts of this customer` : "Act on this alert";
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

const DONE = { ack: "Acknowledged", callback: "Call-back recorded on", resolve: "Resolved" };

// An unclassified alert is closed with its cause (the service refuses it otherwise):
// the category list then offers no "keep" and is required.
function markCategoryRequired(resolvable) {
  const box = $("#resolve-category");
  box.required = resolvable.some((a) => a.category === "unclassified");
  box.options[0].textContent = box.required ? "choose the cause (required)" : "keep current category";
}

function categoryMissing(chosen) {
  const unclassified = chosen.filter((a) => a.category === "unclassified");
  if (!unclassified.length || $("#resolve-category").value) return null;
  const choices = [...$("#resolve-category").options].filter((o) => o.value).map((o) => o.textContent);
  const which = chosen.length === 1 ? "This alert is" : `${unclassified.length} of these alerts are`;
  return `${which} unclassified: choose its cause before resolving (${choices.join(", ")}).`;
}

async function act(kind) {
  const alertId = selectedId;
  const shown = alerts.get(alertId);
  if (!shown) return;
  const note = $("#action-note").value.trim();
  const body = {};
  if (note) body.note = note;
  if (kind === "callback") body.outcome = $("#callback-outcome").value;
  if (kind === "resolve" && $("#resolve-category").value) body.category = $("#resolve-category").value;
  const chosen = applicable(kind, targets(shown));
  const missing = kind === "resolve" ? categoryMissing(chosen) : null;
  if (missing) {
    showActionError(missing);
    $("#resolve-category").focus();
    return;
  }
  // Nothing applies (e.g. resolve before acknowledging): send it for the shown
  // alert anyway, so the service's reason is what the advisor reads.
  const list = chosen.length ? chosen : [shown];
  const buttons = ["#ack", "#callback", "#resolve"].map((s) => $(s));
  const wasDisabled = buttons.map((b) => b.disabled);
  for (const b of buttons) b.disabled = true;
  acting = true;
  $("#detail").setAttribute("aria-busy", "true");
  clearActionMessages();
  const results = await Promise.allSettled(list.map((a) => api(
    `/api/alerts/${encodeURIComponent(a.alert_id)}/${kind}`, { method: "POST", body })));
  acting = false;
  $("#detail").removeAttribute("aria-busy");
  const failures = [];
  results.forEach((result, i) => {
    if (result.status === "fulfilled") receive(result.value);
    else failures.push(list.length > 1 ? `${list[i].alert_id}: ${errorText(result.reason)}` : errorText(result.reason));
  });
  if (selectedId !== alertId) return;
  const done = results.length - failures.length;
  if (done) {
    $("#action-note").value = "";
    updateNoteCount();
    $("#action-ok").textContent = `${DONE[kind]} ${done === 1 && list.length === 1 ? "this alert" : `${done} alert${done === 1 ? "" : "s"}`}.`;
    $("#action-ok").hidden = false;
  }
  if (failures.length) {
    showActionError(failures.join("\n"));
    if (!done) buttons.forEach((b, i) => { b.disabled = wasDisabled[i]; });
  }
  const current = alerts.get(alertId);
  if (current) renderDetail(current);
}

// The note's limit and the categories a resolve may set are the API's, read from
// its documentation so the page cannot drift from it (schemas/alert-action.v1.json
// decides them).
async function loadNoteLimit() {
  try {
    const response = await fetch("/openapi.json", { cache: "no-store" });
    const doc = await response.json();
    const limit = doc?.components?.schemas?.ActionNote?.maxLength;
    if (Number.isInteger(limit)) $("#action-note").maxLength = limit;
    const resolve = doc?.paths?.["/api/alerts/{alert_id}/resolve"]?.post;
    fillResolveCategories(resolve?.requestBody?.content?.["application/json"]?.schema?.properties?.category?.enum);
  } catch {
    // Without it the box is unlimited and the API still refuses an over-long note.
  }
  updateNoteCount();
}

// Without the documentation the page's own list (advisory.html) stays.
function fillResolveCategories(choices) {
  if (!Array.isArray(choices) || !choices.length) return;
  const box = $("#resolve-category");
  const picked = box.value;
  box.replaceChildren(box.options[0], ...choices.map((c) => h("option", { value: c }, label(c))));
  box.value = choices.includes(picked) ? picked : "";
}

function updateNoteCount() {
  const box = $("#action-note");
  $("#note-count").textContent = box.maxLength > 0 ? `${box.value.length}/${box.maxLength}` : "";
}

// --- charts ------------------------------------------------------------------------

const charts = {};
const COLORS = {
  bottom2: "#c0392b",
  bottom2Fill: "rgba(192, 57, 43, 0.28)",
  top2: "#2e7d32",
  negative: "#b86e00",
  negativeFill: "rgba(230, 145, 20, 0.45)",
  share: "#8e2a1f",
  grid: "rgba(31, 41, 51, 0.08)",
  text: "#52606d",
};

function periodLabel(period, kind) {
  if (kind === "hour") return formatUtc(period, "hour");
  return formatUtc(`${period}T00:00:00Z`, "date");
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
        // Beside the surveys: alerts raised without one (GET /api/metrics/contacts);
        // left out when that route is absent rather than drawn as zeros.
        rows.some((r) => typeof r.negative_alerts === "number") ? {
          type: "bar",
          label: "negative-interaction alerts",
          data: rows.map((r) => r.negative_alerts ?? 0),
          yAxisID: "count",
          backgroundColor: COLORS.negativeFill,
          borderColor: COLORS.negative,
          borderWidth: 1,
          order: 4,
        } : null,
      ].filter(Boolean),
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
          title: { display: true, text: "alerts", color: COLORS.text, font: { size: 10 } },
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
  let negatives;
  try {
    [rows, negatives] = await Promise.all([
      api(`/api/metrics/surveys?${query}`).then((data) => data?.rows || []),
      negativeAlertsByPeriod(query),
    ]);
  } catch (err) {
    chartNote(canvasId, `Cannot load the metrics: ${errorText(err)}`);
    return;
  }
  if (negatives) {
    rows = rows.map((r) => ({ ...r, negative_alerts: negatives.get(r.period) ?? 0 }));
  }
  const responses = rows.reduce((n, r) => n + (r.responses || 0), 0);
  const raised = rows.reduce((n, r) => n + (r.negative_alerts || 0), 0);
  chartNote(canvasId, responses || raised ? "" : "No survey responses in this period yet.");
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

// Whether this service has GET /api/metrics/contacts, from its documentation: asking
// a service without it would log a 404 on every refresh.
let contactsRoute = null;
function hasContactsRoute() {
  contactsRoute ??= fetch("/openapi.json", { cache: "no-store" })
    .then((response) => response.json())
    .then((doc) => Boolean(doc?.paths?.["/api/metrics/contacts"]?.get))
    .catch(() => false);
  return contactsRoute;
}

// period -> negative-interaction alerts raised in it; null when the route is absent
// or fails (the series is then hidden: the survey bars must still be drawn).
async function negativeAlertsByPeriod(query) {
  if (!(await hasContactsRoute())) return null;
  try {
    const data = await api(`/api/metrics/contacts?${query}`);
    const rows = Array.isArray(data?.rows) ? data.rows : [];
    return new Map(rows.filter((r) => typeof r.negative_alerts === "number")
      .map((r) => [r.period, r.negative_alerts]));
  } catch {
    return null;
  }
}

function refreshCharts() {
  return Promise.all([
    drawChart("chart-hourly", "period=hour&hours=24", "hour"),
    drawChart("chart-daily", "period=day&days=30", "day"),
  ]);
}

const chartsSoon = debounce(refreshCharts, CHART_AFTER_ALERT_MS);

// --- wiring --------------------------------------------------------------------------

// Countdowns and relative times move on without any message arriving.
function tick() {
  renderList();
  const shown = alerts.get(selectedId);
  if (shown) {
    for (const el of document.querySelectorAll("#detail time[datetime] .rel")) {
      el.textContent = fmtRelative(el.parentElement.getAttribute("datetime"));
    }
    $("#detail-sub").querySelector(".deadline")?.replaceWith(deadlineEl(shown));
  }
}

function onRowKey(e) {
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
    filters = { statuses: new Set(DEFAULT_STATUSES), kind: "", category: "", queue: "", agent: "", sort: "raised" };
    writeFiltersToForm();
    onFiltersChanged();
  });
  for (const button of document.querySelectorAll(".alerts-table th[data-sort] button")) {
    button.addEventListener("click", () => setSort(button.closest("th").dataset.sort));
  }

  const tbody = $("#alerts");
  tbody.addEventListener("click", (e) => {
    const row = e.target.closest("tr[data-alert-id]");
    if (row) select(row.dataset.alertId);
  });
  tbody.addEventListener("keydown", onRowKey);
  $("#detail-close").addEventListener("click", closeDetail);
  document.addEventListener("keydown", (e) => {
    if (e.key === "Escape" && selectedId && !e.target.closest("select")) closeDetail();
  });
  $("#ack").addEventListener("click", () => act("ack"));
  $("#callback").addEventListener("click", () => act("callback"));
  $("#resolve").addEventListener("click", () => act("resolve"));
  $("#act-all").addEventListener("change", () => {
    const shown = alerts.get(selectedId);
    if (shown) setButtons(shown);
  });
  $("#action-note").addEventListener("input", updateNoteCount);
  setInterval(tick, CLOCK_MS);
}

function start() {
  wire();
  loadNoteLimit();
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
window.cxtAdvisory = { alerts, customers, refreshCharts, formatUtc };
