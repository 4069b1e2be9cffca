import { browserTimers, type Timers } from "../runtime/timers.js";

/**
 * Whether the frame's panel (the consent question with its buttons, or the running notice with
 * its Stop) is really in front of the visitor on the host page, from IntersectionObserver v2
 * (Chromium): `isVisible` (not transparent, filtered, transformed or covered) and the share of the
 * panel inside the viewport, after the host page's clipping (`overflow: hidden`, a frame smaller
 * than its content, an offset off-screen). A host can otherwise show only the "Start contributing"
 * row and hide the question above it.
 *
 * - `shown`: the whole panel (≥ FULLY_SHOWN of it) visible, continuously for DWELL_MS, so a panel
 *   flashed into view under a moving pointer does not count;
 * - `settling`: fully visible, for less than DWELL_MS;
 * - `hidden`: not (fully) visible, or not reported yet;
 * - `unsupported`: no IntersectionObserver v2 (Firefox, Safari): the frame cannot tell.
 *
 * Reports come at most every 100 ms (v2's minimum `delay`), so a change is seen that late.
 */
export type Seen = "shown" | "settling" | "hidden" | "unsupported";

/** Share of the panel that must be inside the viewport (1, less sub-pixel rounding). */
export const FULLY_SHOWN = 0.99;
/** How long the panel must have been fully visible before a click counts. */
export const DWELL_MS = 500;

export interface VisibilityTracker {
  state(): Seen;
  stop(): void;
}

type V2Entry = IntersectionObserverEntry & { isVisible?: boolean };

export function ioV2Supported(): boolean {
  return (
    typeof IntersectionObserver !== "undefined" &&
    typeof IntersectionObserverEntry !== "undefined" &&
    "isVisible" in IntersectionObserverEntry.prototype
  );
}

/** Follow `target`; `onChange` hears every change of state (including the end of a dwell). */
export function trackVisibility(
  target: Element,
  onChange: (seen: Seen) => void,
  timers: Timers = browserTimers,
): VisibilityTracker {
  const unsupported = { state: (): Seen => "unsupported", stop() {} };
  if (!ioV2Supported()) return unsupported;
  let since: number | null = null;
  let dwell: number | null = null;
  const state = (): Seen =>
    since === null ? "hidden" : timers.now() - since >= DWELL_MS ? "shown" : "settling";
  const clearDwell = () => {
    if (dwell !== null) timers.clearTimeout(dwell);
    dwell = null;
  };
  let observer: IntersectionObserver;
  try {
    observer = new IntersectionObserver(
      (entries) => {
        const last = entries.at(-1) as V2Entry | undefined;
        if (!last || typeof last.isVisible !== "boolean") return;
        const full = last.isVisible && last.intersectionRatio >= FULLY_SHOWN;
        if (full && since === null) {
          since = timers.now();
          dwell = timers.setTimeout(() => {
            dwell = null;
            onChange(state());
          }, DWELL_MS);
        } else if (!full) {
          since = null;
          clearDwell();
        }
        onChange(state());
      },
      // v2 needs trackVisibility with a delay of at least 100 ms. Thresholds: 1 (wholly inside)
      // and FULLY_SHOWN, so a drop from "nearly 1" to a sliver is reported too.
      {
        threshold: [FULLY_SHOWN, 1],
        trackVisibility: true,
        delay: 100,
      } as IntersectionObserverInit,
    );
    observer.observe(target);
  } catch {
    return unsupported;
  }
  return {
    state,
    stop() {
      clearDwell();
      observer.disconnect();
    },
  };
}
