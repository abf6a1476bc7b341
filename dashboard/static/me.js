// The customer's own page (/me#token=...): their notes and preferences, a form for
// each, and a download of everything held about them.  Every write is an event the
// worker files through Kafka, so a 202 means "accepted": the page says so and reads
// /api/me again until the change shows.  The token is a customer token; the service
// answers only about its subject, so no customer id is ever sent from here.
import { $, api, errorText, fmtWhen, h, requireToken, timeEl, token } from "/static/common.js";
import { channelText, languageText } from "/static/own_words.js";

// schemas/self-service.v1.json: a note is 1..2000 characters, accessibility needs <= 500.
const NOTE_MAX = 2000;
const ACCESS_MAX = 500;
const POLL_MS = 500;
const POLL_FOR_MS = 20_000;
const OTHER = "__other";
const DAYS = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];
const DAY_LABELS = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
// The zones most customers of a UK/European contact centre live in; any other IANA
// name can be typed under "Other".
const ZONES = [
  "Europe/London", "Europe/Dublin", "Europe/Lisbon", "Europe/Paris", "Europe/Brussels",
  "Europe/Amsterdam", "Europe/Berlin", "Europe/Madrid", "Europe/Rome", "Europe/Warsaw",
  "Europe/Prague", "Europe/Stockholm", "Europe/Bucharest", "Europe/Athens", "Europe/Helsinki",
  "Europe/Kyiv", "Europe/Istanbul", "Africa/Lagos", "Africa/Cairo", "Africa/Nairobi",
  "Africa/Johannesburg", "Asia/Dubai", "Asia/Karachi", "Asia/Kolkata", "Asia/Dhaka",
  "Asia/Singapore", "Asia/Hong_Kong", "Asia/Shanghai", "Asia/Tokyo", "Australia/Sydney",
  "Pacific/Auckland", "America/St_Johns", "America/Halifax", "America/New_York",
  "America/Chicago", "America/Denver", "America/Los_Angeles", "America/Mexico_City",
  "America/Sao_Paulo", "UTC",
];
const LANGUAGES = ["en", "cy", "gd", "ga", "pl", "ro", "pa", "ur", "bn", "gu", "ar", "so",
  "pt", "es", "fr", "de", "it", "lt", "uk", "tr", "zh"];
// The preference fields, for putting a refusal ("time_zone: ...") next to its field.
const FIELDS = ["text", "preferred_channel", "contact_hours", "time_zone", "language",
  "accessibility_needs", "no_sales_offers"];
const INPUTS = {
  text: "#note-text", preferred_channel: "#pref-channel", contact_hours: "#pref-from",
  time_zone: "#pref-zone", language: "#pref-language", accessibility_needs: "#pref-access",
  no_sales_offers: "#pref-no-offers",
};

let me = null; // the last GET /api/me
let formFilled = false;

const sleep = (ms) => new Promise((resolve) => { setTimeout(resolve, ms); });
// The schema counts characters (code points), not UTF-16 units: an emoji is one.
const characters = (text) => [...text].length;

// --- reading -----------------------------------------------------------------------

async function load() {
  try {
    render(await api("/api/me"));
  } catch (err) {
    const box = $("#load-error");
    box.textContent = `Cannot load your details: ${errorText(err)}`;
    box.hidden = false;
  } finally {
    $("#me-main").removeAttribute("aria-busy");
  }
}

// Read /api/me until `check` holds (the worker has filed the change); false after a while.
async function until(check) {
  const deadline = Date.now() + POLL_FOR_MS;
  while (Date.now() < deadline) {
    await sleep(POLL_MS);
    try {
      const data = await api("/api/me");
      if (check(data)) {
        render(data);
        return true;
      }
    } catch {
      // A blip while polling: the next read may work.
    }
  }
  return false;
}

function render(data) {
  if (!data || typeof data !== "object") return;
  me = data;
  $("#me-title").textContent = data.name ? `Hello, ${data.name}` : "Hello";
  const who = $("#me-who");
  who.textContent = data.customer_id || "";
  who.hidden = !data.customer_id;
  document.title = "Your account · cx-timeline";
  renderSummary(data.preferences);
  if (!formFilled) {
    fillForm(data.preferences);
    formFilled = true;
  }
  renderNotes(Array.isArray(data.notes) ? data.notes : []);
}

// --- preferences ---------------------------------------------------------------------

