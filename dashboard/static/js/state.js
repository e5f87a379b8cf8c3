// What the board knows, kept in one place and updated from the REST snapshot
// and then the live stream. Views subscribe to the parts they draw.

export const state = {
  user: null, // {username, role, display_name}
  demo: false, // the simulator panel answered
  areas: new Map(), // path -> {path, name, level, depth, parent}
  nodes: new Map(), // id -> node
  incidents: new Map(), // id -> incident (open and acknowledged ones, plus recent others)
  closed: new Map(), // id -> the last closed incidents (the board words a close it did not make)
  troubles: new Map(), // id -> trouble
  drills: new Map(), // incident id -> drill incident started from this screen
  commands: new Map(), // command id -> command sent for an incident (sound, silence)
};

const subs = new Map();

/** on("incidents", fn): fn() after every change of that part. */
export function on(topic, fn) {
  if (!subs.has(topic)) subs.set(topic, new Set());
  subs.get(topic).add(fn);
  return () => subs.get(topic).delete(fn);
}

export function emit(topic, detail) {
  for (const fn of subs.get(topic) || []) {
    try {
      fn(detail);
    } catch (err) {
      console.error(err);
    }
  }
}

export function can(role) {
  const order = { viewer: 0, operator: 1, admin: 2 };
  const mine = state.user ? order[state.user.role] ?? -1 : -1;
  return mine >= order[role];
}

export function areaName(path) {
  const a = state.areas.get(path);
  return (a && a.name) || path || "";
}

/** True while an incident still needs someone (open, not yet taken). */
export function needsAck(inc) {
  return inc.state === "open";
}

export function isActive(inc) {
  return inc.state === "open" || inc.state === "acknowledged";
}

/** A node's name from the registry, else its id. */
export function nodeName(id) {
  const n = state.nodes.get(id);
  return (n && n.name) || id || "";
}

/** The registered, enabled nodes a command to `target` (an area path or a node id) reaches. */
export function nodesUnder(targetKind, target) {
  const out = [];
  for (const n of state.nodes.values()) {
    if (!n.registered || !n.enabled) continue;
    if (targetKind === "node" ? n.id === target : n.area === target || (n.area || "").startsWith(target + "/")) out.push(n);
  }
  return out;
}

/** Keep the newest view of a command: a detail fetched before a result came in must
 * not overwrite the stream's later copy (results only ever grow). */
export function putCommand(c) {
  const had = state.commands.get(c.id);
  if (!had || (c.results || []).length >= (had.results || []).length) state.commands.set(c.id, c);
}
