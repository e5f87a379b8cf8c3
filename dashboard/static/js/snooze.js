// Muting the gong's reminder (the repeat every few seconds) for a few minutes,
// per browser (localStorage). A snooze covers only the incidents open when it
// was asked for: a NEW incident's first alert, and its own reminder, always sound.

const KEY = "tiengmo.snooze";
export const SNOOZE_MS = 5 * 60 * 1000;

function read() {
  try {
    const v = JSON.parse(localStorage.getItem(KEY) || "null");
    if (v && typeof v.until === "number" && Array.isArray(v.ids) && v.until > Date.now()) return v;
  } catch {
    /* unreadable: not snoozed */
  }
  return null;
}

/** Mute the reminder of these incidents until now + SNOOZE_MS. */
export function snooze(ids, ms = Number(localStorage.getItem("tiengmo.snoozeMs")) || SNOOZE_MS) {
  try {
    localStorage.setItem(KEY, JSON.stringify({ until: Date.now() + ms, ids: [...ids] }));
  } catch {
    /* private mode: nothing is muted, which is the safe side */
  }
}

export function unsnooze() {
  try {
    localStorage.removeItem(KEY);
  } catch {
    /* nothing stored */
  }
}

/** Milliseconds left, or 0 when the reminder is not muted. */
export function snoozeLeft() {
  const v = read();
  return v ? v.until - Date.now() : 0;
}

export function isSnoozed(id) {
  const v = read();
  return !!v && v.ids.includes(id);
}