// "Mon–Fri", "Every day", "Sat–Mon": as domain/contact_hours.py writes them.
function daysText(days) {
  const chosen = new Set(days.map((d) => DAYS.indexOf(d)).filter((i) => i >= 0));
  if (chosen.size === 7) return "Every day";
  let start = 0;
  if (chosen.has(5) && chosen.has(6) && chosen.has(0)) start = [...Array(7).keys()].find((d) => !chosen.has(d));
  const runs = [];
  for (let i = 0; i < 7; i += 1) {
    const day = (start + i) % 7;
    if (!chosen.has(day)) continue;
    const last = runs.at(-1);
    if (last && last.at(-1) === (day + 6) % 7) last.push(day);
    else runs.push([day]);
  }
  return runs.map((r) => (r.length === 1 ? DAY_LABELS[r[0]] : `${DAY_LABELS[r[0]]}\u2013${DAY_LABELS[r.at(-1)]}`)).join(", ");
}

function hoursText(prefs) {
  const hours = prefs?.contact_hours;
  if (!hours || typeof hours !== "object") return "Any time";
  const days = Array.isArray(hours.days) ? hours.days : [];
  return `${daysText(days)} ${hours.from}\u2013${hours.to}${prefs.time_zone ? ` (${prefs.time_zone})` : " (UTC)"}`;
}

function renderSummary(prefs) {
  const p = prefs && typeof prefs === "object" ? prefs : null;
  const box = $("#prefs-now");
  box.dataset.state = p ? "set" : "none";
  if (!p) {
    box.replaceChildren(h("p", { class: "muted" }, "You have not set any preferences yet."));
    return;
  }
  const none = (text) => h("span", { class: "muted" }, text);
  const rows = [
    ["Contact me by", channelText(p.preferred_channel) || none("No preference"), "preferred_channel"],
    ["Contact hours", hoursText(p), "contact_hours"],
    ["Time zone", p.time_zone || none("Not set"), "time_zone"],
    ["Language", languageText(p.language) || none("No preference"), "language"],
    ["Accessibility", p.accessibility_needs
      ? h("span", { class: "accessibility-needs" }, p.accessibility_needs) : none("None given"),
    "accessibility_needs"],
    ["Sales offers", p.no_sales_offers === true
      ? h("strong", { class: "no-offers" }, "No sales offers, please") : "We may tell you about offers",
    "no_sales_offers"],
  ];
  box.replaceChildren(
    h("dl", { class: "kv me-kv" }, rows.flatMap(([k, v, key]) => [
      h("dt", { dataset: { pref: key } }, k), h("dd", { dataset: { pref: key } }, v)])),
    p.set_at ? h("p", { class: "muted hint" }, "Last changed ", timeEl(p.set_at)) : null,
  );
}

function fillChoice(select, other, value) {
  const known = [...$(select).options].some((o) => o.value === value && o.value !== OTHER);
  $(select).value = !value ? "" : known ? value : OTHER;
  $(other).value = value && !known ? value : "";
  $(other).hidden = $(select).value !== OTHER;
}

function choiceValue(select, other) {
  const picked = $(select).value;
  if (picked === OTHER) return $(other).value.trim() || null;
  return picked || null;
}

function fillForm(prefs) {
  const p = prefs && typeof prefs === "object" ? prefs : null;
  $("#pref-channel").value = p?.preferred_channel || "";
  const hours = p?.contact_hours && typeof p.contact_hours === "object" ? p.contact_hours : null;
  $("#hours-set").checked = Boolean(hours);
  $("#hours-any").checked = !hours;
  if (hours) {
    $("#pref-from").value = hours.from || "09:00";
    $("#pref-to").value = hours.to || "17:00";
    const days = new Set(Array.isArray(hours.days) ? hours.days : []);
    for (const box of document.querySelectorAll('input[name="day"]')) box.checked = days.has(box.value);
  }
  showHours();
  // Someone who never chose a zone most likely lives in this device's.
  fillChoice("#pref-zone", "#pref-zone-other", p ? p.time_zone : browserZone());
  fillChoice("#pref-language", "#pref-language-other", p?.language || "");
  $("#pref-access").value = p?.accessibility_needs || "";
  $("#pref-no-offers").checked = p?.no_sales_offers === true;
  updateCounts();
}

function browserZone() {
  try {
    return Intl.DateTimeFormat().resolvedOptions().timeZone || "";
  } catch {
    return "";
  }
}

function showHours() {
  $("#hours-detail").hidden = !$("#hours-set").checked;
}

function formPreferences() {
  const days = [...document.querySelectorAll('input[name="day"]:checked')].map((box) => box.value);
  return {
    preferred_channel: $("#pref-channel").value || null,
    contact_hours: $("#hours-set").checked
      ? { from: $("#pref-from").value, to: $("#pref-to").value, days } : null,
    time_zone: choiceValue("#pref-zone", "#pref-zone-other"),
    language: choiceValue("#pref-language", "#pref-language-other"),
    accessibility_needs: $("#pref-access").value.trim() || null,
    no_sales_offers: $("#pref-no-offers").checked,
  };
}

