// The system strip, on every view: nodes online of those expected, gongs that
// failed to sound, areas lost, the hub's broker and database, which replica
// leads. It asks GET /api/v1/system every few seconds and at once after a node
// or trouble change; a hub that does not answer is itself a fault shown here.
// `healthy()` feeds the connection pill: "live" only when the stream is up AND
// nothing here is wrong.

import { get } from "./api.js";
import { t, getLang } from "./i18n.js";
import { state, on, emit, areaName } from "./state.js";
import { el, clear, clockTime, withData } from "./util.js";

const POLL_MS = 3000;
const STALE_MS = 10000; // no good answer for this long: the hub is not answering
const sys = { info: null, okAt: 0, failed: false };
let box;
let summary;
let items;
let timer = null;
let soon = null;
let inFlight = false;

export function mountSystem(node) {
  box = node;
  clear(box);
  box.append((summary = el("p.sys-summary", { id: "sys-summary", role: "status" })),
    (items = el("ul.sys-items", { id: "sys-items" })));
  on("nodes", pollSoon);
  on("troubles", pollSoon);
  on("troubles", paint); // a power cut shows at once, from the live stream
  on("lang", paint);
  setInterval(paint, 1000); // the staleness check needs no answer to run
}

export function startSystem() {
  stopSystem();
  box.hidden = false;
  poll();
  timer = setInterval(poll, POLL_MS);
}

export function stopSystem() {
  clearInterval(timer);
  timer = null;
  if (box) box.hidden = true;
}

function pollSoon() {
  if (!timer || soon) return;
  // At most about once a second: a hamlet's nodes change together, and every open
  // browser asks (the hub counts all its nodes for each answer).
  soon = setTimeout(() => {
    soon = null;
    poll();
  }, 1000);
}

async function poll() {
  if (inFlight) return;
  inFlight = true;
  try {
    sys.info = await get("/system", { quiet401: true, timeoutMs: 4000 });
    sys.okAt = Date.now();
    sys.failed = false;
  } catch {
    sys.failed = true;
  } finally {
    inFlight = false;
  }
  paint();
}

function silent() {
  return !sys.okAt || sys.failed || Date.now() - sys.okAt > STALE_MS;
}

/** What is wrong now, in words (empty when nothing is). */
export function faults() {
  const out = [];
  if (silent()) {
    if (sys.okAt || sys.failed) out.push(t("deg_hub"));
    return out;
  }
  const i = sys.info;
  const lost = i.nodes.expected - i.nodes.online;
  if (lost > 0) out.push(t("deg_nodes", { n: lost }));
  if (i.failed_to_sound > 0) out.push(t("deg_failed", { n: i.failed_to_sound }));
  if (i.areas_lost.length) out.push(t("deg_areas", { n: i.areas_lost.length }));
  if (!i.broker_connected) out.push(t("deg_broker"));
  if (!i.database_ok) out.push(t("deg_db"));
  return out;
}

/** True when the hub answered lately and nothing is wrong. */
export function healthy() {
  return !!sys.okAt && faults().length === 0;
}

/** Open power cuts: [area, nodes on battery], one line each on the strip. */
function powerCuts() {
  return [...state.troubles.values()]
    .filter((tr) => tr.kind === "power_cut" && !tr.cleared_ms)
    .map((tr) => [tr.subject, Array.isArray(tr.detail?.nodes) ? tr.detail.nodes.length : 0])
    .sort((a, b) => a[0].localeCompare(b[0]));
}

let lastKey = "";
function paint() {
  if (!box) return;
  const bad = faults();
  const cuts = powerCuts();
  const key = JSON.stringify([getLang(), sys.info, silent(), bad, cuts]);
  if (key === lastKey) return; // a once-a-second check must not churn the DOM
  lastKey = key;
  box.classList.toggle("is-degraded", bad.length > 0);
  summary.textContent = bad.length ? `${t("conn_degraded")}: ${bad.join(", ")}` : "";
  summary.hidden = bad.length === 0;
  clear(items);
  const i = sys.info;
  if (!i || silent()) {
    items.append(item(t("sys_hub_silent"), !sys.okAt && !sys.failed ? "muted" : "bad"));
    if (sys.okAt) items.append(item(t("sys_checked", { time: clockTime(sys.okAt) }), "muted"));
  } else {
    const n = i.nodes;
    items.append(item(t("sys_nodes", { on: n.online, all: n.expected }), n.online < n.expected ? "bad" : "ok", "sys-nodes"));
    items.append(item(t("sys_failed", { n: i.failed_to_sound }), i.failed_to_sound ? "bad" : "ok", "sys-failed"));
    const lostNames = i.areas_lost.map(areaName).join(", ");
    const areas = item(t("sys_areas_lost", { n: i.areas_lost.length }), i.areas_lost.length ? "bad" : "ok", "sys-areas");
    if (lostNames) areas.append(" (", el("span", { lang: "vi", class: "data" }, lostNames), ")");
    items.append(areas);
    // A power cut is not a fault of the system (the nodes run on battery), but the
    // officer must know it: one line per area, never one per node.
    for (const [area, n] of cuts) {
      const li = item("", "bad", null);
      li.append(...withData(t("sys_power_cut", { area: areaName(area), n }), areaName(area)));
      li.classList.add("sys-power");
      li.dataset.area = area;
      items.append(li);
    }
    items.append(item(t(i.broker_connected ? "sys_broker_ok" : "sys_broker_bad"), i.broker_connected ? "ok minor" : "bad", "sys-broker"));
    items.append(item(t(i.database_ok ? "sys_db_ok" : "sys_db_bad", { db: i.database }), i.database_ok ? "ok minor" : "bad", "sys-db"));
    items.append(item(t(i.leader ? "sys_leader" : "sys_follower", { id: i.hub_id }), "ok minor", "sys-leader"));
  }
  emit("system");
}

function item(text, cls, id) {
  const li = el("li", { class: `sys-item ${cls}`, id });
  li.append(el("span.sys-mark", { "aria-hidden": "true" }, cls.startsWith("bad") ? "✕" : cls.startsWith("ok") ? "✓" : "…"), " ", text);
  return li;
}

/** For other views: the latest answer (or null). */
export function systemInfo() {
  return sys.info;
}

