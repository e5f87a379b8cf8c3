// Area and node view: a schematic map drawn from the registry's coordinates
// (SVG, no tiles: it works with no internet) and the health table.

import { post, patch } from "./api.js";
import { t, statusLabel, powerLabel, ago } from "./i18n.js";
import { state, on, can, areaName } from "./state.js";
import { el, svg, data, clear } from "./util.js";
import { select, showError, toast } from "./ui.js";

const SPAN = 1000; // drawing units across the larger side of the nodes' spread
const HAMLET_MIN_PX = 24; // sizes on screen, in CSS pixels
const LABEL_PX = 15;
const DOT_PX = 8;
let root;
let mapBox;
let tableBox;
let areaSel;
let filter = "";

export function mountMap(section) {
  root = section;
  clear(root);
  areaSel = select([["", "all_areas"]], { id: "map-area" });
  areaSel.addEventListener("change", () => {
    filter = areaSel.value;
    render();
  });
  root.append(
    el("div.view-head", {},
      el("h1", { "data-i18n": "map_title" }, t("map_title")),
      el("div.field.inline", {},
        el("label", { for: "map-area", "data-i18n": "area" }, t("area")), areaSel)),
    (mapBox = el("figure.map", { id: "node-map" })),
    el("h2", { "data-i18n": "health_title" }, t("health_title")),
    (tableBox = el("div", { id: "health" })),
  );
  on("nodes", render);
  on("areas", () => {
    fillAreas();
    render();
  });
  on("lang", render);
  on("troubles", () => !root.hidden && renderMap()); // a low battery is marked at once
  setInterval(() => {
    if (!root.hidden) renderTable();
  }, 5000);
  let resizeTimer = null;
  window.addEventListener("resize", () => {
    clearTimeout(resizeTimer);
    resizeTimer = setTimeout(() => !root.hidden && renderMap(), 200);
  });
  fillAreas();
  render();
}

function fillAreas() {
  const keep = areaSel.value;
  while (areaSel.options.length > 1) areaSel.remove(1);
  const paths = [...state.areas.values()].sort((a, b) => a.path.localeCompare(b.path));
  for (const a of paths) {
    const o = el("option", { value: a.path, lang: "vi" }, "\u00a0\u00a0".repeat(Math.max(0, (a.depth ?? 1) - 1)) + (a.name || a.path));
    areaSel.append(o);
  }
  areaSel.value = keep;
}

function inFilter(n) {
  return !filter || n.area === filter || (n.area || "").startsWith(filter + "/");
}

/** Called when the view is shown: the map is sized for the width it now has. */
export function showMap() {
  if (root) render();
}

export function nodeClass(n) {
  if (n.sounding) return "sounding";
  return ["online", "offline", "missing"].includes(n.status) ? n.status : "unknown";
}

function render() {
  if (!root) return;
  renderMap();
  renderTable();
}