// The six fields as the service stores them, for "has my change arrived?".
function samePreferences(stored, sent) {
  if (!stored || typeof stored !== "object") return false;
  const pick = (p) => JSON.stringify([p.preferred_channel ?? null, p.contact_hours ?? null,
    p.time_zone ?? null, p.language ?? null, p.accessibility_needs ?? null, p.no_sales_offers === true]);
  return pick(stored) === pick(sent);
}

async function savePreferences(event) {
  event.preventDefault();
  const form = $("#prefs-form");
  clearErrors(form);
  const status = $("#prefs-status");
  const prefs = formPreferences();
  if (prefs.accessibility_needs && characters(prefs.accessibility_needs) > ACCESS_MAX) {
    showFieldError(form, "accessibility_needs",
      `accessibility_needs: at most ${ACCESS_MAX} characters (this is ${characters(prefs.accessibility_needs)})`);
    return;
  }
  const button = $("#prefs-save");
  button.disabled = true;
  setStatus(status, "pending", "Saving…");
  try {
    await api("/api/me/preferences", { method: "PUT", body: prefs });
  } catch (err) {
    setStatus(status, "error", "Not saved.");
    showFieldError(form, fieldOf(errorText(err)), errorText(err));
    button.disabled = false;
    return;
  }
  setStatus(status, "accepted", "Saved \u2014 it appears in a moment.");
  const shown = await until((data) => samePreferences(data.preferences, prefs));
  button.disabled = false;
  setStatus(status, shown ? "done" : "slow", shown ? "Saved."
    : "Saved, but not shown yet: reload the page in a minute.");
}

// --- notes -----------------------------------------------------------------------------

function renderNotes(notes) {
  const list = $("#notes");
  list.dataset.count = String(notes.length);
  if (!notes.length) {
    list.replaceChildren(h("li", { class: "muted notes-empty" }, "No notes yet."));
    return;
  }
  list.replaceChildren(...notes.map((note) => h(
    "li", { class: "note", dataset: { noteId: note.note_id || "" } },
    h("div", { class: "note-head" },
      h("span", { class: "note-when" }, timeEl(note.added_at, { short: true })),
      h("button", {
        type: "button", class: "btn-link note-delete", dataset: { noteId: note.note_id || "" },
        title: "Delete this note", "aria-label": `Delete the note of ${fmtWhen(note.added_at)}`,
      }, "Delete")),
    h("div", { class: "note-text" }, typeof note.text === "string" ? note.text : ""),
  )));
}

async function addNote(event) {
  event.preventDefault();
  const form = $("#note-form");
  clearErrors(form);
  const status = $("#note-status");
  const text = $("#note-text").value;
  if (!text.trim()) {
    showFieldError(form, "text", "text: write something first");
    return;
  }
  if (characters(text) > NOTE_MAX) {
    showFieldError(form, "text",
      `text: a note is at most ${NOTE_MAX} characters; this one is ${characters(text)}`);
    return;
  }
  const button = $("#note-add");
  button.disabled = true;
  setStatus(status, "pending", "Adding…");
  let answer;
  try {
    answer = await api("/api/me/notes", { method: "POST", body: { text } });
  } catch (err) {
    setStatus(status, "error", "Not added.");
    showFieldError(form, "text", errorText(err));
    button.disabled = false;
    return;
  }
  $("#note-text").value = "";
  updateCounts();
  button.disabled = false;
  setStatus(status, "accepted", "Saved \u2014 it appears in a moment.");
  const noteId = answer?.note_id;
  const shown = await until((data) => (Array.isArray(data.notes) ? data.notes : [])
    .some((n) => (noteId ? n.note_id === noteId : n.text === text)));
  setStatus(status, shown ? "done" : "slow", shown ? "Saved."
    : "Saved, but not shown yet: reload the page in a minute.");
}

async function deleteNote(button) {
  const noteId = button.dataset.noteId;
  const item = button.closest(".note");
  const status = $("#note-status");
  button.disabled = true;
  item?.classList.add("deleting");
  setStatus(status, "pending", "Deleting…");
  try {
    await api(`/api/me/notes/${encodeURIComponent(noteId)}`, { method: "DELETE" });
  } catch (err) {
    item?.classList.remove("deleting");
    button.disabled = false;
    setStatus(status, "error", `Not deleted: ${errorText(err)}`);
    return;
  }
  setStatus(status, "accepted", "Deleted \u2014 it disappears in a moment.");
  const gone = await until((data) => !(Array.isArray(data.notes) ? data.notes : [])
    .some((n) => n.note_id === noteId));
  setStatus(status, gone ? "done" : "slow", gone ? "Deleted."
    : "Deleted, but still shown: reload the page in a minute.");
}

