// The agent's page: when a contact reaches this agent, who the customer is,
// what they told us themselves, what to say first, and the interactions that
// matter for this contact.
import {
  $, api, channelBadge, errorText, fmtRelative, fmtWhen, h, label, liveSocket, requireToken,
  setConnState, statusBadge, timeEl,
} from "/static/common.js";
import { noteItems, preferenceRows } from "/static/own_words.js";

const PREVIOUS_MAX = 5;
const agentId = (new URLSearchParams(location.search).get("agent") || "").trim();
const previousKey = `cxt.agent.previous.${agentId}`;
let previous = loadPrevious();
let currentCustomer = null;
let pending = 0;

// --- previous contacts ------------------------------------------------------------

function loadPrevious() {
  try {
    const list = JSON.parse(sessionStorage.getItem(previousKey) || "[]");
    return Array.isArray(list) ? list.slice(0, PREVIOUS_MAX) : [];
  } catch {
    return [];
  }
}

function remember(ctx) {
  const item = { customer_id: ctx.customer_id, intent: ctx.intent || "", name: ctx.customer?.name || "" };
  previous = [item, ...previous.filter((p) => p.customer_id !== item.customer_id)].slice(0, PREVIOUS_MAX);
  try {
    sessionStorage.setItem(previousKey, JSON.stringify(previous));
  } catch {
    // Only a convenience.
  }
  renderPrevious();
}

function renderPrevious() {
  $("#previous").replaceChildren(...previous.map((p) => h(
    "li", {},
    h("button", {
      type: "button",
      class: `previous-contact${p.customer_id === currentCustomer ? " current" : ""}`,
      // dataset turns null into the text "null": an intent-less lookup must stay one.
      dataset: { customerId: p.customer_id, intent: p.intent || "" },
      title: `Load ${p.customer_id}${p.intent ? ` (intent ${p.intent})` : ""} again`,
    }, p.name ? `${p.name} · ` : "", p.customer_id),
  )));
  if (!previous.length) $("#previous").append(h("li", { class: "muted" }, "none yet"));
}

// --- rendering ---------------------------------------------------------------------

// [label, value, field?] rows; a missing value is a dash, never "null".
function dl(pairs) {
  return h("dl", { class: "kv" }, pairs.filter(Boolean).flatMap(([k, v, field]) => [
    h("dt", { dataset: field ? { field } : null }, k),
    h("dd", { dataset: field ? { field } : null },
      v === null || v === undefined || v === "" ? h("span", { class: "muted" }, "–") : v),
  ]));
}

// Phones and e-mails arrive masked by the service ("+44 •••• ••4567"): enough for the
// agent to check who is on the line, never the whole number.
function identityRows(identifiers) {
  const ids = identifiers && typeof identifiers === "object" ? identifiers : {};
  const list = (values) => (Array.isArray(values) && values.length
    ? h("span", { class: "identity-values" }, values.map((v, i) => [i ? ", " : null, h("span", { class: "identity-value" }, String(v))]))
    : null);
  const social = Array.isArray(ids.social)
    ? ids.social.filter((s) => s && s.handle).map((s) => `${s.handle} (${s.network || "?"})`)
    : [];
  return [
    ["Phone", list(ids.phones)],
    ["E-mail", list(ids.emails)],
    social.length ? ["Social", social.join(", ")] : null,
  ];
}

function renderCustomer(ctx) {
  const c = ctx.customer;
  const card = $("#customer");
  if (!c) {
    card.replaceChildren(
      h("div", { class: "customer-name" }, "Unknown customer"),
      h("div", { class: "customer-id" }, ctx.customer_id),
      h("p", { class: "muted" }, String(ctx.customer_id).startsWith("~?")
        ? "Several customers share this identifier: confirm who is calling above."
        : String(ctx.customer_id).startsWith("~")
          ? "Not yet in the CRM: this is a provisional id for an identity seen for the first time."
          : "No CRM profile for this customer."),
    );
    return;
  }
  // Labels, units and order come from the service (config/agent_context.toml [fields.*]).
  const fields = Array.isArray(ctx.customer_fields) ? ctx.customer_fields : [];
  card.replaceChildren(
    h("div", { class: "customer-head" },
      h("div", { class: "customer-name" }, c.name || "(no name)"),
      c.segment ? h("span", { class: `segment segment-${c.segment}` }, c.segment) : null),
    h("div", { class: "customer-id" }, ctx.customer_id),
    h("div", { class: "identity", "aria-label": "Identity check" },
      h("div", { class: "identity-title" }, "Identity check"),
      dl(identityRows(c.identifiers))),
    h("div", { class: "customer-fields" },
      dl(fields.map((f) => [f.label, f.text, f.field]))),
  );
}

