// Area and node view: a schematic map drawn from the registry's coordinates
// (SVG, no tiles: it works with no internet) and the health table.

import { post, patch } from "./api.js";
import { t, statusLabel, powerLabel, ago } from "./i18n.js";
import { state, on, can, areaName } from "./state.js";
import { el, svg, data, clear } from "./util.js";
import { select, showError, toast } from "./ui.js";

const W = 1000;
const H = 620;
const PAD = 70;
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
  setInterval(() => {
    if (!root.hidden) renderTable();
  }, 5000);
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
  const midLat = placed.reduce((s, n) => s + n.lat, 0) / placed.length;
  const k = Math.cos((midLat * Math.PI) / 180);
  const xs = placed.map((n) => n.lon * k);
  const ys = placed.map((n) => -n.lat);
  const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
  const span = Math.max(x1 - x0, y1 - y0, 1e-6);
  const scale = Math.min((W - 2 * PAD) / Math.max(x1 - x0, span * 0.2), (H - 2 * PAD) / Math.max(y1 - y0, span * 0.2));
  const cx = (x0 + x1) / 2;
  const cy = (y0 + y1) / 2;
  const px = (n) => W / 2 + (n.lon * k - cx) * scale;
  const py = (n) => H / 2 + (-n.lat - cy) * scale;

  const groups = new Map();
  for (const n of placed) {
    if (!groups.has(n.area)) groups.set(n.area, []);
    groups.get(n.area).push(n);
  }
  const hamlets = svg("g", { class: "hamlets" });
  const labels = svg("g", { class: "hamlet-labels" });
  for (const [area, members] of groups) {
    const gx = members.reduce((s, n) => s + px(n), 0) / members.length;
    const gy = members.reduce((s, n) => s + py(n), 0) / members.length;
    const r = Math.max(34, ...members.map((n) => Math.hypot(px(n) - gx, py(n) - gy) + 24));
    const alarmed = members.some((n) => n.sounding);
    hamlets.append(svg("circle", { cx: gx, cy: gy, r, class: alarmed ? "hamlet hamlet-alarm" : "hamlet" }));
    labels.append(svg("text", { x: gx, y: gy - r - 8, class: "hamlet-label", "text-anchor": "middle", lang: "vi", text: areaName(area) }));
  }
  const dots = svg("g", { class: "nodes" });
  for (const n of placed) {
    const c = nodeClass(n);
    const g = svg("g", { class: `node node-${c}`, "data-node": n.id, transform: `translate(${px(n).toFixed(1)},${py(n).toFixed(1)})` });
    if (c === "sounding") g.append(svg("circle", { r: 10, class: "ring" }));
    g.append(svg("circle", { r: 9, class: "dot" }));
    if (c === "missing") g.append(svg("path", { d: "M-4,-4 L4,4 M4,-4 L-4,4", class: "cross" }));
    g.append(svg("title", { text: `${n.name || n.id} — ${statusLabel(c)}` }));
    dots.append(g);
  }
  const summary = t("map_summary", { n: nodes.length, online: counts.online, missing: counts.missing + counts.offline, sounding: counts.sounding });
  const pic = svg("svg", { viewBox: `0 0 ${W} ${H}`, role: "img", "aria-label": summary, class: "map-svg" }, hamlets, dots, labels);
  mapBox.append(pic, el("figcaption", {}, legend));
  const noCoords = nodes.length - placed.length;
  if (noCoords) mapBox.append(el("p.muted", {}, t("map_some_no_coords", { n: noCoords })));
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
