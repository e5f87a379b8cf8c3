// One incident card: what, where, since when, how many of its gongs started
// (and which did not), whether its gongs were silenced, and the actions.
// Resolving needs an explicit outcome: nothing is chosen or focused for the
// officer, the submit stays disabled until an outcome is picked, and the
// note's limit is counted as it is typed. Errors (a 409 when someone else
// acted first) are said on the card in words, and the typed note is kept.
// An open card counts down to the incident's next escalation step
// (`next_escalation_ms`), so the officer sees how long before it goes wider.
// A card whose incident another officer closed first stays (with the words and
// the note) until this officer dismisses it.

import { t, kindLabel, stateLabel } from "./i18n.js";
import { state, can, areaName, nodeName, nodesUnder, isActive } from "./state.js";
import { el, data, elapsed, clockTime, nowMs, pad } from "./util.js";
import { isSnoozed } from "./snooze.js";

const OUTCOMES = ["real", "false_alarm", "prank", "test"];
export const NOTE_MAX = 2000; // the API's limit (ResolveCreate.note)
const SOUNDED = new Set(["started", "done"]);
const START_GRACE_MS = 10000;

/** build(inc, {onAct(id, action, btn, card), onResolve(id, outcome, note, card), onDismiss(id)}) */
export function build(inc, handlers) {
  const r = {};
  const id = inc.id;
  const node = el("article.incident", { "data-id": id, "aria-labelledby": `inc-title-${id}` },
    (r.drillBar = el("p.drill-bar", {})),
    el("div.incident-head", {},
      (r.kind = el("h2.kind", { id: `inc-title-${id}` })),
      (r.drill = el("span.badge.badge-drill", {})),
      (r.late = el("span.badge.badge-late", {})),
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
    (r.gongs = el("p.gongs", {})),
    (r.gongsMissing = el("p.gongs-missing", {})),
    (r.silenced = el("p.silenced", {})),
    (r.snoozed = el("p.snoozed", {})),
    (r.ackBy = el("p.ack-by", {})),
    (r.countdown = el("p.countdown", { hidden: true })),
    (r.error = el("p.card-error.error", { role: "alert", hidden: true })),
  );
  if (can("operator")) {
    r.ackBtn = el("button.btn.btn-primary.btn-ack", { type: "button" });
    r.ackBtn.addEventListener("click", () => handlers.onAct(id, "acknowledge", r.ackBtn, r));
    r.silenceBtn = el("button.btn.btn-ghost.btn-silence", { type: "button" });
    r.silenceBtn.addEventListener("click", () => handlers.onAct(id, "silence", r.silenceBtn, r));
    r.resolveBtn = el("button.btn.btn-ghost.btn-resolve", { type: "button", "aria-expanded": "false", "aria-controls": `resolve-${id}` });
    r.resolveBox = el("form.resolve-box", { id: `resolve-${id}`, hidden: true, novalidate: true });
    r.resolveBtn.addEventListener("click", () => toggleResolve(r, r.resolveBox.hidden));
    r.noteLabel = el("label", { for: `note-${id}` });
    r.note = el("textarea", { id: `note-${id}`, rows: "2", maxlength: String(NOTE_MAX), autocomplete: "off", "aria-describedby": `note-count-${id}` });
    r.noteCount = el("p.note-count.muted", { id: `note-count-${id}` });
    r.note.addEventListener("input", () => countNote(r));
    r.legend = el("legend", {});
    r.radios = OUTCOMES.map((o) => {
      const input = el("input", { type: "radio", name: `outcome-${id}`, value: o, id: `outcome-${id}-${o}` });
      input.addEventListener("change", () => {
        r.submit.disabled = false;
        r.need.hidden = true;
      });
      const label = el("label.outcome", { for: input.id }, input, el("span", {}));
      return { input, label };
    });
    r.need = el("p.muted.need-outcome", { hidden: true });
    r.submit = el("button.btn.btn-primary.btn-resolve-submit", { type: "submit", disabled: true });
    r.cancel = el("button.btn.btn-ghost.btn-resolve-cancel", { type: "button" });
    r.cancel.addEventListener("click", () => {
      toggleResolve(r, false);
      r.resolveBtn.focus();
    });
    r.resolveBox.addEventListener("submit", (ev) => {
      ev.preventDefault();
      const picked = r.radios.find((x) => x.input.checked);
      if (!picked) {
        r.need.hidden = false;
        return;
      }
      handlers.onResolve(id, picked.input.value, r.note.value.trim(), r);
    });
    r.resolveBox.append(r.noteLabel, r.note, r.noteCount,
      el("fieldset.outcomes", {}, r.legend, r.radios.map((x) => x.label)),
      r.need, el("div.resolve-buttons", {}, r.submit, r.cancel));
    r.dismiss = el("button.btn.btn-ghost.btn-dismiss", { type: "button", hidden: true });
    r.dismiss.addEventListener("click", () => handlers.onDismiss(id));
    r.outcomes = r.legend.parentNode;
    node.append(el("div.actions", {}, r.ackBtn, r.silenceBtn, r.resolveBtn, r.dismiss), r.resolveBox);
  }
  return { node, r, inc };
}

function toggleResolve(r, open) {
  r.resolveBox.hidden = !open;
  r.resolveBtn.setAttribute("aria-expanded", String(open));
  // The note first: Enter in it makes a new line, never closes the incident.
  if (open) r.note.focus();
}

function countNote(r) {
  r.noteCount.textContent = t("note_count", { n: r.note.value.length, max: NOTE_MAX });
}

/** The incident's gong commands and what the nodes answered. */
function gongState(inc) {
  const cmds = [...state.commands.values()].filter((c) => c.incident_id === inc.id);
  const sounds = cmds.filter((c) => c.action === "sound");
  const silences = cmds.filter((c) => c.action === "silence").sort((a, b) => b.issued_ms - a.issued_ms);
  const expected = new Map();
  const started = new Set();
  for (const c of sounds) {
    for (const n of nodesUnder(c.target_kind, c.target)) expected.set(n.id, n);
    for (const res of c.results || []) if (SOUNDED.has(res.status)) started.add(res.node_id);
  }
  for (const id of started) if (!expected.has(id)) expected.set(id, null);
  const lastSent = Math.max(0, ...sounds.map((c) => c.issued_ms));
  return { sent: sounds.length > 0, expected, started, lastSent, silence: silences[0] || null };
}

/** "Escalates in 1:23 · next: …" on an open card the hub will escalate; hidden otherwise. */
export function paintCountdown(c) {
  const { r, inc } = c;
  const at = inc && inc.state === "open" ? inc.next_escalation_ms : null;
  r.countdown.hidden = typeof at !== "number";
  if (r.countdown.hidden) {
    r.countdown.textContent = "";
    return;
  }
  const left = at - nowMs();
  const s = Math.ceil(left / 1000);
  // Step 1 reaches people (SMS, webhooks); later steps sound again, wider up to the kind's ceiling.
  const next = t((inc.escalation_level || 0) === 0 ? "esc_next_notify" : "esc_next_widen");
  r.countdown.textContent = left > 0 ? `${t("esc_countdown", { left: `${Math.floor(s / 60)}:${pad(s % 60)}` })} · ${next}` : t("esc_due");
  r.countdown.classList.toggle("is-soon", left < 30000);
}

export function fill(c, inc) {
  if (!inc) return;
  c.inc = inc;
  const { node, r } = c;
  const closed = !isActive(inc);
  node.classList.toggle("is-open", inc.state === "open");
  node.classList.toggle("is-drill", !!inc.drill);
  node.dataset.kind = inc.kind || "";
  node.dataset.state = inc.state;
  r.drillBar.hidden = !inc.drill;
  r.drillBar.textContent = t("drill_not_real");
  r.kind.textContent = kindLabel(inc.kind);
  r.drill.textContent = t("drill");
  r.drill.hidden = !inc.drill;
  // Too old when it reached the hub (held in a node's outbox): shown, never sounded.
  r.late.hidden = !inc.late;
  r.late.textContent = t("late");
  r.late.title = t("late_hint");
  r.state.textContent = stateLabel(inc.state);
  r.state.dataset.state = inc.state;
  r.esc.hidden = !inc.escalation_level;
  r.esc.textContent = t("escalated", { n: inc.escalation_level || 0 });
  r.area.textContent = inc.area_name || areaName(inc.area);
  // An alarm by phone (hub/integrations/phone.py) comes from `tel:<number>`, not a node.
  const phone = (inc.origin_node || "").startsWith("tel:");
  r.nodeLabel.textContent = t(phone ? "origin_phone" : "origin_node");
  r.origin.textContent = phone ? inc.origin_node.slice(4)
    : inc.origin_node ? nodeName(inc.origin_node) : "–";
  const from = inc.first_press_ms || inc.opened_ms;
  r.elapsed.dataset.from = String(from || "");
  r.elapsed.textContent = elapsed(from);
  r.elapsed.setAttribute("title", t("elapsed_title"));
  r.pressed.textContent = t("pressed_at", { time: clockTime(from) });
  r.count.textContent = inc.alarm_count > 1 ? t("press_count", { n: inc.alarm_count }) : "";
  const g = gongState(inc);
  const total = g.expected.size;
  r.gongs.textContent = !g.sent ? t("gongs_none") : g.started.size ? t("gongs_started", { n: g.started.size, all: total }) : t("gongs_waiting", { all: total });
  const missingIds = [...g.expected.keys()].filter((id) => !g.started.has(id));
  const missing = missingIds.map(nodeName).sort();
  // The first seconds after the command a gong may still be starting: "waiting", not yet
  // a fault, unless the hub already said it failed to sound.
  const failed = new Set([...state.troubles.values()]
    .filter((tr) => tr.kind === "failed_to_sound" && !tr.cleared_ms && tr.detail && tr.detail.incident_id === inc.id)
    .map((tr) => tr.subject));
  const young = g.sent && nowMs() - g.lastSent < START_GRACE_MS && !missingIds.some((id) => failed.has(id));
  r.gongs.classList.toggle("is-short", g.sent && !young && g.started.size < total);
  r.gongsMissing.classList.toggle("is-pending", young);
  r.gongsMissing.hidden = !g.sent || missing.length === 0;
  r.gongsMissing.replaceChildren(t(young ? "gongs_pending" : "gongs_missing", { names: "" }).trimEnd(), " ", data(missing.join(", ")));
  r.silenced.hidden = !g.silence;
  if (g.silence) r.silenced.textContent = t("silenced_at", { time: clockTime(g.silence.issued_ms), who: g.silence.issued_by });
  const muted = inc.state === "open" && isSnoozed(inc.id);
  r.snoozed.hidden = !muted;
  r.snoozed.textContent = muted ? t("snoozed_card") : "";
  paintCountdown(c);
  if (inc.state === "acknowledged") {
    r.ackBy.hidden = false;
    r.ackBy.textContent = t("acked_by", { who: inc.acknowledged_by || "?", time: clockTime(inc.acknowledged_ms) });
  } else {
    r.ackBy.hidden = true;
  }
  if (r.ackBtn) {
    r.ackBtn.textContent = t("acknowledge");
    r.ackBtn.hidden = inc.state !== "open";
    // Closed by someone else first: only the note (to copy) and "got it" remain.
    r.silenceBtn.hidden = closed;
    r.resolveBtn.hidden = closed;
    r.outcomes.hidden = closed;
    r.submit.hidden = closed;
    r.dismiss.hidden = !closed;
    r.dismiss.textContent = t("conflict_dismiss");
    r.silenceBtn.textContent = t("silence");
    r.resolveBtn.textContent = t("resolve");
    r.noteLabel.textContent = t("resolve_note");
    countNote(r);
    r.legend.textContent = t("resolve_outcome");
    r.radios.forEach((x) => (x.label.lastChild.textContent = t(`outcome_${x.input.value}`)));
    r.need.textContent = t("resolve_need_outcome");
    r.submit.textContent = t("resolve_submit");
    r.cancel.textContent = t("resolve_cancel");
  }
}
