// Small DOM and time helpers. No innerHTML with data: every text goes through
// textContent, so a node name or a note can never inject markup.

/** el("button.btn.btn-primary", {type: "button", onclick}, "text", child...) */
export function el(spec, attrs = {}, ...children) {
  const [tag, ...classes] = spec.split(".");
  const node = document.createElement(tag || "div");
  if (classes.length) node.className = classes.join(" ");
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === undefined || v === null || v === false) continue;
    if (k.startsWith("on") && typeof v === "function") node.addEventListener(k.slice(2), v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else if (k === "text") node.textContent = v;
    else if (v === true) node.setAttribute(k, "");
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const SVG_NS = "http://www.w3.org/2000/svg";

export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === undefined || v === null) continue;
    if (k === "text") node.textContent = v;
    else node.setAttribute(k, String(v));
  }
  for (const c of children.flat()) if (c) node.append(c);
  return node;
}

/** Data that stays in its own language (place names, notes): marked lang="vi"
 * so screen readers pronounce it right and the language test can skip it. */
export function data(text, tag = "span") {
  return el(tag, { lang: "vi", class: "data" }, text ?? "");
}

/** Interface words with a place name inside: `text` is what t() made with `name` in
 * it; the name is marked lang="vi" (data, never translated), the rest is interface. */
export function withData(text, name) {
  const at = name ? text.indexOf(name) : -1;
  if (at < 0) return [text];
  return [text.slice(0, at), data(name), text.slice(at + name.length)].filter((x) => x !== "");
}

export function clear(node) {
  while (node.firstChild) node.firstChild.remove();
  return node;
}

// The hub's clock, not the browser's: elapsed times are measured against
// server_time_ms from the stream's hello (a PC clock minutes off would
// otherwise show a fresh alarm as old, or a negative time).
let clockOffsetMs = 0;
export function setServerTime(serverMs) {
  if (typeof serverMs === "number") clockOffsetMs = serverMs - Date.now();
}
export function nowMs() {
  return Date.now() + clockOffsetMs;
}

export function pad(n) {
  return String(n).padStart(2, "0");
}

/** 0:07, 12:45, 1:02:03 */
export function elapsed(fromMs, toMs = nowMs()) {
  if (!fromMs) return "–";
  let s = Math.max(0, Math.floor((toMs - fromMs) / 1000));
  const h = Math.floor(s / 3600);
  s -= h * 3600;
  const m = Math.floor(s / 60);
  s -= m * 60;
  return h ? `${h}:${pad(m)}:${pad(s)}` : `${m}:${pad(s)}`;
}

export function clockTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  return `${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

export function dateTime(ms) {
  if (!ms) return "–";
  const d = new Date(ms);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${clockTime(ms)}`;
}

/** "yyyy-mm-dd" (an <input type=date> value) to ms at local midnight, or null. */
export function dateInputMs(value, endOfDay = false) {
  if (!value) return null;
  const [y, m, d] = value.split("-").map(Number);
  const t = new Date(y, m - 1, d, endOfDay ? 23 : 0, endOfDay ? 59 : 0, endOfDay ? 59 : 0);
  return t.getTime() + (endOfDay ? 999 : 0);
}

export function qs(params) {
  const u = new URLSearchParams();
  for (const [k, v] of Object.entries(params)) {
    if (v !== undefined && v !== null && v !== "") u.set(k, String(v));
  }
  const s = u.toString();
  return s ? `?${s}` : "";
}