// --- errors and status -------------------------------------------------------------------

// "time_zone: unknown ..." or "payload.contact_hours.from: ..." -> the field it names.
function fieldOf(message) {
  const found = /^\s*([A-Za-z0-9_.[\]]+)\s*:/.exec(message || "");
  if (!found) return null;
  const parts = found[1].replace(/\[\d+\]/g, "").split(".");
  return parts.find((part) => FIELDS.includes(part)) || null;
}

function showFieldError(form, field, message) {
  const slot = (field && form.querySelector(`[data-error-for="${field}"]`))
    || form.querySelector('[data-error-for="form"]')
    || form.querySelector(".field-error");
  slot.textContent = message;
  slot.hidden = false;
  slot.dataset.field = field || "form";
  const input = INPUTS[field] ? $(INPUTS[field]) : null;
  input?.setAttribute("aria-invalid", "true");
}

function clearErrors(form) {
  for (const slot of form.querySelectorAll(".field-error")) {
    slot.hidden = true;
    slot.textContent = "";
  }
  for (const el of form.querySelectorAll('[aria-invalid="true"]')) el.removeAttribute("aria-invalid");
}

function setStatus(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function updateCounts() {
  for (const [input, counter, max] of [["#note-text", "#note-count", NOTE_MAX], ["#pref-access", "#access-count", ACCESS_MAX]]) {
    const n = characters($(input).value);
    const el = $(counter);
    el.textContent = `${n} / ${max}`;
    el.classList.toggle("over", n > max);
  }
}

// --- export ----------------------------------------------------------------------------

async function exportAll() {
  const status = $("#export-status");
  const button = $("#export");
  button.disabled = true;
  setStatus(status, "pending", "Preparing your file…");
  try {
    const response = await fetch("/api/me/export", {
      headers: { Authorization: `Bearer ${token}`, Accept: "application/json" }, cache: "no-store",
    });
    if (!response.ok) {
      let message = `HTTP ${response.status}`;
      try {
        message = (await response.json())?.message || message;
      } catch {
        // not JSON: the status says enough
      }
      throw new Error(message);
    }
    const blob = await response.blob();
    const name = fileName(response.headers.get("Content-Disposition"))
      || `cx-timeline-${me?.customer_id || "me"}.json`;
    const url = URL.createObjectURL(blob);
    const link = h("a", { href: url, download: name, hidden: true });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 60_000);
    setStatus(status, "done", `Downloaded ${name} (${Math.max(1, Math.round(blob.size / 1024))} KB).`);
  } catch (err) {
    setStatus(status, "error", `Cannot download: ${errorText(err)}`);
  } finally {
    button.disabled = false;
  }
}

function fileName(disposition) {
  const found = /filename="?([^";]+)"?/i.exec(disposition || "");
  return found ? found[1].trim() : null;
}

// --- wiring ----------------------------------------------------------------------------

function fillChoices() {
  const zones = $("#pref-zone");
  const mine = browserZone();
  const listed = mine && !ZONES.includes(mine) ? [mine, ...ZONES] : ZONES;
  zones.append(...listed.map((zone) => h("option", { value: zone },
    zone === mine ? `${zone.replaceAll("_", " ")} (this device)` : zone.replaceAll("_", " "))));
  zones.append(h("option", { value: OTHER }, "Other\u2026"));
  const languages = $("#pref-language");
  languages.append(...LANGUAGES.map((tag) => h("option", { value: tag }, languageText(tag))));
  languages.append(h("option", { value: OTHER }, "Other\u2026"));
  for (const [select, other] of [["#pref-zone", "#pref-zone-other"], ["#pref-language", "#pref-language-other"]]) {
    $(select).addEventListener("change", () => {
      $(other).hidden = $(select).value !== OTHER;
      if (!$(other).hidden) $(other).focus();
    });
  }
}

function start() {
  fillChoices();
  updateCounts();
  showHours();
  for (const radio of document.querySelectorAll('input[name="hours-mode"]')) radio.addEventListener("change", showHours);
  $("#note-text").addEventListener("input", updateCounts);
  $("#pref-access").addEventListener("input", updateCounts);
  $("#note-form").addEventListener("submit", addNote);
  $("#prefs-form").addEventListener("submit", savePreferences);
  $("#export").addEventListener("click", exportAll);
  $("#notes").addEventListener("click", (event) => {
    const button = event.target.closest(".note-delete");
    if (button && !button.disabled) deleteNote(button);
  });
  if (!requireToken()) {
    $("#me-main").removeAttribute("aria-busy");
    return;
  }
  load();
}

start();
