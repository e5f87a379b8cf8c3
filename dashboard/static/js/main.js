// The dashboard's shell: session, tabs, the live stream and the banners.
//
// Order on login: open the stream first and hold its events, load the
// snapshot (areas, nodes, incidents, troubles), then apply the held events on
// top, so nothing that happened during the load is lost or shown out of order.

import { get, post, del, setCsrf, setUnauthorizedHandler } from "./api.js";
import { t, initI18n, applyI18n, getLang, setLang, roleLabel } from "./i18n.js";
import { state, emit, on, can, putCommand } from "./state.js";
import { setServerTime } from "./util.js";
import { LiveStream } from "./stream.js";
import { initSound, onSoundState, enableSound, soundBlocked } from "./sound.js";
import { applyIncident, startAlerts, updateTitle, markSeen, paintBanner, unseenIds } from "./alerts.js";
import { mountSystem, startSystem, stopSystem, healthy, faults } from "./system.js";
import { mountBoard } from "./board.js";
import { mountMap, showMap } from "./map.js";
import { mountTroubles } from "./troubles.js";
import { mountHistory, load as loadHistory } from "./history.js";
import { mountActions } from "./actions.js";
import { mountUsers, load as loadUsers } from "./users.js";
import { mountSim, simAvailable, startSim, stopSim } from "./sim.js";
import { errorText } from "./ui.js";

const VIEWS = ["board", "map", "troubles", "history", "actions", "users", "sim"];
const NEEDS = { actions: "operator", users: "admin" };
const $ = (id) => document.getElementById(id);

let stream = null;
let mounted = false;
let loaded = false;
let loading = null;
let held = [];

function boot() {
  initI18n();
  applyI18n(document);
  updateTitle();
  initSound();
  onSoundState((blocked) => {
    $("banner-sound").hidden = !(blocked && state.user);
  });
  $("btn-enable-sound").addEventListener("click", () => enableSound());
  $("btn-lang").addEventListener("click", () => {
    setLang(getLang() === "vi" ? "en" : "vi");
    applyI18n(document);
    paintWho();
    paintConn(stream ? stream.state : "connecting");
    updateTitle();
    emit("lang");
  });
  $("btn-logout").addEventListener("click", logout);
  $("btn-alarm-seen").addEventListener("click", seeAlarm);
  mountSystem($("system-strip"));
  on("system", () => paintConn(stream ? stream.state : "connecting"));
  on("incidents", paintBanner);
  on("lang", paintBanner);
  $("login-form").addEventListener("submit", login);
  for (const b of document.querySelectorAll(".tab")) {
    b.addEventListener("click", () => {
      location.hash = `#/${b.dataset.view}`;
    });
  }
  window.addEventListener("hashchange", route);
  setUnauthorizedHandler(() => expired());
  startAlerts();
  get("/session", { quiet401: true }).then(
    (s) => enter(s),
    () => {
      const msg = sessionStorage.getItem("tiengmo.loginMessage");
      sessionStorage.removeItem("tiengmo.loginMessage");
      showLogin(msg || undefined);
    },
  );
}

function showLogin(messageKey) {
  state.user = null;
  for (const v of VIEWS) $(`view-${v}`).hidden = true;
  $("tabs").hidden = true;
  $("who").hidden = true;
  $("btn-logout").hidden = true;
  $("banner-sound").hidden = true;
  $("banner-conn").hidden = true;
  $("conn-pill").hidden = true;
  $("view-login").hidden = false;
  const e = $("login-error");
  e.hidden = !messageKey;
  if (messageKey) {
    e.textContent = t(messageKey);
    e.dataset.i18n = messageKey;
  }
  $("login-user").focus();
}

async function login(ev) {
  ev.preventDefault();
  const e = $("login-error");
  e.hidden = true;
  const username = $("login-user").value.trim();
  const password = $("login-pass").value;
  if (!username || !password) {
    e.textContent = t("login_missing");
    e.dataset.i18n = "login_missing";
    e.hidden = false;
    return;
  }
  enableSound(); // the click on "log in" is the gesture that lets the gong sound
  try {
    const s = await post("/session", { username, password }, { quiet401: true });
    $("login-pass").value = "";
    enter(s);
    $("main").focus(); // keyboard users continue from the board, not from a hidden form
  } catch (err) {
    delete e.dataset.i18n;
    e.textContent = err.status === 401 ? t("login_bad") : errorText(err);
    e.hidden = false;
  }
}

