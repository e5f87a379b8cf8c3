// The incident board, in order of urgency: not yet taken before taken, then
// the most escalated, then the oldest first; drills last. Cards are updated in
// place and never move while the pointer is over the list or the focus is in
// it (the re-order waits), so a half-typed note, the focus of a keyboard user
// and the button under a finger survive the live updates around them.
// After every action the focus goes somewhere sensible: to the next card
// still waiting, or to the list's heading.
// Acknowledge and resolve send the state the card showed when the officer
// clicked (`expected_state`), so a stale click never overwrites another
// officer's work; the 409 is said in words (who, what, when), the card shows
// the incident as it is now, and the typed note is kept. A card with an action
// in flight, or showing such a conflict, is not removed under the officer; nor is
// one closed elsewhere while a note was being typed in it (the note stays to copy).

import { get, post } from "./api.js";
import { t } from "./i18n.js";
import { state, on, emit, isActive, putCommand } from "./state.js";
import { el, clear, elapsed } from "./util.js";
import { gong } from "./sound.js";
import { applyIncident, markSeen } from "./alerts.js";
import { snooze, unsnooze, snoozeLeft } from "./snooze.js";
import { toast, errorText } from "./ui.js";
import { build, fill, paintCountdown } from "./card.js";
import { conflictWords, conflictIncident, closedWords } from "./conflict.js";

let root;
let list;
let empty;
let heading;
let snoozeBtn;
let snoozeHint;
let hovered = false; // pointer over the list: do not re-order
let focused = false; // focus in the list: do not re-order
const isHeld = () => hovered || focused;
let reorderDue = false;
const cards = new Map(); // incident id -> {node, r}
const detailAsked = new Set();

export function mountBoard(section) {
  root = section;
  clear(root);
  const testBtn = el("button.btn.btn-ghost", { type: "button", id: "btn-test-sound", "data-i18n": "test_sound" }, t("test_sound"));
  testBtn.addEventListener("click", () => {
    if (!gong()) toast(t("sound_blocked_short"));
  });
  snoozeBtn = el("button.btn.btn-ghost", { type: "button", id: "btn-snooze", "aria-describedby": "snooze-hint" });
  snoozeBtn.addEventListener("click", toggleSnooze);
  root.append(
    el("div.view-head", {},
      (heading = el("h1", { "data-i18n": "board_title", tabindex: "-1", id: "board-heading" }, t("board_title"))),
      el("div.head-buttons", {}, snoozeBtn, testBtn)),
    (snoozeHint = el("p.muted.snooze-hint", { id: "snooze-hint", "data-i18n": "snooze_hint" }, t("snooze_hint"))),
    (empty = el("p.empty", { id: "board-empty" },
      el("span", { "data-i18n": "board_empty" }, t("board_empty")))),
    (list = el("div.incident-list", { id: "incident-list" })),
  );
  list.addEventListener("pointerenter", () => (hovered = true));
  list.addEventListener("pointerleave", () => {
    hovered = false;
    release();
  });
  list.addEventListener("focusin", () => (focused = true));
  list.addEventListener("focusout", (ev) => {
    if (ev.relatedTarget && list.contains(ev.relatedTarget)) return;
    focused = false;
    release();
  });
  on("incidents", render);
  on("areas", render);
  on("nodes", refill);
  on("commands", refill);
  on("troubles", refill);
  on("lang", () => {
    refill();
    paintSnooze();
  });
  setInterval(tick, 1000);
  render();
}

function release() {
  // Let a click land first: the re-order after the pointer leaves is not urgent.
  if (reorderDue) setTimeout(() => !isHeld() && render(), 150);
}

/** Urgency: [drill, taken, -escalation, age] (smaller first). */
function urgency(inc) {
  return [inc.drill ? 1 : 0, inc.state === "open" ? 0 : 1, -(inc.escalation_level || 0), inc.first_press_ms || inc.opened_ms || 0];
}

export function compare(a, b) {
  const ka = urgency(a);
  const kb = urgency(b);
  for (let i = 0; i < ka.length; i++) if (ka[i] !== kb[i]) return ka[i] - kb[i];
  return a.id < b.id ? -1 : 1;
}

function handlers() {
  return { onAct: act, onResolve: resolve, onDismiss: dismiss };
}

