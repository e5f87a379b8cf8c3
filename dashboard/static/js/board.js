// The incident board: open and acknowledged incidents, newest first, with the
// time since the press ticking, and acknowledge / silence / resolve in one or
// two clicks. Cards are updated in place, so a half-typed note or the focus of
// a keyboard user survives the live updates around it.

import { post } from "./api.js";
import { t, kindLabel, stateLabel } from "./i18n.js";
import { state, on, can, areaName, isActive } from "./state.js";
import { el, data, clear, elapsed, clockTime } from "./util.js";
import { gong } from "./sound.js";
import { applyIncident } from "./alerts.js";
import { toast, showError } from "./ui.js";

const OUTCOMES = ["real", "false_alarm", "prank", "test"];
let root;
let list;
let empty;
const cards = new Map(); // incident id -> {node, refs}

export function mountBoard(section) {
  root = section;
  clear(root);
  const testBtn = el("button.btn.btn-ghost", { type: "button", id: "btn-test-sound", "data-i18n": "test_sound" }, t("test_sound"));
  testBtn.addEventListener("click", () => {
    if (!gong()) toast(t("sound_blocked_short"));
  });
  root.append(
    el("div.view-head", {},
      el("h1", { "data-i18n": "board_title" }, t("board_title")),
      testBtn),
    (empty = el("p.empty", { id: "board-empty" },
      el("span", { "data-i18n": "board_empty" }, t("board_empty")))),
    (list = el("div.incident-list", { id: "incident-list" })),
  );
  on("incidents", render);
  on("areas", render);
  on("lang", () => {
    for (const [id, c] of cards) fill(c, state.incidents.get(id));
  });
  setInterval(tick, 1000);
  render();
}

function sortKey(inc) {
  // Open ones first (they need someone), then acknowledged; newest first within each.
  return [inc.state === "open" ? 0 : 1, -(inc.first_press_ms || inc.opened_ms || 0)];
}

function render() {
  if (!list) return;
  const active = [...state.incidents.values()].filter(isActive);
  active.sort((a, b) => {
    const ka = sortKey(a);
    const kb = sortKey(b);
    return ka[0] - kb[0] || ka[1] - kb[1];
  });
  const keep = new Set(active.map((i) => i.id));
  for (const [id, c] of cards) {
    if (!keep.has(id)) {
      c.node.remove();
      cards.delete(id);
    }
  }
  let prev = null;
  for (const inc of active) {
    let c = cards.get(inc.id);
    if (!c) {
      c = build(inc);
      cards.set(inc.id, c);
    }
    fill(c, inc);
    // Move only when out of place: moving a focused node would drop keyboard focus.
    const want = prev ? prev.nextSibling : list.firstChild;
    if (want !== c.node) list.insertBefore(c.node, want);
    prev = c.node;
  }
  empty.hidden = active.length > 0;
  const openCount = active.filter((i) => i.state === "open").length;
  const badge = document.getElementById("board-count");
  if (badge) {
    badge.hidden = active.length === 0;
    badge.textContent = String(active.length);
    badge.classList.toggle("count-alert", openCount > 0);
  }
}