function enter(session) {
  setCsrf(session.csrf_token);
  state.user = session.user;
  $("view-login").hidden = true;
  $("tabs").hidden = false;
  $("btn-logout").hidden = false;
  $("conn-pill").hidden = false;
  paintWho();
  for (const b of document.querySelectorAll(".tab")) {
    const need = b.dataset.role;
    b.hidden = (need && !can(need)) || (b.dataset.demo === "1" && !state.demo)
      || (b.dataset.view === "users" && !!state.user.area);   // accounts: hub-wide admins only
  }
  if (!mounted) {
    // Built once per page: a different user means a reload (see logout).
    mountBoard($("view-board"));
    mountMap($("view-map"));
    mountTroubles($("view-troubles"));
    mountHistory($("view-history"));
    if (can("operator")) mountActions($("view-actions"));
    if (can("admin") && !state.user.area) mountUsers($("view-users"));
    mountSim($("view-sim"));
    mounted = true;
  }
  $("banner-sound").hidden = !soundBlocked();
  startStream();
  startSystem();
  simAvailable().then((yes) => {
    state.demo = yes;
    document.querySelector('.tab[data-view="sim"]').hidden = !yes;
    // A reload on #/sim lands here before the panel answered: route again now.
    route();
  });
  route();
}

function paintWho() {
  const u = state.user;
  if (!u) return;
  const who = $("who");
  who.hidden = false;
  who.textContent = `${u.display_name || u.username} · ${roleLabel(u.role)}`;
  // An account limited to an area: the board shows only that area (the API filters).
  const area = $("who-area");
  area.hidden = !u.area;
  if (u.area) {
    const name = u.area_name || u.area;
    area.textContent = t("who_area", { area: name });
    area.title = `${t("who_area_hint")} (${u.area})`;
  }
}