function renderMap() {
  clear(mapBox);
  const nodes = [...state.nodes.values()].filter(inFilter);
  const placed = nodes.filter((n) => typeof n.lat === "number" && typeof n.lon === "number");
  const counts = { online: 0, offline: 0, missing: 0, sounding: 0, unknown: 0 };
  for (const n of nodes) counts[nodeClass(n)] += 1;
  const legend = el("ul.legend", {},
    ["online", "offline", "missing", "sounding", "unknown"].map((c) =>
      el("li", {}, el(`span.dot.dot-${c}`, { "aria-hidden": "true" }), `${statusLabel(c)} (${counts[c]})`)));
  if (!placed.length) {
    mapBox.append(el("p.empty", {}, t("map_no_coords")), legend);
    return;
  }
  const g = layout(placed, Math.max(280, mapBox.clientWidth || 900), Math.max(240, window.innerHeight * 0.7));
  const hamlets = svg("g", { class: "hamlets" });
  const labels = svg("g", { class: "hamlet-labels" });
  const fs = g.u * LABEL_PX;
  const placedLabels = [];
  for (const h of g.hamlets) {
    const alarmed = h.members.some((n) => n.sounding);
    hamlets.append(svg("circle", { cx: h.x, cy: h.y, r: h.r, class: alarmed ? "hamlet hamlet-alarm" : "hamlet" }));
    const lab = placeLabel(h, fs, placedLabels, g.u, g.hamlets);
    labels.append(svg("text", { x: lab.x, y: lab.y, class: "hamlet-label", "text-anchor": lab.anchor, lang: "vi",
      "font-size": fs.toFixed(1), "stroke-width": (g.u * 4).toFixed(1), text: h.name }));
  }
  const dots = svg("g", { class: "nodes" });
  const r = g.u * DOT_PX;
  for (const n of placed) {
    const c = nodeClass(n);
    const [x, y] = g.pos.get(n.id);
    const node = svg("g", { class: `node node-${c}`, "data-node": n.id, transform: `translate(${x.toFixed(1)},${y.toFixed(1)})` });
    if (c === "sounding") node.append(svg("circle", { r: r * 1.1, class: "ring", "stroke-width": (g.u * 3).toFixed(1) }));
    node.append(svg("circle", { r: r.toFixed(1), class: "dot", "stroke-width": (g.u * 2).toFixed(1) }));
    if (c === "missing") {
      const a = (r * 0.5).toFixed(1);
      node.append(svg("path", { d: `M-${a},-${a} L${a},${a} M${a},-${a} L-${a},${a}`, class: "cross", "stroke-width": (g.u * 2).toFixed(1) }));
    }
    const batt = batteryNote(n);
    if (batt) {
      // Beside the dot: a node on battery (or low) shows its charge on the map itself.
      node.classList.add("node-on-battery");
      if (batt.low) node.classList.add("node-low-battery");
      node.append(svg("text", { x: (r * 1.5).toFixed(1), y: (r * 0.45).toFixed(1), class: batt.low ? "battery-label battery-low" : "battery-label",
        "font-size": (g.u * 12).toFixed(1), "stroke-width": (g.u * 3).toFixed(1), text: batt.text }));
    }
    node.append(svg("title", { text: `${n.name || n.id} — ${statusLabel(c)}${batt ? ` — ${powerLabel(n.power)}, ${batt.text}` : ""}` }));
    dots.append(node);
  }
  const summary = t("map_summary", { n: nodes.length, online: counts.online, missing: counts.missing + counts.offline, sounding: counts.sounding });
  // Names placed beside a circle may reach past the layout's box: take them in.
  let [vx, vy, vw, vh] = g.viewBox.split(" ").map(Number);
  const m = g.u * 6;
  for (const b of placedLabels) {
    const x1 = Math.max(vx + vw, b[2] + m);
    const y1 = Math.max(vy + vh, b[3] + m);
    vx = Math.min(vx, b[0] - m);
    vy = Math.min(vy, b[1] - m);
    vw = x1 - vx;
    vh = y1 - vy;
  }
  const pic = svg("svg", { viewBox: [vx, vy, vw, vh].map((v) => v.toFixed(1)).join(" "), role: "img", "aria-label": summary, class: "map-svg" }, hamlets, dots, labels);
  mapBox.append(pic, el("figcaption", {}, legend));
  const noCoords = nodes.length - placed.length;
  if (noCoords) mapBox.append(el("p.muted", {}, t("map_some_no_coords", { n: noCoords })));
}

/** A hamlet's name above its circle, or beside or below it where another name already is
 * (hamlets of one commune sit close together). */
function placeLabel(h, fs, taken, u, all) {
  const w = h.name.length * fs * 0.62; // bold text, a little wider than average
  const gap = u * 5;
  const tries = [
    { x: h.x, y: h.y - h.r - gap, anchor: "middle", box: [h.x - w / 2, h.y - h.r - gap - fs, h.x + w / 2, h.y - h.r - gap] },
    { x: h.x + h.r + gap, y: h.y + fs / 3, anchor: "start", box: [h.x + h.r + gap, h.y - fs * 0.7, h.x + h.r + gap + w, h.y + fs * 0.4] },
    { x: h.x - h.r - gap, y: h.y + fs / 3, anchor: "end", box: [h.x - h.r - gap - w, h.y - fs * 0.7, h.x - h.r - gap, h.y + fs * 0.4] },
    { x: h.x, y: h.y + h.r + gap + fs, anchor: "middle", box: [h.x - w / 2, h.y + h.r + gap, h.x + w / 2, h.y + h.r + gap + fs] },
  ];
  const overlaps = (b, o) => b[0] < o[2] && o[0] < b[2] && b[1] < o[3] && o[1] < b[3];
  // Other hamlets' circles, as their inner squares, count as taken too.
  const circles = all.filter((o) => o !== h).map((o) => {
    const k = o.r * 0.8;
    return [o.x - k, o.y - k, o.x + k, o.y + k];
  });
  const clash = (b) => taken.some((o) => overlaps(b, o)) || circles.some((o) => overlaps(b, o));
  const pick = tries.find((c) => !clash(c.box)) || tries[0];
  taken.push(pick.box);
  return pick;
}