// The intent as a tag, or null when there is none: the API sends null, and a
// lookup without one must not show the word "null".
function intentTag(...candidates) {
  const intent = candidates.find((c) => typeof c === "string" && c.trim() && c !== "null");
  return intent ? h("span", { class: "tag tag-intent" }, intent) : null;
}

function renderContact(ctx) {
  const card = $("#contact");
  const contact = ctx.contact;
  if (!contact) {
    card.replaceChildren(
      h("h3", {}, "Contact"),
      h("p", { class: "muted" }, "Looked up without a live contact."),
      dl([["Intent", intentTag(ctx.intent) || h("span", { class: "muted" }, "none given")]]),
    );
    return;
  }
  const p = contact.payload || {};
  const ivr = Array.isArray(p.ivr_path) && p.ivr_path.length
    ? h("span", { class: "ivr" }, p.ivr_path.flatMap((step, i) => (
      i ? [h("span", { class: "ivr-sep", "aria-hidden": "true" }, " › "), step] : [step])))
    : null;
  card.replaceChildren(
    h("h3", {}, "This contact"),
    h("div", { class: "contact-head" }, channelBadge(contact.channel), " ",
      h("span", { class: "contact-type" }, contact.type)),
    dl([
      ["Intent", intentTag(ctx.intent, p.intent)],
      ["Queue", p.queue],
      ["IVR path", ivr],
      p.subject ? ["Subject", p.subject] : null,
      p.direction ? ["Direction", p.direction] : null,
      p.wait_seconds !== undefined ? ["Waited", `${p.wait_seconds} s`] : null,
      ["Started", timeEl(contact.occurred_at)],
    ]),
  );
}

const TONES = new Set(["alert", "info", "offer"]);
const TONE_MARKS = { alert: "!", info: "i", offer: "+" };
const TONE_LABELS = { alert: "First", info: "Note", offer: "Offer" };

function byPriority(prompts) {
  // Lower number = more important; the index keeps the server's order on ties.
  return prompts
    .map((prompt, index) => ({ prompt, index }))
    .sort((a, b) => (a.prompt.priority ?? 99) - (b.prompt.priority ?? 99) || a.index - b.index)
    .map(({ prompt }) => prompt);
}

function renderPrompts(ctx) {
  const prompts = byPriority(ctx.prompts || []);
  const box = $("#prompts");
  if (!prompts.length) {
    box.replaceChildren(h("p", { class: "no-prompts muted" }, "No prompts for this contact."));
    return;
  }
  // The tone (config/agent_context.toml) sets the look: only an "alert" is red and
  // announced; an "offer" is never styled as an alarm, even when it is the only prompt.
  box.replaceChildren(...prompts.map((prompt, i) => {
    const tone = TONES.has(prompt.tone) ? prompt.tone : "info";
    return h(
      "div",
      {
        class: `prompt prompt-p${Math.min(prompt.priority ?? 3, 3)} prompt-tone-${tone}${i === 0 ? " prompt-top" : ""}`,
        dataset: { rule: prompt.rule || "", priority: String(prompt.priority ?? ""), tone },
        role: tone === "alert" && i === 0 ? "alert" : null,
      },
      h("span", { class: "prompt-mark", "aria-hidden": "true" }, TONE_MARKS[tone]),
      h("span", { class: "prompt-kind" }, TONE_LABELS[tone]),
      h("span", { class: "prompt-message" }, prompt.message),
    );
  }));
}

// A prompt the customer's preferences held back ("no sales offers"): named, with the
// reason, so the agent knows the offer was withheld on purpose.
function renderHeldBack(ctx) {
  const held = Array.isArray(ctx.prompts_held_back) ? ctx.prompts_held_back : [];
  const list = $("#prompts-held-back");
  list.replaceChildren(...held.map((p) => h(
    "li", { class: "held-back-item", dataset: { rule: p.rule || "", tone: p.tone || "" } },
    h("span", { class: "held-back-label" }, "Held back"), " ",
    h("code", { class: "held-back-rule" }, p.rule || "?"), " ",
    h("span", { class: "held-back-reason" }, p.reason || ""),
  )));
  list.hidden = !held.length;
}