function currentView() {
  const name = (location.hash || "").replace(/^#\/?/, "");
  if (!VIEWS.includes(name)) return "board";
  if (NEEDS[name] && !can(NEEDS[name])) return "board";
  if (name === "sim" && !state.demo) return "board";
  if (name === "users" && state.user.area) return "board";   // hub-wide admins only
  return name;
}

function route() {
  if (!state.user) return;
  const view = currentView();
  for (const v of VIEWS) $(`view-${v}`).hidden = v !== view;
  for (const b of document.querySelectorAll(".tab")) {
    if (b.dataset.view === view) b.setAttribute("aria-current", "page");
    else b.removeAttribute("aria-current");
  }
  if (view === "map") showMap();
  if (view === "history") loadHistory();
  if (view === "users") loadUsers();
  if (view === "sim") startSim();
  else stopSim();
}

// -- the live stream -----------------------------------------------------------

function startStream() {
  if (stream) stream.stop();
  loaded = false;
  held = [];
  // 20 s of silence (the hub pings every 15 s) means a dead line; a setting for tests.
  const silenceMs = Number(localStorage.getItem("tiengmo.streamSilenceMs")) || 20000;
  stream = new LiveStream({ onEvent, onState: paintConn, onProbe: probe, silenceMs });
  paintConn("connecting");
  stream.start();
}

async function probe() {
  // The stream cannot see HTTP statuses: ask whether the session itself ended.
  try {
    await get("/session", { quiet401: true });
  } catch (err) {
    if (err.status === 401) expired();
  }
}

function onEvent(type, body) {
  if (type === "hello") {
    if (body) setServerTime(body.server_time_ms);
    if (body && stream.lastId === null && body.last_id !== undefined && body.last_id !== null) {
      stream.lastId = String(body.last_id);
    }
    if (!loaded && !loading) loadSnapshot();
    return;
  }
  if (type === "ping") {
    if (body && body.server_time_ms) setServerTime(body.server_time_ms);
    return;
  }
  if (type === "reset") {
    loadSnapshot();
    return;
  }
  if (!loaded) {
    held.push([type, body]);
    return;
  }
  apply(type, body);
}

let nodesDirty = false;
function apply(type, body) {
  if (!body) return;
  if (type === "incident") applyIncident(body, { live: true });
  else if (type === "node") {
    state.nodes.set(body.id, { ...(state.nodes.get(body.id) || {}), ...body });
    // Node updates come in bursts (a hamlet's gongs start together): draw once a frame.
    if (!nodesDirty) {
      nodesDirty = true;
      requestAnimationFrame(() => {
        nodesDirty = false;
        emit("nodes");
      });
    }
  } else if (type === "command") {
    if (body.incident_id && !body.deleted) {
      putCommand(body);
      emit("commands");
    }
  } else if (type === "trouble") {
    state.troubles.set(body.id, body);
    emit("troubles");
  }
}

async function loadSnapshot() {
  loaded = false;
  const run = (async () => {
    try {
      const [areas, nodes, open, acked, troubles] = await Promise.all([
        get("/areas"),
        get("/nodes"),
        get("/incidents?state=open&limit=500"),
        get("/incidents?state=acknowledged&limit=500"),
        get("/troubles?open=true"),
      ]);
      state.areas = new Map((areas || []).map((a) => [a.path, a]));
      state.nodes = new Map((nodes || []).map((n) => [n.id, n]));
      state.incidents = new Map();
      for (const inc of [...(open || []), ...(acked || [])]) state.incidents.set(inc.id, inc);
      state.troubles = new Map((troubles || []).map((tr) => [tr.id, tr]));
      loaded = true;
      const pending = held;
      held = [];
      emit("areas");
      emit("nodes");
      emit("troubles");
      emit("incidents");
      for (const [type, body] of pending) apply(type, body);
      updateTitle();
    } catch (err) {
      console.warn("snapshot failed", err);
      setTimeout(() => {
        if (!loaded && state.user) loadSnapshot();
      }, 2000);
    } finally {
      loading = null;
    }
  })();
  loading = run;
  return run;
}

// "Live" only when the stream is up AND the system is healthy; otherwise the
// pill says in words what is wrong (the strip below it says how much).
function paintConn(s) {
  const pill = $("conn-pill");
  const lost = s === "lost" && !!state.user;
  $("banner-conn").hidden = !lost;
  document.body.classList.toggle("is-stale", lost);
  let key = s === "up" ? "conn_up" : s === "lost" ? "conn_lost_short" : "conn_connecting";
  let cls = s === "up" ? "pill-ok" : s === "lost" ? "pill-danger" : "pill-muted";
  if (s === "up" && !healthy()) {
    key = faults().length ? "conn_degraded" : "conn_connecting";
    cls = faults().length ? "pill-warn" : "pill-muted";
  }
  pill.textContent = t(key);
  pill.dataset.i18n = key;
  pill.className = `pill ${cls}`;
  const why = faults().join(", ");
  if (why) pill.title = why;
  else pill.removeAttribute("title");
}

/** The alarm banner's button: show the board with the newest unseen alarm's card. */
function seeAlarm() {
  const ids = unseenIds();
  markSeen();
  if (currentView() !== "board") location.hash = "#/board";
  route();
  const card = ids.length && document.querySelector(`#incident-list .incident[data-id="${CSS.escape(ids[0])}"]`);
  const target = card && (card.querySelector(".btn-ack:not([hidden])") || card);
  if (target) {
    if (target === card) card.tabIndex = -1;
    target.scrollIntoView({ block: "center" });
    target.focus();
  } else $("main").focus();
}

// -- leaving -------------------------------------------------------------------

function teardown() {
  if (stream) stream.stop();
  stream = null;
  stopSim();
  stopSystem();
  setCsrf(null);
  state.incidents = new Map();
  emit("incidents");
  updateTitle();
}

// A fresh page for the next user: views are built for one user's role, and a
// reload guarantees nothing of the previous session stays on screen.
async function logout() {
  try {
    await del("/session", { quiet401: true });
  } catch {
    /* logged out either way */
  }
  teardown();
  history.replaceState(null, "", location.pathname);
  location.reload();
}

function expired() {
  if (!state.user) return;
  teardown();
  sessionStorage.setItem("tiengmo.loginMessage", "session_expired");
  location.reload();
}

boot();
