// A 409 from the hub said in words: who acted first, what they did and when
// (local time), so the officer who lost the race knows whom to call instead of
// seeing "conflict". The hub's own sentence is the fallback for a 409 that does
// not say who (docs/api.md "Conflicts: who acted first").

import { t, outcomeLabel, stateLabel } from "./i18n.js";
import { clockTime } from "./util.js";

/** The words for a 409 from acknowledge/resolve, or null if it is not one that says who. */
export function conflictWords(err) {
  const d = (err && err.status === 409 && err.details) || {};
  if (!d.current) return null;
  return `${t("err_conflict")}: ${changeWords(d)}`;
}

/** What closed an incident under an officer who was typing a note (no request sent). */
export function closedWords(inc) {
  const byState = {
    resolved: [inc.resolved_by, inc.resolved_ms],
    cancelled: [inc.resolved_by, inc.resolved_ms || inc.last_alarm_ms],
  }[inc.state] || [inc.acknowledged_by, inc.acknowledged_ms];
  const what = changeWords({ current: inc.state, by: byState[0], at_ms: byState[1], outcome: inc.outcome });
  return t("closed_while_typing", { what });
}

function changeWords(d) {
  const who = d.by || t("conflict_someone");
  const time = clockTime(d.at_ms);
  let what;
  if (d.current === "acknowledged") what = t("conflict_acknowledged", { who, time });
  else if (d.current === "resolved") what = t("conflict_resolved", { who, time, outcome: outcomeLabel(d.outcome) });
  else if (d.current === "cancelled") what = t("conflict_cancelled", { who, time });
  else what = t("conflict_state", { state: stateLabel(d.current), who, time });
  return what;
}

/** The incident as it is now, from the 409 alone (used until the hub's own copy arrives). */
export function conflictIncident(err, inc) {
  const d = (err && err.details) || {};
  if (!inc || !d.current) return inc;
  const now = { ...inc, state: d.current, next_escalation_ms: null };
  if (d.current === "acknowledged") Object.assign(now, { acknowledged_by: d.by, acknowledged_ms: d.at_ms });
  if (d.current === "resolved") Object.assign(now, { resolved_by: d.by, resolved_ms: d.at_ms, outcome: d.outcome });
  return now;
}
