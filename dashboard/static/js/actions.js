// Operator actions on areas: broadcast a warning, all-clear, start and stop
// drills. Anything that sounds gongs over a whole area asks once more before
// it goes (a second click within a few seconds), since a wrong broadcast at
// night frightens a whole commune.

import { post, areaSeg } from "./api.js";
import { t, kindLabel } from "./i18n.js";
import { state, on, areaName, isActive } from "./state.js";
import { el, data, clear, elapsed } from "./util.js";
import { select, showError, toast } from "./ui.js";
import { applyIncident } from "./alerts.js";

const SIGNALS = ["warning", "fire", "theft", "robbery", "fight", "flood", "medical", "sos"];
let root;
let drillsBox;
const areaSelects = [];

export function mountActions(section) {
  root = section;
  clear(root);

  const bArea = areaSelect("bc-area");
  const bSignal = select(SIGNALS.map((s) => [s, `signal_${s}`]), { id: "bc-signal" });
  const bDur = el("input", { type: "number", id: "bc-duration", min: "5", max: "3600", value: "60", inputmode: "numeric" });
  const bMsg = el("input", { type: "text", id: "bc-message", maxlength: "300" });
  const bBtn = el("button.btn.btn-warn", { type: "submit", "data-i18n": "broadcast_send" }, t("broadcast_send"));
  const bForm = el("form.card.action-card", { id: "broadcast-form" },
    el("h2", { "data-i18n": "broadcast_title" }, t("broadcast_title")),
    el("p.muted", { "data-i18n": "broadcast_hint" }, t("broadcast_hint")),
    labelled("bc-area", "area", bArea), labelled("bc-signal", "signal", bSignal),
    labelled("bc-duration", "duration_s", bDur), labelled("bc-message", "message", bMsg), bBtn);
  confirmSubmit(bForm, bBtn, "broadcast_send", () => ({ area: areaName(bArea.value) }), async () => {
    await post("/broadcasts", { area: bArea.value, signal: bSignal.value, duration_s: Number(bDur.value) || 60, message: bMsg.value.trim() });
    toast(t("done_broadcast", { area: areaName(bArea.value) }));
  });

  const cArea = areaSelect("ac-area");
  const cBtn = el("button.btn.btn-primary", { type: "submit", "data-i18n": "all_clear_send" }, t("all_clear_send"));
  const cForm = el("form.card.action-card", { id: "all-clear-form" },
    el("h2", { "data-i18n": "all_clear_title" }, t("all_clear_title")),
    el("p.muted", { "data-i18n": "all_clear_hint" }, t("all_clear_hint")),
    labelled("ac-area", "area", cArea), cBtn);
  confirmSubmit(cForm, cBtn, "all_clear_send", () => ({ area: areaName(cArea.value) }), async () => {
    await post(`/areas/${areaSeg(cArea.value)}/all-clear`);
    toast(t("done_all_clear", { area: areaName(cArea.value) }));
  });

  const dArea = areaSelect("dr-area");
  const dDur = el("input", { type: "number", id: "dr-duration", min: "5", max: "600", value: "10", inputmode: "numeric" });
  const dBtn = el("button.btn.btn-ghost", { type: "submit", "data-i18n": "drill_start" }, t("drill_start"));
  const dForm = el("form.card.action-card", { id: "drill-form" },
    el("h2", { "data-i18n": "drill_title" }, t("drill_title")),
    el("p.muted", { "data-i18n": "drill_hint" }, t("drill_hint")),
    labelled("dr-area", "area", dArea), labelled("dr-duration", "duration_s", dDur), dBtn,
    (drillsBox = el("div.drills", { id: "drill-list" })));
  confirmSubmit(dForm, dBtn, "drill_start", () => ({ area: areaName(dArea.value) }), async () => {
    const res = await post("/drills", { area: dArea.value, duration_s: Number(dDur.value) || 10 });
    const inc = res && (res.incident || (res.id ? res : null));
    if (inc) applyIncident(inc);
    toast(t("done_drill", { area: areaName(dArea.value) }));
  });

  root.append(el("div.view-head", {}, el("h1", { "data-i18n": "actions_title" }, t("actions_title"))),
    el("div.action-grid", {}, bForm, cForm, dForm));
  on("areas", fillAreas);
  on("incidents", renderDrills);
  on("lang", renderDrills);
  fillAreas();
  renderDrills();
}

function labelled(id, key, control) {
  return el("div.field", {}, el("label", { for: id, "data-i18n": key }, t(key)), control);
}

function areaSelect(id) {
  const s = el("select", { id, required: true });
  areaSelects.push(s);
  return s;
}

function fillAreas() {
  // An account limited to an area gets the areas above it too (for their names), but
  // may sound only inside its own: offer only those.
  const mine = state.user && state.user.area;
  const areas = [...state.areas.values()]
    .filter((a) => !mine || a.path === mine || a.path.startsWith(mine + "/"))
    .sort((a, b) => a.path.localeCompare(b.path));
  for (const s of areaSelects) {
    const keep = s.value;
    clear(s);
    for (const a of areas) {
      s.append(el("option", { value: a.path, lang: "vi" }, "\u00a0\u00a0".repeat(Math.max(0, (a.depth ?? 1) - 1)) + (a.name || a.path)));
    }
    if (keep) s.value = keep;
  }
}

/** Submit asks "are you sure" on the button itself; a second click within 6 s sends. */
function confirmSubmit(form, btn, key, params, send) {
  let armed = null;
  const disarm = () => {
    clearTimeout(armed);
    armed = null;
    btn.textContent = t(key);
    btn.dataset.i18n = key;
    btn.classList.remove("armed");
  };
  form.addEventListener("submit", async (e) => {
    e.preventDefault();
    if (!form.reportValidity()) return;
    if (!armed) {
      armed = setTimeout(disarm, 6000);
      delete btn.dataset.i18n;
      btn.textContent = t("confirm_send", params());
      btn.classList.add("armed");
      return;
    }
    disarm();
    btn.disabled = true;
    try {
      await send();
    } catch (err) {
      showError(err);
    } finally {
      btn.disabled = false;
    }
  });
}

function renderDrills() {
  if (!drillsBox) return;
  clear(drillsBox);
  const drills = [...state.incidents.values()].filter((i) => i.drill && isActive(i));
  if (!drills.length) return;
  drillsBox.append(el("h3", {}, t("drills_running")));
  for (const d of drills) {
    const stop = el("button.btn.btn-small.btn-ghost", { type: "button" }, t("drill_stop"));
    stop.addEventListener("click", async () => {
      stop.disabled = true;
      try {
        const res = await post(`/drills/${encodeURIComponent(d.id)}/stop`);
        const inc = res && (res.incident || (res.id ? res : null));
        if (inc) applyIncident(inc);
        toast(t("done_drill_stop"));
      } catch (err) {
        showError(err);
      } finally {
        stop.disabled = false;
      }
    });
    drillsBox.append(el("p.drill-row", {}, kindLabel(d.kind), " · ", data(d.area_name || areaName(d.area)), ` · ${elapsed(d.opened_ms)} `, stop));
  }
}
