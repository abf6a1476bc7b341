// Shared by the advisory and agent pages: the token, JSON API calls, the live
// websocket with reconnect, and small DOM and time helpers. No build step.

const TOKEN_KEY = "cxt.token";

// The token arrives once in the URL fragment (never sent to the server, unlike
// a query string) and then lives in sessionStorage so reloads and links within
// the tab keep working; the fragment is dropped so it is not left on screen or
// in the history.
export function readToken() {
  const hash = location.hash.startsWith("#") ? location.hash.slice(1) : location.hash;
  const fromUrl = new URLSearchParams(hash).get("token");
  if (fromUrl) {
    try {
      sessionStorage.setItem(TOKEN_KEY, fromUrl);
    } catch {
      // Storage can be disabled; the token still works for this page view.
    }
    history.replaceState(history.state, "", location.pathname + location.search);
    return fromUrl;
  }
  try {
    return sessionStorage.getItem(TOKEN_KEY);
  } catch {
    return null;
  }
}

export const token = readToken();

// Pasting the URL with a new #token= into a tab already on the page only
// changes the fragment (no reload), so take the token and start again with it.
window.addEventListener("hashchange", () => {
  const before = token;
  const after = readToken();
  if (after && after !== before) location.reload();
  else if (after) history.replaceState(history.state, "", location.pathname + location.search);
});

export function forgetToken() {
  try {
    sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Nothing to forget.
  }
}

// --- DOM --------------------------------------------------------------------

// h("td", {class: "status"}, "open"): children may be strings, nodes, arrays or
// null; text always goes in as text nodes, so data from the API is never HTML.
export function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs || {})) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") el.className = value;
    else if (key === "dataset") Object.assign(el.dataset, value);
    else if (key.startsWith("on") && typeof value === "function") {
      el.addEventListener(key.slice(2), value);
    } else if (value === true) el.setAttribute(key, "");
    else el.setAttribute(key, String(value));
  }
  append(el, children);
  return el;
}

function append(el, children) {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    if (Array.isArray(child)) append(el, child);
    else el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

export const $ = (selector, root = document) => root.querySelector(selector);

// --- messages ---------------------------------------------------------------

// One banner per page (#banner) for problems that concern the whole page: no
// token, a refused token, the API unreachable.
export function showBanner(message, { kind = "error", id = "page" } = {}) {
  const banner = $("#banner");
  if (!banner) return;
  let item = banner.querySelector(`[data-banner="${id}"]`);
  if (!item) {
    item = h("div", {
      id: `banner-${id}`, class: `banner-item ${kind}`, dataset: { banner: id }, role: "alert",
    });
    banner.append(item);
  }
  item.className = `banner-item ${kind}`;
  item.replaceChildren(...(Array.isArray(message) ? message : [message]));
  banner.hidden = false;
}

export function clearBanner(id = "page") {
  const banner = $("#banner");
  if (!banner) return;
  banner.querySelector(`[data-banner="${id}"]`)?.remove();
  banner.hidden = banner.children.length === 0;
}

export function requireToken() {
  if (token) return true;
  showBanner(
    ["Open the URL printed by ", h("code", {}, "./dev up"), " (it carries your token)"],
    { id: "no-token", kind: "warning" },
  );
  setConnState("no-token", "no token");
  return false;
}

// --- API --------------------------------------------------------------------

export class ApiError extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

// JSON in, JSON out; a refusal becomes an ApiError carrying the service's
// {"error", "message"} so callers can show the message as is.
export async function api(path, { method = "GET", body } = {}) {
  const headers = { Accept: "application/json" };
  if (token) headers.Authorization = `Bearer ${token}`;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      cache: "no-store",
    });
  } catch (err) {
    throw new ApiError(0, "network", `The dashboard service cannot be reached (${err.message}).`);
  }
  const text = await response.text();
  let data = null;
  try {
    data = text ? JSON.parse(text) : null;
  } catch {
    data = null;
  }
  if (!response.ok) {
    const code = data?.error || `http_${response.status}`;
    const message = data?.message || `${method} ${path} failed: HTTP ${response.status}`;
    const error = new ApiError(response.status, code, message);
    if (response.status === 401) {
      showBanner(
        ["Your token was refused: ", message, ". Open the URL printed by ",
          h("code", {}, "./dev up"), " again."],
        { id: "auth" },
      );
    }
    throw error;
  }
  return data;
}