// The customer's own preferences and newest notes (self-service), above the history.
function renderOwnWords(ctx) {
  const prefs = ctx.preferences && typeof ctx.preferences === "object" ? ctx.preferences : null;
  const notes = Array.isArray(ctx.notes) ? ctx.notes : [];
  const box = $("#own-words");
  box.dataset.notes = String(notes.length);
  box.dataset.preferences = prefs ? "set" : "none";
  box.dataset.hours = ctx.contact_hours_now?.status || "no_preference";
  $("#own-words-set").textContent = prefs?.set_at ? `preferences set ${fmtWhen(prefs.set_at)}` : "";
  $("#own-preferences").replaceChildren(prefs
    ? h("dl", { class: "kv own-kv" }, preferenceRows(prefs, ctx.contact_hours_now).flatMap(([k, v, key]) => [
      h("dt", { dataset: { pref: key } }, k),
      h("dd", { dataset: { pref: key } }, v === null || v === undefined || v === ""
        ? h("span", { class: "muted" }, "\u2013") : v),
    ]))
    : h("p", { class: "muted own-none" }, "No preferences set."));
  $("#own-notes-count").textContent = notes.length
    ? `(${notes.length}, newest first${ctx.more_notes ? "; older ones on file" : ""})` : "";
  const items = noteItems(notes);
  $("#own-notes").replaceChildren(...(items.length ? items
    : [h("li", { class: "muted own-none" }, "No notes from the customer.")]));
}

// The service says why (ctx.at_risk.reasons, plain sentences); null means not at risk.
// Text nodes only: the reasons quote the customer's own words.
function renderAtRisk(ctx) {
  const risk = ctx.at_risk;
  const reasons = Array.isArray(risk?.reasons) ? risk.reasons.filter((r) => typeof r === "string" && r) : [];
  const box = $("#at-risk");
  $("#at-risk-reasons").replaceChildren(...reasons.map((r) => h("li", { class: "at-risk-reason" }, r)));
  box.hidden = !reasons.length;
  box.dataset.openAlerts = String(risk?.open_alerts?.length || 0);
  box.dataset.negative = String(risk?.negative_recent?.length || 0);
}

function renderOpenAlerts(ctx) {
  const list = ctx.open_alerts || [];
  const box = $("#open-alerts");
  if (!list.length) {
    box.replaceChildren(h("p", { class: "muted" }, "None."));
    return;
  }
  box.replaceChildren(...list.map((a) => h(
    "div", { class: "open-alert", dataset: { alertId: a.alert_id } },
    h("div", { class: "open-alert-head" },
      statusBadge(a.status),
      a.kind === "negative_interaction"
        ? h("strong", { class: "open-alert-kind" }, " negative interaction")
        : h("strong", { class: "open-alert-score" }, ` ${a.score}/${a.scale_max ?? 5}`),
      a.category ? h("span", { class: `cat cat-${a.category}` }, label(a.category)) : null,
      h("span", { class: "muted open-alert-when" }, a.raised_at ? fmtRelative(a.raised_at) : "")),
    a.comment ? h("div", { class: "open-alert-comment" }, `“${a.comment}”`) : null,
  )));
}

// "4 min 47 s", "52 s", "1 h 05 min".
function fmtDuration(seconds) {
  if (typeof seconds !== "number" || !Number.isFinite(seconds) || seconds < 0) return null;
  const s = Math.round(seconds);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min${s % 60 ? ` ${s % 60} s` : ""}`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, "0")} min`;
}

function summary(entry) {
  const p = entry.payload || {};
  const merged = entry.merged;
  const parts = [];
  if (p.intent) parts.push(["intent", p.intent]);
  if (p.queue) parts.push(["queue", p.queue]);
  const duration = fmtDuration(merged ? merged.duration_seconds : p.handle_seconds);
  if (duration) parts.push(["duration", duration]);
  if (merged && !merged.ended_at) parts.push(["state", "not ended"]);
  const outcome = merged ? merged.outcome : p.outcome;
  if (outcome) parts.push(["outcome", label(outcome)]);
  if (p.subject) parts.push(["subject", `“${p.subject}”`]);
  if (p.score !== undefined && p.score !== null) {
    parts.push(["score", `${p.score}/${p.scale_max ?? 5}`]);
  }
  if (p.comment) parts.push(["comment", `“${p.comment}”`]);
  if (p.text) parts.push(["text", `“${p.text}”`]);
  const mood = entry.sentiment;
  if (mood?.label === "negative" && typeof mood.score === "number") {
    parts.push(["sentiment", `negative (${mood.score.toFixed(2)})`]);
  }
  return h("div", { class: "event-summary" }, parts.map(([key, value], i) => [
    i ? h("span", { class: "sep", "aria-hidden": "true" }, " · ") : null,
    h("span", { class: `ev-${key}` }, value),
  ]));
}

