// What makes a new incident impossible to miss: the gong (repeated until
// someone acknowledges), a flashing document title (seen from another tab),
// and an announcement for screen readers.

import { t, kindLabel } from "./i18n.js";
import { state, emit, isActive, areaName } from "./state.js";
import { gong } from "./sound.js";

const REPEAT_MS = 6000;
let flashOn = false;

/** Store an incident from the API or the stream; `live` ones may ring the gong. */
export function applyIncident(inc, { live = false } = {}) {
  if (!inc || !inc.id) return;
  const known = state.incidents.has(inc.id);
  if (isActive(inc)) state.incidents.set(inc.id, inc);
  else state.incidents.delete(inc.id); // the board keeps only what needs someone
  emit("incidents");
  if (live && !known && inc.state === "open") {
    announce(inc);
    gong();
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
  // An unacknowledged real alarm keeps ringing, as the village's own gongs do;
  // a drill rings once, when it appears.
  setInterval(() => {
    if (waiting().some((i) => !i.drill)) gong();
  }, REPEAT_MS);
}