export function errorText(err) {
  if (err instanceof ApiError) return err.message;
  return err?.message || String(err);
}

// --- live socket --------------------------------------------------------------

const STATE_LABELS = {
  connecting: "connecting…",
  live: "live",
  reconnecting: "reconnecting",
  offline: "offline",
  refused: "refused",
  "no-token": "no token",
};

// The connection indicator (#conn) carries data-state so tests and CSS can
// read it: connecting | live | reconnecting | offline | refused | no-token.
export function setConnState(state, label) {
  const el = $("#conn");
  if (!el) return;
  el.dataset.state = state;
  const text = el.querySelector(".conn-label") || el;
  text.textContent = label || STATE_LABELS[state] || state;
  el.title = `Live updates: ${label || STATE_LABELS[state] || state}`;
}

// Opens a websocket on `path` and keeps it open: on any close it reconnects
// after 1 s, 2 s, 4 s ... up to 30 s, resetting once a connection has held.
// Browsers cannot set headers on websockets, so the token travels as the
// "bearer.<token>" subprotocol next to "cxt.v1".  A browser cannot read a refused
// handshake either, so the page also offers "cxt.close-reasons": the service then
// refuses with a close code 4000 + HTTP status and the reason, which is shown,
// and retrying stops (a token refused now is refused on every retry).
// 1008: policy violation; 4400 / 4401 / 4403 / 4404: the handshake's HTTP status.
const REFUSAL_CODES = new Set([1008, 4400, 4401, 4403, 4404]);

export function liveSocket(path, onMessage, { onOpen, onClose, onRefused } = {}) {
  let socket = null;
  let attempt = 0;
  let timer = null;
  let countdown = null;
  let stopped = false;

  function connect() {
    if (stopped) return;
    if (!token) {
      setConnState("no-token");
      return;
    }
    setConnState(attempt === 0 ? "connecting" : "reconnecting", attempt === 0 ? null : "connecting…");
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    try {
      socket = new WebSocket(scheme + location.host + path,
        ["cxt.v1", "cxt.close-reasons", `bearer.${token}`]);
    } catch (err) {
      scheduleRetry(`cannot open: ${err.message}`);
      return;
    }
    let opened = false;
    socket.addEventListener("open", () => {
      opened = true;
      attempt = 0;
      setConnState("live");
      onOpen?.();
    });
    socket.addEventListener("message", (event) => {
      let data;
      try {
        data = JSON.parse(event.data);
      } catch {
        console.warn("ignoring a websocket message that is not JSON", event.data);
        return;
      }
      onMessage(data);
    });
    socket.addEventListener("close", (event) => {
      socket = null;
      onClose?.(event);
      if (stopped) return;
      if (REFUSAL_CODES.has(event.code)) {
        refuse(event);
        return;
      }
      scheduleRetry(opened ? "connection lost" : "cannot connect");
    });
  }

  // Not a network failure: the same request gets the same answer, so say why and stop.
  function refuse(event) {
    stopped = true;
    clearTimeout(timer);
    clearInterval(countdown);
    const reason = event.reason || "the service gave no reason";
    setConnState("refused", "refused");
    const el = $("#conn");
    if (el) el.title = `Live updates refused: ${reason}`;
    const advice = event.code === 4401 || event.code === 4403
      ? ["Open the URL printed by ", h("code", {}, "./dev up"), " (it carries your token) again."]
      : ["Check the address."];
    showBanner(
      ["Live updates refused: ", h("span", { class: "refusal-reason" }, reason), ". ", ...advice],
      { id: "ws-auth" },
    );
    onRefused?.(event);
  }

  function scheduleRetry(why) {
    attempt += 1;
    const delay = Math.min(30_000, 1000 * 2 ** Math.min(attempt - 1, 5));
    let left = Math.round(delay / 1000);
    const show = () => setConnState("reconnecting", `${why}; retry in ${left} s`);
    show();
    clearInterval(countdown);
    countdown = setInterval(() => {
      left -= 1;
      if (left > 0) show();
    }, 1000);
    clearTimeout(timer);
    timer = setTimeout(() => {
      clearInterval(countdown);
      connect();
    }, delay);
  }

  // A tab coming back from sleep should not wait out a long backoff.
  window.addEventListener("online", () => {
    if (!socket && !stopped) {
      clearTimeout(timer);
      clearInterval(countdown);
      attempt = 0;
      connect();
    }
  });

  connect();
  return {
    close() {
      stopped = true;
      clearTimeout(timer);
      clearInterval(countdown);
      socket?.close(1000);
      setConnState("offline");
    },
    get socket() {
      return socket;
    },
  };
}

