import { browserTimers } from "../runtime/timers.js";
import { confirmInWindow } from "./consent-window.js";

/** The consent window's page: ./consent-window.ts with this browser window's facts. */
confirmInWindow(document.getElementById("question")!, {
  hash: location.hash,
  origin: location.origin,
  framed: window.top !== window,
  opener: window.opener as Window | null,
  timers: browserTimers,
  attentive: () => document.visibilityState === "visible" && document.hasFocus(),
  onAttention(listener) {
    addEventListener("focus", listener);
    addEventListener("blur", listener);
    document.addEventListener("visibilitychange", listener);
  },
  close: () => window.close(),
});
