// The demo's simulator panel: press any virtual node's button, and watch its
// hamlet's gongs and LEDs; cut (and restore) mains for a commune and watch the
// batteries. Polls GET /api/v1/sim/nodes every 500 ms while open.

import { get, post } from "./api.js";
import { t, kindLabel, ledLabel } from "./i18n.js";
import { areaName, nodeName, on } from "./state.js";
import { el, data, clear, withData } from "./util.js";
import { showError, toast } from "./ui.js";
import { mountSimPhone, loadSimPhone, pollSimPhone } from "./simphone.js";

const POLL_MS = 500;
let root;
let gridBox;
let powerBox;
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
    (powerBox = el("div.sim-power.btns", { id: "sim-power" })),
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

/** The communes of the village (the parents of the nodes' hamlets), with whether any
 * of their nodes is on battery: one button each to cut or restore the grid. */
function renderPower() {
  const communes = new Map();
  for (const n of nodes) {
    const c = n.area.includes("/") ? n.area.slice(0, n.area.lastIndexOf("/")) : n.area;
    if (!communes.has(c)) communes.set(c, []);
    communes.get(c).push(n);
  }
  // The names are in the key: they may land (with the snapshot) after the first paint,
  // and the language may change; a path is never shown for long.
  const key = JSON.stringify([...communes].map(([c, ms]) => [c, areaName(c), ms.every((n) => n.mains)]).concat([t("sim_cut_power", { area: "" })]));
  if (powerBox.dataset.key === key) return;
  powerBox.dataset.key = key;
  clear(powerBox);
  for (const [c, members] of [...communes].sort((a, b) => a[0].localeCompare(b[0]))) {
    const mains = members.every((n) => n.mains);
    const btn = el("button.btn.btn-small" + (mains ? ".btn-ghost" : ""), { type: "button", "data-area": c, "data-cut": mains ? "1" : "0" },
      // One span: the button is a flex box, which would drop the spaces around the name.
      el("span", {}, withData(t(mains ? "sim_cut_power" : "sim_restore_power", { area: areaName(c) }), areaName(c))));
    btn.addEventListener("click", () => setPower(c, !mains, btn));
    powerBox.append(btn);
  }
}

async function setPower(area, mains, btn) {
  btn.disabled = true;
  try {
    const done = await post("/sim/power", { area, mains });
    toast(t(mains ? "done_restore_power" : "done_cut_power", { area: areaName(area), n: done.nodes }));
  } catch (err) {
    showError(err);
  } finally {
    btn.disabled = false;
  }
}

function render() {
  if (!gridBox) return;
  renderPower();
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
    (c.power = el("p.muted.sim-battery", {})),
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
  const pct = typeof n.battery_pct === "number" ? `${n.battery_pct.toFixed(1)}%` : "–";
  c.power.textContent = t(n.mains ? "sim_on_mains" : "sim_on_battery", { pct });
  c.node.classList.toggle("on-battery", !n.mains);
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