function build(inc) {
  const r = {};
  const node = el("article.incident", { "data-id": inc.id, "aria-labelledby": `inc-title-${inc.id}` },
    el("div.incident-head", {},
      (r.kind = el("h2.kind", { id: `inc-title-${inc.id}` })),
      (r.drill = el("span.badge.badge-drill", {})),
      (r.state = el("span.badge.state", {})),
      (r.esc = el("span.badge.badge-esc", {}))),
    el("div.incident-where", {},
      (r.area = data("", "strong")),
      el("span.sep", { "aria-hidden": "true" }, " · "),
      (r.nodeLabel = el("span.muted", {})),
      " ",
      (r.origin = data(""))),
    el("div.incident-time", {},
      (r.elapsed = el("span.elapsed", { "data-from": "" })),
      " ",
      (r.pressed = el("span.muted", {})),
      " ",
      (r.count = el("span.muted", {}))),
    (r.ackBy = el("p.ack-by", {})),
  );
  if (can("operator")) {
    r.ackBtn = el("button.btn.btn-primary.btn-ack", { type: "button" });
    r.ackBtn.addEventListener("click", () => act(inc.id, "acknowledge", r.ackBtn));
    r.silenceBtn = el("button.btn.btn-ghost.btn-silence", { type: "button" });
    r.silenceBtn.addEventListener("click", () => act(inc.id, "silence", r.silenceBtn));
    r.resolveBtn = el("button.btn.btn-ghost.btn-resolve", { type: "button", "aria-expanded": "false" });
    r.resolveBox = el("div.resolve-box", { hidden: true, role: "group" });
    r.resolveBtn.addEventListener("click", () => {
      const open = r.resolveBox.hidden;
      r.resolveBox.hidden = !open;
      r.resolveBtn.setAttribute("aria-expanded", String(open));
      if (open) r.outcomeBtns[0].focus();
    });
    r.noteLabel = el("label", { for: `note-${inc.id}` });
    r.note = el("input", { id: `note-${inc.id}`, type: "text", maxlength: "500", autocomplete: "off" });
    r.outcomeLegend = el("p.muted", {});
    r.outcomeBtns = OUTCOMES.map((o) => {
      const b = el("button.btn.btn-outcome", { type: "button", "data-outcome": o });
      b.addEventListener("click", () => resolve(inc.id, o, r));
      return b;
    });
    r.resolveBox.append(r.noteLabel, r.note, r.outcomeLegend, el("div.outcomes", {}, r.outcomeBtns));
    node.append(el("div.actions", {}, r.ackBtn, r.silenceBtn, r.resolveBtn), r.resolveBox);
  }
  return { node, r };
}

function fill(c, inc) {
  if (!inc) return;
  const { node, r } = c;
  node.classList.toggle("is-open", inc.state === "open");
  node.classList.toggle("is-drill", !!inc.drill);
  node.dataset.kind = inc.kind || "";
  node.dataset.state = inc.state;
  r.kind.textContent = kindLabel(inc.kind);
  r.drill.textContent = t("drill");
  r.drill.hidden = !inc.drill;
  r.state.textContent = stateLabel(inc.state);
  r.state.dataset.state = inc.state;
  r.esc.hidden = !inc.escalation_level;
  r.esc.textContent = t("escalated", { n: inc.escalation_level || 0 });
  r.area.textContent = inc.area_name || areaName(inc.area);
  r.nodeLabel.textContent = t("origin_node");
  r.origin.textContent = inc.origin_node || "–";
  const from = inc.first_press_ms || inc.opened_ms;
  r.elapsed.dataset.from = String(from || "");
  r.elapsed.textContent = elapsed(from);
  r.elapsed.setAttribute("title", t("elapsed_title"));
  r.pressed.textContent = t("pressed_at", { time: clockTime(from) });
  r.count.textContent = inc.alarm_count > 1 ? t("press_count", { n: inc.alarm_count }) : "";
  if (inc.state === "acknowledged") {
    r.ackBy.hidden = false;
    r.ackBy.textContent = t("acked_by", { who: inc.acknowledged_by || "?", time: clockTime(inc.acknowledged_ms) });
  } else {
    r.ackBy.hidden = true;
  }
  if (r.ackBtn) {
    r.ackBtn.textContent = t("acknowledge");
    r.ackBtn.hidden = inc.state !== "open";
    r.silenceBtn.textContent = t("silence");
    r.resolveBtn.textContent = t("resolve");
    r.noteLabel.textContent = t("resolve_note");
    r.outcomeLegend.textContent = t("resolve_pick");
    r.outcomeBtns.forEach((b) => (b.textContent = t(`outcome_${b.dataset.outcome}`)));
  }
}

function tick() {
  for (const span of root.querySelectorAll(".elapsed")) {
    const from = Number(span.dataset.from);
    if (from) span.textContent = elapsed(from);
  }
}

async function act(id, action, btn) {
  btn.disabled = true;
  try {
    const inc = await post(`/incidents/${encodeURIComponent(id)}/${action}`);
    if (inc && inc.id) applyIncident(inc);
    toast(t(`done_${action}`));
  } catch (err) {
    showError(err);
  } finally {
    btn.disabled = false;
  }
}

async function resolve(id, outcome, r) {
  r.outcomeBtns.forEach((b) => (b.disabled = true));
  try {
    const note = r.note.value.trim();
    const inc = await post(`/incidents/${encodeURIComponent(id)}/resolve`, note ? { outcome, note } : { outcome });
    if (inc && inc.id) applyIncident(inc);
    toast(t("done_resolve"));
  } catch (err) {
    showError(err);
  } finally {
    r.outcomeBtns.forEach((b) => (b.disabled = false));
  }
}
