// What a customer told us themselves (their preferences and notes), written the same
// way on the agent page, the advisory call-back panel and the customer's own page.
// Only text nodes (h() never parses HTML): notes and accessibility needs are the
// customer's own words, whatever characters they typed.
import { h, timeEl } from "/static/common.js";

export const CHANNEL_NAMES = {
  call: "Phone call", chat: "Chat", email: "E-mail", sms: "Text message (SMS)",
};

let languageNames = null;
try {
  languageNames = new Intl.DisplayNames(["en"], { type: "language" });
} catch {
  languageNames = null; // an old browser: the tag alone still says it
}

// "pl" -> "Polish (pl)"; a tag the browser does not know stays as written.
export function languageText(tag) {
  if (typeof tag !== "string" || !tag) return null;
  let name = null;
  try {
    name = languageNames?.of(tag) || null;
  } catch {
    name = null; // not a well-formed tag
  }
  return name && name !== tag ? `${name} (${tag})` : tag;
}

export function channelText(channel) {
  if (typeof channel !== "string" || !channel) return null;
  return CHANNEL_NAMES[channel] || channel;
}

// The verdict on the contact hours, in words that need no legend:
// "Inside their hours now · until today 17:30", "Outside their hours — next window
// opens tomorrow 09:00", "No contact hours set". data-status: inside | outside |
// no_preference.
export function hoursStatus(now) {
  const status = now?.status || "no_preference";
  let text;
  if (status === "inside") {
    text = ["Inside their hours now", now.closes_text ? ` · until ${now.closes_text}` : ""];
  } else if (status === "outside") {
    text = ["Outside their hours", now.next_window_text
      ? ` \u2014 next window opens ${now.next_window_text}` : ""];
  } else {
    text = [now?.reason ? capitalise(now.reason) : "No contact hours set"];
  }
  return h("span", { class: `hours-status hours-${status}`, dataset: { status } },
    h("span", { class: "hours-dot", "aria-hidden": "true" }), ...text);
}

function capitalise(text) {
  return text ? text[0].toUpperCase() + text.slice(1) : text;
}

// [label, value, key] rows of a definition list; only preferences the customer set,
// and the contact hours always (saying "none set" is an answer too).
export function preferenceRows(preferences, hoursNow) {
  const p = preferences && typeof preferences === "object" ? preferences : {};
  const rows = [];
  if (p.preferred_channel) rows.push(["Preferred channel", channelText(p.preferred_channel), "preferred_channel"]);
  if (p.language) rows.push(["Language", languageText(p.language), "language"]);
  rows.push(["Contact hours", h("span", { class: "hours" },
    hoursNow?.hours_text ? h("span", { class: "hours-text" }, hoursNow.hours_text) : null,
    hoursStatus(hoursNow)), "contact_hours"]);
  if (hoursNow?.local_text) rows.push(["Their time now", hoursNow.local_text, "local_time"]);
  if (p.accessibility_needs) {
    rows.push(["Accessibility", h("span", { class: "accessibility-needs" }, p.accessibility_needs),
      "accessibility_needs"]);
  }
  if (p.no_sales_offers === true) {
    rows.push(["Sales offers", h("strong", { class: "no-offers" }, "No sales offers, please"),
      "no_sales_offers"]);
  }
  return rows;
}

// A list of notes, newest first: date then the text, as written.
export function noteItems(notes, { extra } = {}) {
  return (Array.isArray(notes) ? notes : []).filter((n) => n && typeof n === "object").map((note) => h(
    "li", { class: "note", dataset: { noteId: note.note_id || "" } },
    h("div", { class: "note-when" }, timeEl(note.added_at, { short: true })),
    h("div", { class: "note-text" }, typeof note.text === "string" ? note.text : ""),
    extra ? extra(note) : null,
  ));
}
