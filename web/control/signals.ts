import type { Timers } from "../runtime/timers.js";

/**
 * The browser signals the controller follows: power source (Battery Status API, where present) and
 * whether the contributor is using this page.
 */

interface BatteryLike extends EventTarget {
  charging: boolean;
  level: number;
}

/**
 * Calls `onChange(onBattery)` now and whenever the power source changes, until `signal` aborts
 * (the contribution is disposed: the one BatteryManager outlives it, and a listener left on it
 * would keep driving a disposed controller). Resolves false when the browser has no Battery
 * Status API (Firefox, Safari): then the tab never pauses for battery.
 */
export async function watchBattery(
  onChange: (onBattery: boolean, level: number | null) => void,
  opts: { signal: AbortSignal; nav?: Navigator },
): Promise<boolean> {
  const nav = opts.nav ?? navigator;
  const getBattery = (nav as Navigator & { getBattery?: () => Promise<BatteryLike> }).getBattery;
  if (typeof getBattery !== "function") return false;
  let battery: BatteryLike;
  try {
    battery = await getBattery.call(nav);
  } catch {
    return false;
  }
  if (opts.signal.aborted) return false;
  const report = () => onChange(!battery.charging, battery.level ?? null);
  battery.addEventListener("chargingchange", report, { signal: opts.signal });
  battery.addEventListener("levelchange", report, { signal: opts.signal });
  report();
  return true;
}

/**
 * Active = a pointer, wheel or key event on this page within `quietMs`, while it is visible. Calls
 * `onChange` only on transitions. Returns a function that stops watching.
 */
export function watchActivity(
  target: Document,
  onChange: (active: boolean) => void,
  opts: { quietMs?: number; timers: Timers },
): () => void {
  const quietMs = opts.quietMs ?? 60_000;
  const timers = opts.timers;
  let active = false;
  let timer: number | null = null;
  const set = (next: boolean) => {
    if (next === active) return;
    active = next;
    onChange(active);
  };
  const input = () => {
    if (target.visibilityState === "hidden") return;
    set(true);
    if (timer !== null) timers.clearTimeout(timer);
    timer = timers.setTimeout(() => set(false), quietMs);
  };
  const visibility = () => {
    if (target.visibilityState === "hidden") set(false);
  };
  const events = ["pointerdown", "pointermove", "keydown", "wheel"] as const;
  for (const e of events) target.addEventListener(e, input, { passive: true });
  target.addEventListener("visibilitychange", visibility);
  return () => {
    for (const e of events) target.removeEventListener(e, input);
    target.removeEventListener("visibilitychange", visibility);
    if (timer !== null) timers.clearTimeout(timer);
  };
}