function render() {
  if (!list) return;
  const active = [...state.incidents.values()].filter(isActive).sort(compare);
  const keep = new Set(active.map((i) => i.id));
  const kept = [];
  for (const [id, c] of cards) {
    if (!keep.has(id) && !c.held && !c.busy && !c.dismissed && typedNote(c)) {
      // Closed elsewhere while this officer was typing a note (nothing sent yet): the
      // card stays with the note to copy, and says in words who closed it and when.
      const now = state.closed.get(id);
      if (now) {
        c.held = now;
        c.r.error.textContent = closedWords(now);
        c.r.error.hidden = false;
      }
    }
    if (!keep.has(id) && (c.busy || c.held)) {
      // The officer is acting on it or reading why it failed: it stays, after the others.
      kept.push(c.held || c.inc);
    } else if (!keep.has(id)) {
      // Closed (here or elsewhere, whichever news came first): the focus moves on, not to <body>.
      if (c.node.contains(document.activeElement)) focusNext(id);
      c.node.remove();
      cards.delete(id);
    }
  }
  reorderDue = false;
  let prev = null;
  for (const inc of [...active, ...kept]) {
    let c = cards.get(inc.id);
    const fresh = !c;
    if (fresh) {
      c = build(inc, handlers());
      cards.set(inc.id, c);
      loadDetail(inc.id);
    }
    fill(c, c.held || inc);
    if (isHeld()) {
      // Nothing moves under the pointer or the focus: a new card goes at the end
      // (the alarm banner points at it), the order is fixed when the list is let go.
      if (fresh) list.append(c.node);
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== c.node) reorderDue = true;
    } else {
      // Move only when out of place: moving a focused node would drop keyboard focus.
      const want = prev ? prev.nextSibling : list.firstChild;
      if (want !== c.node) list.insertBefore(c.node, want);
    }
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
  paintSnooze();
}

function typedNote(c) {
  return Boolean(c.r && c.r.note && c.r.note.value.trim() && !c.r.resolveBox.hidden);
}

function refill() {
  for (const [id, c] of cards) fill(c, c.held || state.incidents.get(id) || c.inc);
}

/** The commands sent for an incident (its gongs and their answers), once per card. */
async function loadDetail(id) {
  if (detailAsked.has(id)) return;
  detailAsked.add(id);
  try {
    const d = await get(`/incidents/${encodeURIComponent(id)}`);
    for (const c of (d && d.commands) || []) putCommand(c);
    emit("commands");
  } catch {
    detailAsked.delete(id); // asked again with the next card render
  }
}

function tick() {
  for (const span of root.querySelectorAll(".elapsed")) {
    const from = Number(span.dataset.from);
    if (from) span.textContent = elapsed(from);
  }
  for (const c of cards.values()) paintCountdown(c);
  paintSnooze();
}

function toggleSnooze() {
  if (snoozeLeft() > 0) unsnooze();
  else snooze([...state.incidents.values()].filter((i) => i.state === "open").map((i) => i.id));
  paintSnooze();
  refill();
}

function mmss(ms) {
  const s = Math.ceil(ms / 1000);
  return `${Math.floor(s / 60)}:${String(s % 60).padStart(2, "0")}`;
}

let snoozeWas = false;
function paintSnooze() {
  if (!snoozeBtn) return;
  const left = snoozeLeft();
  // Offered only when a reminder is ringing (or already muted): not a standing "mute" switch.
  const ringing = [...state.incidents.values()].some((i) => i.state === "open" && !i.drill);
  snoozeBtn.hidden = !(ringing || left > 0);
  snoozeHint.hidden = snoozeBtn.hidden;
  snoozeBtn.classList.toggle("is-on", left > 0);
  snoozeBtn.setAttribute("aria-pressed", String(left > 0));
  snoozeBtn.textContent = left > 0 ? `${t("snooze_on", { left: mmss(left) })} · ${t("snooze_off")}` : t("snooze");
  if (snoozeWas && left <= 0) refill(); // the snooze ran out: cards stop saying so
  snoozeWas = left > 0;
}

/** Focus the next card still waiting (other than `skipId`), or the list's heading. */
function focusNext(skipId, own) {
  const order = [...list.children];
  const from = Math.max(0, order.findIndex((n) => n.dataset.id === skipId));
  const after = [...order.slice(from + 1), ...order.slice(0, from)];
  const next = after.find((n) => n.dataset.id !== skipId && n.dataset.state === "open" && n.isConnected) ||
    after.find((n) => n.dataset.id !== skipId && n.isConnected);
  const waiting = next && next.dataset.state === "open" ? next.querySelector(".btn-ack:not([hidden])") : null;
  // Nothing else waits: after taking an incident its own "resolve" is the next step.
  const target = waiting || (own && own.resolveBtn) || (next && next.querySelector(".btn-ack:not([hidden]), .btn-resolve"));
  (target || heading).focus();
}