function renderEvents(ctx) {
  const events = ctx.events || [];
  const list = $("#events");
  const items = [];
  let seenOther = false;
  // Shown exactly in the server's order: it already ranks relevant first.
  for (const entry of events) {
    const relevance = entry.relevance || "other";
    if (relevance === "other" && !seenOther && items.length) {
      items.push(h("li", { class: "events-divider", "aria-hidden": "true" }, "Other interactions"));
    }
    if (relevance === "other") seenOther = true;
    const flags = entry.flags || [];
    const tags = [];
    if (relevance === "intent") {
      tags.push(intentTag(ctx.intent, entry.payload?.intent) || h("span", { class: "tag tag-intent" }, "relevant"));
    } else if (relevance === "alert") {
      tags.push(h("span", { class: "tag tag-alert" }, "alert"));
    }
    if (flags.includes("open_alert")) {
      tags.push(h("span", { class: "flag flag-open-alert" }, "open alert"));
    }
    for (const flag of flags) {
      if (flag !== "open_alert") tags.push(h("span", { class: `flag flag-${flag}` }, label(flag)));
    }
    const survey = entry.channel === "survey" && typeof entry.payload?.score === "number";
    const low = survey && entry.payload.score <= (entry.payload.scale_min ?? 1) + 1;
    items.push(h(
      "li",
      {
        class: `event relevance-${relevance}${flags.includes("open_alert") ? " has-open-alert" : ""}${low ? " low-score" : ""}`,
        dataset: {
          relevance, eventId: entry.event_id || "", channel: entry.channel || "",
          eventIds: (entry.merged?.event_ids || [entry.event_id || ""]).join(" "),
        },
      },
      h("div", { class: "event-when" }, timeEl(entry.merged?.started_at || entry.occurred_at)),
      h("div", { class: "event-main" },
        h("div", { class: "event-line" },
          channelBadge(entry.channel), " ",
          h("span", { class: "event-type", title: entry.merged ? entry.merged.types.join(" + ") : null },
            entry.merged ? [...entry.merged.types].reverse().join(" → ") : entry.type),
          " ", tags),
        summary(entry)),
    ));
  }
  if (!events.length) items.push(h("li", { class: "muted events-empty" }, "No earlier interactions."));
  list.replaceChildren(...items);
  const counts = ctx.counts || { total: events.length, relevant: events.filter((e) => e.relevance !== "other").length };
  $("#event-counts").textContent = `${counts.relevant} relevant of ${counts.total}`;
}

// An ambiguous profile ("~?phone:..."): the customers who claim its identifier, one
// Confirm each.  Names are text nodes (h() never parses HTML), so a record's name is
// shown as written.
function renderWhoIsCalling(ctx) {
  const box = $("#who-is-calling");
  const who = ctx.who_is_calling;
  const ambiguous = String(ctx.customer_id).startsWith("~?") && who && typeof who === "object";
  box.hidden = !ambiguous;
  $("#who-status").textContent = "";
  delete box.dataset.confirmed;
  if (!ambiguous) {
    $("#who-candidates").replaceChildren();
    return;
  }
  box.dataset.profileId = who.profile_id || ctx.customer_id;
  box.dataset.eventId = who.event_id || "";
  const candidates = Array.isArray(who.candidates) ? who.candidates : [];
  if (!candidates.length) {
    $("#who-candidates").replaceChildren(h("li", { class: "muted" },
      "No customer claims this identifier any more."));
    return;
  }
  $("#who-candidates").replaceChildren(...candidates.map((c) => h(
    "li", { class: "who-candidate", dataset: { customerId: c.customer_id } },
    h("span", { class: "who-name" }, typeof c.name === "string" && c.name ? c.name : "(no name)"),
    h("span", { class: "who-id" }, c.customer_id),
    h("button", {
      type: "button", class: "btn btn-primary who-confirm",
      dataset: { customerId: c.customer_id }, disabled: who.event_id ? null : "",
      title: `File this contact under ${c.customer_id}`,
    }, "Confirm"),
  )));
}