/** Where everything goes, in drawing units, and `u`: drawing units per screen pixel,
 * so dots and labels have the same size on screen on a phone and on a wall display. */
/** Push overlapping hamlet circles apart (a schematic, not a survey): hamlets a few
 * hundred metres apart would otherwise be drawn on top of each other on a phone. */
function separate(hamlets, gap) {
  for (let round = 0; round < 80; round++) {
    let moved = false;
    for (let i = 0; i < hamlets.length; i++) {
      for (let j = i + 1; j < hamlets.length; j++) {
        const a = hamlets[i];
        const b = hamlets[j];
        let vx = b.x + b.dx - (a.x + a.dx);
        let vy = b.y + b.dy - (a.y + a.dy);
        let d = Math.hypot(vx, vy);
        const need = a.r + b.r + gap;
        if (d >= need) continue;
        if (d < 1e-6) {
          vx = 1;
          vy = 0;
          d = 1;
        }
        const push = (need - d) / 2 + 1e-6;
        a.dx -= (vx / d) * push;
        a.dy -= (vy / d) * push;
        b.dx += (vx / d) * push;
        b.dy += (vy / d) * push;
        moved = true;
      }
    }
    if (!moved) return;
  }
}

function layout(placed, screenPx, screenH) {
  // Equirectangular around the middle latitude: at a commune's scale the error is
  // nothing, and no tiles (or internet) are needed. The larger spread = SPAN units.
  const midLat = placed.reduce((s, n) => s + n.lat, 0) / placed.length;
  const k = Math.cos((midLat * Math.PI) / 180);
  const xs = placed.map((n) => n.lon * k);
  const ys = placed.map((n) => -n.lat);
  const [x0, y0] = [Math.min(...xs), Math.min(...ys)];
  const spread = Math.max(Math.max(...xs) - x0, Math.max(...ys) - y0, 1e-9);
  const scale = SPAN / spread;
  const pos = new Map(placed.map((n) => [n.id, [(n.lon * k - x0) * scale, (-n.lat - y0) * scale]]));
  const byArea = new Map();
  for (const n of placed) {
    if (!byArea.has(n.area)) byArea.set(n.area, []);
    byArea.get(n.area).push(n);
  }
  let u = (SPAN * 1.3) / screenPx;
  let out = null;
  // Twice: the first pass guesses the drawing's width, the second uses what it found.
  for (let pass = 0; pass < 2; pass++) {
    const drawn = new Map(); // node id -> where it is drawn (its hamlet moved apart)
    const box = { x0: Infinity, y0: Infinity, x1: -Infinity, y1: -Infinity };
    const grow = (a, b, c, d) => {
      box.x0 = Math.min(box.x0, a);
      box.y0 = Math.min(box.y0, b);
      box.x1 = Math.max(box.x1, c);
      box.y1 = Math.max(box.y1, d);
    };
    const hamlets = [];
    for (const [area, members] of byArea) {
      const pts = members.map((n) => pos.get(n.id));
      const x = pts.reduce((s, p) => s + p[0], 0) / pts.length;
      const y = pts.reduce((s, p) => s + p[1], 0) / pts.length;
      const r = Math.max(u * HAMLET_MIN_PX, ...pts.map((p) => Math.hypot(p[0] - x, p[1] - y) + u * (DOT_PX + 8)));
      hamlets.push({ area, name: areaName(area), members, x, y, r, dx: 0, dy: 0 });
    }
    separate(hamlets, u * 8);
    for (const h of hamlets) {
      h.x += h.dx;
      h.y += h.dy;
      for (const n of h.members) {
        const p = pos.get(n.id);
        drawn.set(n.id, [p[0] + h.dx, p[1] + h.dy]);
      }
      const half = h.name.length * u * LABEL_PX * 0.32;
      grow(h.x - h.r, h.y - h.r - u * (LABEL_PX + 8), h.x + h.r, h.y + h.r);
      grow(h.x - half, h.y - h.r, h.x + half, h.y);
    }
    const m = u * 10;
    const w = box.x1 - box.x0 + 2 * m;
    const h = box.y1 - box.y0 + 2 * m;
    out = { u, pos: drawn, hamlets, viewBox: [box.x0 - m, box.y0 - m, w, h].map((v) => v.toFixed(1)).join(" ") };
    u = Math.max(w / screenPx, h / screenH); // the .map-svg is at most 70vh tall

  }
  return out;
}

