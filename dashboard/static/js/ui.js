// Feedback shared by every view: a short toast, and errors said plainly.

import { t } from "./i18n.js";
import { el } from "./util.js";

let toastTimer = null;

export function toast(text, kind = "ok") {
  const box = document.getElementById("toast");
  if (!box) return;
  box.textContent = text;
  box.dataset.kind = kind;
  box.hidden = false;
  clearTimeout(toastTimer);
  toastTimer = setTimeout(() => (box.hidden = true), kind === "error" ? 8000 : 3000);
}

/** An API error in the user's language (the hub's own words when it sent them). */
export function errorText(err) {
  if (!err) return t("err_unknown");
  if (err.status === 0) return t("err_network");
  if (err.status === 401) return t("err_session");
  if (err.status === 403) return t("err_forbidden");
  if (err.status === 409) {
    const why = typeof err.localized === "function" ? err.localized() : "";
    return why ? `${t("err_conflict")}: ${why}` : `${t("err_conflict")}.`;
  }
  if (err.status === 429) return t("err_throttled", { s: err.retryAfter || 60 });
  const own = typeof err.localized === "function" ? err.localized() : "";
  return own ? `${t("err_hub")}: ${own}` : t("err_unknown");
}

export function showError(err) {
  console.warn(err);
  toast(errorText(err), "error");
}

/** A labelled form field: returns [label, control]. */
export function field(id, labelKey, control) {
  control.id = id;
  return el("div.field", {}, el("label", { for: id, "data-i18n": labelKey }, t(labelKey)), control);
}

/** A <select> whose options are [value, labelKey or text, isKey]. */
export function select(options, attrs = {}) {
  const s = el("select", attrs);
  for (const [value, label, isKey = true] of options) {
    const o = el("option", { value }, isKey ? t(label) : label);
    if (isKey) o.dataset.i18n = label;
    else o.lang = "vi";
    s.append(o);
  }
  return s;
}