function showCardError(r, err) {
  const conflict = err && err.status === 409;
  const own = err && typeof err.localized === "function" ? err.localized() : "";
  r.error.textContent = conflictWords(err) || (conflict ? `${t("err_conflict")}${own ? `: ${own}` : "."}` : errorText(err));
  r.error.hidden = false;
}

/** Someone else acted first: show the incident as it is now (the 409 says enough), then the hub's copy. */
async function afterConflict(id, err) {
  const c = cards.get(id);
  if (!c || !err || err.status !== 409) return;
  const now = conflictIncident(err, state.incidents.get(id) || c.inc);
  const hadFocus = c.node.contains(document.activeElement);
  if (now && !isActive(now)) c.held = now;
  else if (now) applyIncident(now);
  render();
  // Its buttons are gone with the incident: the focus goes to "got it", never to <body>.
  if (c.held && hadFocus && c.r.dismiss) c.r.dismiss.focus();
  try {
    const fresh = await get(`/incidents/${encodeURIComponent(id)}`);
    if (!fresh || !fresh.id) return;
    const { alarms, commands, ...inc } = fresh; // eslint-disable-line no-unused-vars
    if (c.held && !isActive(inc)) c.held = inc;
    applyIncident(inc);
  } catch {
    /* the live stream brings it anyway */
  }
}

/** The officer has read why the card's incident closed under them: the card goes. */
function dismiss(id) {
  const c = cards.get(id);
  if (!c) return;
  c.held = null;
  c.dismissed = true; // read: not held again for its typed note
  if (c.node.contains(document.activeElement)) focusNext(id);
  render();
}

/** The state the card showed when the officer clicked. */
function shownState(id) {
  const c = cards.get(id);
  return (c && c.node.dataset.state) || undefined;
}

async function act(id, action, btn, r) {
  // Busy, not disabled: a disabled button would drop the keyboard focus to <body>.
  if (btn.getAttribute("aria-disabled") === "true") return;
  const expected = shownState(id);
  btn.setAttribute("aria-disabled", "true");
  r.error.hidden = true;
  const c = cards.get(id);
  if (c) c.busy = true;
  try {
    const body = action === "acknowledge" && expected ? { expected_state: expected } : {};
    const out = await post(`/incidents/${encodeURIComponent(id)}/${action}`, body);
    if (c) c.busy = false;
    if (action === "silence" && out && out.id) {
      putCommand(out);
      emit("commands");
    } else if (out && out.id) applyIncident(out);
    if (action === "acknowledge") markSeen(id);
    toast(t(`done_${action}`));
    if (action === "acknowledge") focusNext(id, r);
  } catch (err) {
    if (c) c.busy = false;
    showCardError(r, err);
    await afterConflict(id, err);
  } finally {
    if (c) c.busy = false;
    btn.removeAttribute("aria-disabled");
    if (c && !c.held && !state.incidents.has(id)) render(); // closed meanwhile: the card may go now
  }
}

async function resolve(id, outcome, note, r) {
  if (r.submit.getAttribute("aria-disabled") === "true") return;
  const expected = shownState(id);
  r.submit.setAttribute("aria-disabled", "true");
  r.error.hidden = true;
  const c = cards.get(id);
  if (c) c.busy = true;
  try {
    const body = { outcome, ...(note ? { note } : {}), ...(expected ? { expected_state: expected } : {}) };
    const inc = await post(`/incidents/${encodeURIComponent(id)}/resolve`, body);
    if (c) {
      c.busy = false;
      c.dismissed = true; // closed by this officer: its note was sent, nothing to keep
    }
    focusNext(id); // before the card goes, so the focus never falls to <body>
    if (inc && inc.id) applyIncident(inc);
    markSeen(id);
    toast(t("done_resolve"));
  } catch (err) {
    if (c) c.busy = false;
    showCardError(r, err); // the typed note stays in its box
    await afterConflict(id, err);
  } finally {
    if (c) c.busy = false;
    r.submit.removeAttribute("aria-disabled");
    if (c && !c.held && !state.incidents.has(id)) render();
  }
}


