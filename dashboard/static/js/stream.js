// The live stream (SSE, GET /api/v1/stream) with a watchdog.
//
// An operator must never watch a frozen board, so the connection is reported
// lost at once when the EventSource errors, when the browser goes offline,
// and when nothing (not even the hub's 15-s ping) has arrived for `silenceMs`.
// Reconnects resume after the last event id seen (?last_event_id=N), so no
// incident is missed; the hub answers `reset` when that id is too old.

import { BASE } from "./api.js";

const TYPES = ["hello", "incident", "alarm", "node", "trouble", "command", "ping", "reset"];

export class LiveStream {
  constructor({ onEvent, onState, onProbe, silenceMs = 20000 }) {
    this.onEvent = onEvent;
    this.onState = onState; // (state: "connecting" | "up" | "lost", reason)
    this.onProbe = onProbe || (async () => {});
    this.silenceMs = silenceMs;
    this.es = null;
    this.lastId = null;
    this.lastSeen = 0;
    this.state = "connecting";
    this.retryMs = 1000;
    this.retryTimer = null;
    this.watchdog = null;
    this.stopped = true;
  }

  start() {
    this.stopped = false;
    this.open();
    clearInterval(this.watchdog);
    this.watchdog = setInterval(() => this.check(), 1000);
    this._offline = () => this.lost("offline");
    this._online = () => this.reopen(0);
    window.addEventListener("offline", this._offline);
    window.addEventListener("online", this._online);
  }

  stop() {
    this.stopped = true;
    clearInterval(this.watchdog);
    clearTimeout(this.retryTimer);
    window.removeEventListener("offline", this._offline);
    window.removeEventListener("online", this._online);
    if (this.es) this.es.close();
    this.es = null;
    this.lastId = null;
  }

  setState(state, reason = "") {
    if (state === this.state) return;
    this.state = state;
    this.onState(state, reason);
  }

  open() {
    if (this.es) this.es.close();
    const url = BASE + "/stream" + (this.lastId !== null ? `?last_event_id=${encodeURIComponent(this.lastId)}` : "");
    const es = new EventSource(url, { withCredentials: true });
    this.es = es;
    this.lastSeen = Date.now();
    es.onopen = () => {
      if (es !== this.es) return;
      this.lastSeen = Date.now();
      this.retryMs = 1000;
      this.setState("up");
    };
    es.onerror = () => {
      if (es !== this.es) return;
      // Our own reconnect (not the browser's 3-s default): resume id and back-off are ours.
      es.close();
      this.lost("error");
      this.onProbe();
      this.reopen(this.retryMs);
      this.retryMs = Math.min(this.retryMs * 2, 10000);
    };
    for (const type of TYPES) {
      es.addEventListener(type, (ev) => {
        if (es !== this.es) return;
        this.lastSeen = Date.now();
        if (ev.lastEventId) this.lastId = ev.lastEventId;
        this.setState("up");
        let body = null;
        if (ev.data) {
          try {
            body = JSON.parse(ev.data);
          } catch {
            body = null;
          }
        }
        if (type === "reset") this.lastId = null;
        this.onEvent(type, body);
      });
    }
    // Plain "message" events carry nothing we know, but they prove the line is alive.
    es.onmessage = () => {
      this.lastSeen = Date.now();
    };
  }

  lost(reason) {
    if (this.stopped) return;
    this.setState("lost", reason);
  }

  reopen(delayMs) {
    clearTimeout(this.retryTimer);
    if (this.stopped) return;
    this.retryTimer = setTimeout(() => {
      if (!this.stopped) this.open();
    }, delayMs);
  }

  check() {
    if (this.stopped || !this.es) return;
    if (Date.now() - this.lastSeen > this.silenceMs) {
      // A half-open TCP connection or a stuck hub: say so, and try a fresh connection.
      this.lost("silent");
      this.es.close();
      this.open();
    }
  }
}