// --- time ---------------------------------------------------------------------

// One convention on both pages, matching the charts, the report and the API:
// times are shown in UTC, always with the zone, never in the browser's zone.
const relativeFormat = new Intl.RelativeTimeFormat("en", { numeric: "auto", style: "short" });
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

export function parseTime(value) {
  if (!value) return null;
  const date = new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

const pad = (n) => String(n).padStart(2, "0");

// The one formatter of times for people. Styles:
//   full  "2026-12-01 19:30 UTC"   short "1 Dec 19:30 UTC"
//   time  "19:30 UTC"               date  "1 Dec"      hour "19:00" (axis labels)
export function formatUtc(value, style = "full") {
  const date = value instanceof Date ? value : parseTime(value);
  if (!date) return value || "–";
  const day = `${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]}`;
  const clock = `${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
  switch (style) {
    case "short": return `${day} ${clock} UTC`;
    case "time": return `${clock} UTC`;
    case "date": return day;
    case "hour": return clock;
    default:
      return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${clock} UTC`;
  }
}

export function fmtDateTime(value) {
  return formatUtc(value, "full");
}

export function fmtWhen(value) {
  return formatUtc(value, "short");
}

export function fmtRelative(value, now = Date.now()) {
  const date = parseTime(value);
  if (!date) return "";
  const seconds = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return "just now";
  if (abs < 3600) return relativeFormat.format(Math.round(seconds / 60), "minute");
  if (abs < 86_400) return relativeFormat.format(Math.round(seconds / 3600), "hour");
  if (abs < 86_400 * 45) return relativeFormat.format(Math.round(seconds / 86_400), "day");
  if (abs < 86_400 * 365) return relativeFormat.format(Math.round(seconds / (86_400 * 30)), "month");
  return relativeFormat.format(Math.round(seconds / (86_400 * 365)), "year");
}

// A <time> with the UTC reading, the relative one, and the raw value on hover.
export function timeEl(value, { relative = true, short = false } = {}) {
  const date = parseTime(value);
  if (!date) return h("span", { class: "muted" }, value || "–");
  return h(
    "time",
    { datetime: value, title: `${date.toISOString()} (${value})` },
    short ? fmtWhen(value) : fmtDateTime(value),
    relative ? h("span", { class: "rel-sep" }, " · ") : null,
    relative ? h("span", { class: "rel" }, fmtRelative(value)) : null,
  );
}

// --- small things -------------------------------------------------------------

export function debounce(fn, ms) {
  let timer = null;
  return (...args) => {
    clearTimeout(timer);
    timer = setTimeout(() => fn(...args), ms);
  };
}

export function label(text) {
  return String(text ?? "").replaceAll("_", " ");
}

export const CHANNEL_LABELS = {
  call: "Call", chat: "Chat", email: "Email", survey: "Survey", social: "Social",
};

export function channelBadge(channel) {
  const known = Object.hasOwn(CHANNEL_LABELS, channel || "");
  return h(
    "span",
    { class: `channel channel-${known ? channel : "other"}`, title: channel || "unknown channel" },
    h("span", { class: "channel-icon", "aria-hidden": "true" }, channelGlyph(channel)),
    known ? CHANNEL_LABELS[channel] : channel || "?",
  );
}

// Plain glyphs that every system font has, rather than emoji (which headless
// and kiosk machines often lack).
function channelGlyph(channel) {
  return { call: "☎", chat: "✎", email: "✉", survey: "★", social: "#" }[channel] || "•";
}

export function statusBadge(status, { cls = "badge" } = {}) {
  return h("span", { class: `${cls} status-${status}` }, status);
}
