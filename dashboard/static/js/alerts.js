// What makes a new incident impossible to miss: the gong (repeated until
// someone acknowledges, unless the reminder is muted), a banner on every view
// that stays until the officer has seen it, a vibration on phones, a flashing
// document title (seen from another browser tab), and an announcement for
// screen readers.

import { t, kindLabel } from "./i18n.js";
import { state, emit, isActive, areaName } from "./state.js";
import { gong } from "./sound.js";
import { isSnoozed } from "./snooze.js";
import { el, clear } from "./util.js";

const REPEAT_MS = 6000;
const VIBRATE = [400, 200, 400, 200, 400];
let flashOn = false;
const unseen = []; // ids of new incidents the officer has not looked at yet, oldest first

/** Store an incident from the API or the stream; `live` ones may ring the gong. */
export function applyIncident(inc, { live = false } = {}) {
  if (!inc || !inc.id) return;
  const known = state.incidents.has(inc.id);
  if (isActive(inc)) state.incidents.set(inc.id, inc);
  else {
    state.incidents.delete(inc.id); // the board keeps only what needs someone
    state.closed.set(inc.id, inc);
    if (state.closed.size > 50) state.closed.delete(state.closed.keys().next().value);
  }
  if (inc.state !== "open") markSeen(inc.id);
  emit("incidents");
  if (live && !known && inc.state === "open") {
    announce(inc);
    // The first alert of a new incident always sounds: no snooze covers it.
    gong();
    if (!inc.drill) {
      unseen.push(inc.id);
      paintBanner();
      if (navigator.vibrate) {
        try {
          navigator.vibrate(VIBRATE);
        } catch {
          /* not allowed here: the banner and the sound remain */
        }
      }
    }
  }
  updateTitle();
}

function waiting() {
  return [...state.incidents.values()].filter((i) => i.state === "open");
}

function announce(inc) {
  const live = document.getElementById("live");
  if (!live) return;
  live.textContent = t("announce_new", { kind: kindLabel(inc.kind), area: inc.area_name || areaName(inc.area) });
}

/** The officer has seen these (clicked the banner, or the incident was taken). */
export function markSeen(id) {
  const before = unseen.length;
  if (id === undefined) unseen.length = 0;
  else {
    const i = unseen.indexOf(id);
    if (i >= 0) unseen.splice(i, 1);
  }
  if (unseen.length !== before) paintBanner();
}

export function unseenIds() {
  return [...unseen];
}

export function paintBanner() {
  const box = document.getElementById("banner-alarm");
  if (!box) return;
  const ids = unseen.filter((id) => state.incidents.has(id));
  box.hidden = ids.length === 0 || !state.user;
  if (box.hidden) return;
  const first = state.incidents.get(ids[0]);
  const text = box.querySelector(".alarm-text");
  clear(text);
  text.append(el("strong", {}, t("new_alarm_banner", { kind: kindLabel(first.kind), area: "" }).trimEnd()),
    " ", el("strong", { lang: "vi", class: "data" }, first.area_name || areaName(first.area)));
  if (ids.length > 1) text.append(" ", el("span", {}, t("new_alarm_more", { n: ids.length - 1 })));
  box.querySelector("button").textContent = t("new_alarm_seen");
}

export function baseTitle() {
  return t("app_name");
}

export function updateTitle() {
  const n = waiting().length;
  if (!n) {
    document.title = baseTitle();
    return;
  }
  document.title = flashOn ? t("title_alert", { n }) : `(${n}) ${baseTitle()}`;
}

export function startAlerts() {
  setInterval(() => {
    flashOn = !flashOn;
    updateTitle();
  }, 1000);
  // An unacknowledged real alarm keeps ringing, as the village's own gongs do,
  // unless the officer muted the reminder for it; a drill or a late alarm (too old to
  // sound the village) rings once, when it appears.
  const repeatMs = Number(localStorage.getItem("tiengmo.repeatMs")) || REPEAT_MS;
  setInterval(() => {
    if (waiting().some((i) => !i.drill && !i.late && !isSnoozed(i.id))) gong();
  }, repeatMs);
  emit("alerts");
}