async function confirmCaller(button) {
  const box = $("#who-is-calling");
  const customerId = button.dataset.customerId;
  const status = $("#who-status");
  const buttons = [...box.querySelectorAll(".who-confirm")];
  for (const b of buttons) b.disabled = true;
  status.textContent = `Confirming ${customerId}…`;
  status.dataset.state = "pending";
  try {
    await api("/api/identity/confirm", {
      method: "POST",
      body: { profile_id: box.dataset.profileId, event_id: box.dataset.eventId, customer_id: customerId },
    });
    box.dataset.confirmed = customerId;
    button.closest(".who-candidate")?.classList.add("confirmed");
    status.dataset.state = "done";
    status.textContent = `Confirmed: this contact is being filed under ${customerId}.`;
  } catch (err) {
    for (const b of buttons) b.disabled = false;
    status.dataset.state = "error";
    status.textContent = `Could not confirm ${customerId}: ${errorText(err)}`;
  }
}

function showContext(ctx, { live = false } = {}) {
  if (!ctx?.customer_id) return;
  currentCustomer = ctx.customer_id;
  $("#waiting").hidden = true;
  $("#context").hidden = false;
  $("#lookup-error").hidden = true;
  const context = $("#context");
  context.dataset.customerId = ctx.customer_id;
  context.dataset.source = live ? "live" : "lookup";
  renderWhoIsCalling(ctx);
  renderCustomer(ctx);
  renderContact(ctx);
  renderAtRisk(ctx);
  renderOwnWords(ctx);
  renderPrompts(ctx);
  renderHeldBack(ctx);
  renderOpenAlerts(ctx);
  renderEvents(ctx);
  remember(ctx);
  window.scrollTo({ top: 0 });
  context.classList.remove("arrived");
  if (live) {
    void context.offsetWidth;
    context.classList.add("arrived");
    if (document.hidden) document.title = `● ${ctx.customer?.name || ctx.customer_id} · Agent`;
  }
}

// --- lookups -----------------------------------------------------------------------

async function lookup(customerId, intent) {
  const id = customerId.trim();
  if (!id) return;
  const params = new URLSearchParams();
  if (intent?.trim()) params.set("intent", intent.trim());
  const seq = ++pending;
  const error = $("#lookup-error");
  error.hidden = true;
  document.body.setAttribute("aria-busy", "true");
  try {
    const query = params.toString();
    const ctx = await api(`/api/customers/${encodeURIComponent(id)}/context${query ? `?${query}` : ""}`);
    if (seq === pending) showContext(ctx, { live: false });
  } catch (err) {
    if (seq === pending) {
      error.textContent = `Cannot look up ${id}: ${errorText(err)}`;
      error.hidden = false;
    }
  } finally {
    if (seq === pending) document.body.removeAttribute("aria-busy");
  }
}

function onSocketMessage(message) {
  if (message?.type === "contact" && message.context) {
    pending += 1; // a live contact wins over a lookup still under way
    showContext(message.context, { live: true });
  }
}

// --- wiring ---------------------------------------------------------------------------

function refreshRelativeTimes() {
  const now = Date.now();
  for (const el of document.querySelectorAll("time[datetime] .rel")) {
    el.textContent = fmtRelative(el.parentElement.getAttribute("datetime"), now);
  }
}

function start() {
  if (!agentId) {
    $("#choose-agent").hidden = false;
    setConnState("offline", "choose an agent");
    $("#agent-form").addEventListener("submit", (e) => {
      e.preventDefault();
      const id = $("#agent-id").value.trim();
      if (id) location.search = `?agent=${encodeURIComponent(id)}`;
    });
    requireToken();
    return;
  }
  document.title = `${agentId} · Agent · cx-timeline`;
  $("#agent-name").textContent = `Agent ${agentId}`;
  $("#agent-name").hidden = false;
  $("#agent-main").hidden = false;
  renderPrevious();
  $("#lookup-form").addEventListener("submit", (e) => {
    e.preventDefault();
    lookup($("#lookup-customer").value, $("#lookup-intent").value);
  });
  $("#who-candidates").addEventListener("click", (e) => {
    const button = e.target.closest(".who-confirm");
    if (button && !button.disabled) confirmCaller(button);
  });
  $("#previous").addEventListener("click", (e) => {
    const button = e.target.closest(".previous-contact");
    if (button) lookup(button.dataset.customerId, button.dataset.intent);
  });
  document.addEventListener("visibilitychange", () => {
    if (!document.hidden) document.title = `${agentId} · Agent · cx-timeline`;
  });
  setInterval(refreshRelativeTimes, 30_000);
  if (!requireToken()) return;
  liveSocket(`/ws/agents/${encodeURIComponent(agentId)}`, onSocketMessage, {
    // No contacts will come: say so instead of "waiting" (the banner says why).
    onRefused: () => {
      $("#waiting").classList.add("refused");
      $("#waiting p").textContent = "Live contacts are off for this page: see the message above. "
        + "Look-ups still work with a valid token.";
    },
  });
}

start();
