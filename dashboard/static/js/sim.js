// The demo's simulator panel: press any virtual node's button, and watch its
// hamlet's gongs and LEDs. Polls GET /api/v1/sim/nodes every 500 ms while open.

import { get, post } from "./api.js";
import { t, kindLabel, ledLabel } from "./i18n.js";
import { areaName, nodeName, on } from "./state.js";
import { el, data, clear } from "./util.js";
import { showError, toast } from "./ui.js";
import { mountSimPhone, loadSimPhone, pollSimPhone } from "./simphone.js";

const POLL_MS = 500;
let root;
let gridBox;
let timer = null;
let cards = new Map(); // node id -> {node, gong, led, ledText}
let nodes = [];

export async function simAvailable() {
  try {
    await get("/sim/nodes", { quiet401: true });
    return true;
  } catch {
    return false;
  }
}

export function mountSim(section) {
  root = section;
  clear(root);
  root.append(
    el("div.view-head", {}, el("h1", { "data-i18n": "sim_title" }, t("sim_title"))),
    el("p.muted", { "data-i18n": "sim_hint" }, t("sim_hint")),
  );
  mountSimPhone(root);
  root.append((gridBox = el("div.sim-grid", { id: "sim-grid" })));
  // Names come from the snapshot, which may land after the panel's first answer.
  const redraw = () => {
    cards = new Map();
    render();
  };
  on("lang", redraw);
  on("areas", redraw);
  on("nodes", () => {
    for (const [id, c] of cards) c.name.textContent = nodeName(id);
  });
}

export function startSim() {
  stopSim();
  loadSimPhone();
  poll();
  timer = setInterval(poll, POLL_MS);
}

export function stopSim() {
  clearInterval(timer);
  timer = null;
}

let inFlight = false;
async function poll() {
  if (inFlight) return;
  inFlight = true;
  try {
    nodes = (await get("/sim/nodes")) || [];
    render();
    await pollSimPhone();
  } catch (err) {
    /* the connection banner says when the hub is gone; do not toast twice a second */
  } finally {
    inFlight = false;
  }
}

function render() {
  if (!gridBox) return;
  const ids = new Set(nodes.map((n) => n.id));
  if (cards.size !== ids.size || [...cards.keys()].some((id) => !ids.has(id))) {
    clear(gridBox);
    cards = new Map();
    const byArea = new Map();
    for (const n of nodes) {
      if (!byArea.has(n.area)) byArea.set(n.area, []);
      byArea.get(n.area).push(n);
    }
    for (const [area, members] of [...byArea].sort((a, b) => a[0].localeCompare(b[0]))) {
      const group = el("section.sim-area", { "data-area": area }, el("h2", {}, data(areaName(area))));
      for (const n of members) group.append(build(n));
      gridBox.append(group);
    }
  }
  for (const n of nodes) fill(n);
}

function build(n) {
  const c = {};
  c.node = el("div.sim-node", { "data-node": n.id },
    el("div.sim-node-head", {}, (c.name = data(nodeName(n.id), "strong")),
      (c.gong = el("span.gong-lamp", { role: "img" })),
      (c.led = el("span.led", { role: "img" }))),
    (c.ledText = el("p.muted.led-text", {})),
    el("div.sim-buttons", {}, (n.buttons || []).map((b) => {
      const btn = el("button.btn.btn-small.btn-press", { type: "button", "data-button": b.number, "data-kind": b.kind }, t("press_button", { kind: kindLabel(b.kind) }));
      btn.addEventListener("click", () => press(n.id, b.number, btn));
      return btn;
    })));
  cards.set(n.id, c);
  return c.node;
}

function fill(n) {
  const c = cards.get(n.id);
  if (!c) return;
  const sounding = Object.values(n.outputs || {}).some(Boolean) || !!n.sounding;
  c.node.classList.toggle("is-sounding", sounding);
  c.gong.classList.toggle("on", sounding);
  c.gong.setAttribute("aria-label", sounding ? t("gong_on") : t("gong_off"));
  c.gong.textContent = sounding ? t("gong_on") : t("gong_off");
  c.led.dataset.led = n.led || "off";
  c.led.setAttribute("aria-label", t("led_is", { state: ledLabel(n.led) }));
  c.ledText.textContent = t("led_is", { state: ledLabel(n.led) });
}

async function press(id, number, btn) {
  btn.disabled = true;
  try {
    await post(`/sim/nodes/${encodeURIComponent(id)}/press`, { button: number });
    toast(t("done_press", { id: nodeName(id) }));
  } catch (err) {
    showError(err);
  } finally {
    setTimeout(() => (btn.disabled = false), 1500);
  }
}
