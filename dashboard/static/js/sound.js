// The gong, made with Web Audio (no audio file), and the browser's autoplay rules.
//
// Browsers start an AudioContext "suspended" until the user has clicked or
// typed on the page. A board that cannot sound must say so: `onBlocked` is
// told whenever the context is not running, and any click or key press on
// the page (the login button counts) tries to resume it.

let ctx = null;
const listeners = new Set();

function notify() {
  const blocked = !ctx || ctx.state !== "running";
  for (const fn of listeners) fn(blocked);
}

export function soundBlocked() {
  return !ctx || ctx.state !== "running";
}

/** fn(blocked: boolean), called now and on every change. */
export function onSoundState(fn) {
  listeners.add(fn);
  fn(soundBlocked());
}

export function initSound() {
  const AC = window.AudioContext || window.webkitAudioContext;
  if (!AC) {
    notify();
    return;
  }
  try {
    ctx = new AC();
  } catch {
    ctx = null;
    notify();
    return;
  }
  ctx.addEventListener("statechange", notify);
  window.__tiengmoAudio = ctx; // lets the browser tests play the browser blocking sound
  const unlock = () => {
    if (ctx && ctx.state !== "running") ctx.resume().then(notify, notify);
  };
  // Capture phase: the gesture counts even if a handler stops propagation.
  document.addEventListener("pointerdown", unlock, true);
  document.addEventListener("keydown", unlock, true);
  notify();
}

/** Resume from a click on the banner's button (a user gesture). */
export async function enableSound() {
  if (!ctx) initSound();
  if (ctx && ctx.state !== "running") {
    try {
      await ctx.resume();
    } catch {
      /* still blocked: the banner stays */
    }
  }
  notify();
  return !soundBlocked();
}

// An iron kẻng struck with a hammer: inharmonic partials, a sharp attack and
// a long ring, plus a short noise burst for the hit itself.
const PARTIALS = [
  [1.0, 1.0, 2.8],
  [2.32, 0.55, 1.6],
  [3.86, 0.35, 1.1],
  [5.4, 0.22, 0.7],
  [7.1, 0.12, 0.4],
];

function strike(at, base = 330, gain = 0.5) {
  const out = ctx.createGain();
  out.gain.value = gain;
  out.connect(ctx.destination);
  for (const [ratio, amp, decay] of PARTIALS) {
    const osc = ctx.createOscillator();
    osc.type = "sine";
    osc.frequency.value = base * ratio;
    const g = ctx.createGain();
    g.gain.setValueAtTime(0.0001, at);
    g.gain.exponentialRampToValueAtTime(amp, at + 0.004);
    g.gain.exponentialRampToValueAtTime(0.0001, at + decay);
    osc.connect(g).connect(out);
    osc.start(at);
    osc.stop(at + decay + 0.05);
  }
  const len = Math.floor(ctx.sampleRate * 0.03);
  const buf = ctx.createBuffer(1, len, ctx.sampleRate);
  const ch = buf.getChannelData(0);
  for (let i = 0; i < len; i++) ch[i] = (Math.random() * 2 - 1) * (1 - i / len);
  const noise = ctx.createBufferSource();
  noise.buffer = buf;
  const ng = ctx.createGain();
  ng.gain.value = 0.25;
  noise.connect(ng).connect(out);
  noise.start(at);
}

let lastGong = 0;
export let gongCount = 0; // how many times the gong was played (read by the browser tests)

/** Three quick strikes (the "liên hồi" rhythm). Returns false if the browser blocks sound. */
export function gong() {
  if (!ctx || ctx.state !== "running") return false;
  const now = ctx.currentTime;
  if (now - lastGong < 1.0) return true; // a burst of incidents rings once, not ten times over
  lastGong = now;
  for (let i = 0; i < 3; i++) strike(now + 0.02 + i * 0.28);
  gongCount += 1;
  window.__tiengmoGongs = gongCount;
  return true;
}