/** What to write beside a node on battery, or with a low_battery trouble open: null if
 * neither (a map of 24 nodes on mains stays clean). */
function batteryNote(n) {
  const low = [...state.troubles.values()].some((tr) => tr.kind === "low_battery" && tr.subject === n.id && !tr.cleared_ms);
  if (n.power !== "battery" && !low) return null;
  const pct = typeof n.battery_pct === "number" ? n.battery_pct : null;
  // Words, not a battery emoji: a wall display's fonts may not have one.
  return { low, pct, text: t("map_battery", { pct: pct === null ? "?" : pct }) };
}

function renderTable() {
  clear(tableBox);
  const nodes = [...state.nodes.values()].filter(inFilter).sort((a, b) =>
    (a.area || "").localeCompare(b.area || "") || a.id.localeCompare(b.id));
  if (!nodes.length) {
    tableBox.append(el("p.empty", {}, t("no_nodes")));
    return;
  }
  const cols = ["col_node", "col_area", "col_status", "col_last_seen", "col_outbox", "col_power", "col_battery", "col_signal", "col_version"];
  const withActions = can("operator");
  const head = el("tr", {}, cols.map((c) => el("th", { scope: "col" }, t(c))), withActions ? el("th", { scope: "col" }, t("col_actions")) : null);
  const body = el("tbody", {});
  for (const n of nodes) {
    const c = nodeClass(n);
    const cells = [
      el("th", { scope: "row", "data-label": t("col_node") }, data(n.name && n.name !== n.id ? `${n.name} (${n.id})` : n.id),
        n.enabled === false ? el("span.badge", {}, t("disabled")) : null),
      el("td", { "data-label": t("col_area") }, data(areaName(n.area))),
      el("td", { "data-label": t("col_status") }, el(`span.status.status-${c}`, {}, el(`span.dot.dot-${c}`, { "aria-hidden": "true" }), statusLabel(c))),
      el("td", { "data-label": t("col_last_seen") }, n.last_seen_ms ? ago(n.last_seen_ms) : t("never")),
      el("td.num", { "data-label": t("col_outbox") }, n.outbox ?? "–"),
      el("td", { "data-label": t("col_power") }, powerLabel(n.power)),
      el("td.num", { "data-label": t("col_battery") }, typeof n.battery_pct === "number" ? `${n.battery_pct}%` : "–"),
      el("td.num", { "data-label": t("col_signal") }, typeof n.rssi_dbm === "number" ? `${n.rssi_dbm} dBm` : "–"),
      el("td", { "data-label": t("col_version") }, n.version || "–"),
    ];
    if (withActions) {
      const acts = el("div.btns", {});
      acts.append(nodeButton(n, "test", "node_test"), nodeButton(n, "ping", "node_ping"));
      if (can("admin")) {
        const b = el("button.btn.btn-small.btn-ghost", { type: "button" }, t(n.enabled === false ? "node_enable" : "node_disable"));
        b.addEventListener("click", async () => {
          b.disabled = true;
          try {
            const updated = await patch(`/nodes/${encodeURIComponent(n.id)}`, { enabled: n.enabled === false });
            if (updated && updated.id) state.nodes.set(updated.id, updated);
            renderTable();
          } catch (err) {
            showError(err);
          } finally {
            b.disabled = false;
          }
        });
        acts.append(b);
      }
      cells.push(el("td.row-actions", { "data-label": t("col_actions") }, acts));
    }
    body.append(el("tr", { "data-node": n.id, class: `row-${c}` }, cells));
  }
  tableBox.append(el("div.table-wrap", {}, el("table.table.table-cards", {}, el("thead", {}, head), body)));
}

function nodeButton(n, action, key) {
  const b = el("button.btn.btn-small.btn-ghost", { type: "button" }, t(key));
  b.addEventListener("click", async () => {
    b.disabled = true;
    try {
      await post(`/nodes/${encodeURIComponent(n.id)}/${action}`);
      toast(t(`done_node_${action}`, { id: n.id }));
    } catch (err) {
      showError(err);
    } finally {
      b.disabled = false;
    }
  });
  return b;
}
