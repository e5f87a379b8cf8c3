// The simulator panel's phone: text or ring the hub's (simulated) modem as a household of
// the registry, and read what the hub texted back (docs/phone-alarms.md).

import { get, post } from "./api.js";
import { t } from "./i18n.js";
import { areaName } from "./state.js";
import { el, data, clear } from "./util.js";
import { select, showError, toast } from "./ui.js";

let who;
let text;
let inbox;
let households = [];

export function mountSimPhone(container) {
  who = select([], { id: "sim-phone-household", "aria-label": t("sim_phone_household"), "data-i18n-attr": "aria-label:sim_phone_household" });
  text = el("input", { id: "sim-phone-text", value: "CHAY", maxlength: "160", "aria-label": t("sim_phone_text"), "data-i18n-attr": "aria-label:sim_phone_text" });
  const sms = el("button.btn.btn-small", { type: "button", id: "sim-phone-sms", "data-i18n": "sim_phone_sms" }, t("sim_phone_sms"));
  const call = el("button.btn.btn-small", { type: "button", id: "sim-phone-call", "data-i18n": "sim_phone_call" }, t("sim_phone_call"));
  sms.addEventListener("click", () => send("sms", { text: text.value.trim() || "CHAY" }));
  call.addEventListener("click", () => send("call"));
  inbox = el("ul.sim-phone-inbox", { id: "sim-phone-inbox", "aria-live": "polite" });
  container.append(el("section.card.sim-phone", { "aria-labelledby": "sim-phone-title" },
    el("h2", { id: "sim-phone-title", "data-i18n": "sim_phone_title" }, t("sim_phone_title")),
    el("p.muted", { "data-i18n": "sim_phone_hint" }, t("sim_phone_hint")),
    el("div.field", {}, who, text, sms, call), inbox));
}

export async function loadSimPhone() {
  try {
    households = (await get("/sim/households", { quiet401: true })) || [];
  } catch {
    households = [];
  }
  clear(who);
  for (const h of households) {
    who.append(el("option", { value: h.id }, `${h.name || h.id} · ${areaName(h.area)} · ${h.phone}`));
  }
}

export async function pollSimPhone() {
  if (!inbox || !households.length) return;
  const phones = new Set(households.map((h) => h.phone));
  const msgs = ((await get("/sim/phone/messages")) || []).filter((m) => phones.has(m.number));
  clear(inbox);
  for (const m of msgs.slice(-8)) inbox.append(el("li", {}, data(`${m.number}: ${m.text}`)));
}

async function send(what, body) {
  if (!who.value) return;
  try {
    await post(`/sim/households/${encodeURIComponent(who.value)}/${what}`, body);
    toast(t(what === "sms" ? "sim_phone_sent" : "sim_phone_rang"));
  } catch (err) {
    showError(err);
  }
}
