import {
  EMBED_CHANNEL_VERSION,
  type ConsentWindowAnswer,
} from "../../shared/protocol/embed-messages.js";
import type { Timers } from "../runtime/timers.js";
import { consentShare, siteName } from "../frame/consent.js";
import { DWELL_MS } from "../frame/visibility.js";
import { para, showQuestion } from "./question.js";

/**
 * The consent window (`/consent/#host=…&share=…&nonce=…`): where the embed frame cannot tell
 * whether its question is visible on the host page (no IntersectionObserver v2: Firefox, Safari),
 * its "Start contributing" opens this small top-level window on the coordinator's origin instead.
 * The host page cannot cover, clip or script a window of its own, and the address bar shows whose
 * it is. The answer goes to the frame that opened it (`opener`, same origin) as a message; the
 * frame checks window, origin and nonce (web/frame/consent.ts).
 *
 * - Framed, it refuses (dist/_headers also forbids other sites to frame it).
 * - Opened by anything but a Tabgrid frame, nobody gets the answer: it is posted to this origin
 *   only, and a frame accepts it only from the window it opened itself.
 * - A double click on a host page (the first opens this window, the second lands in it) does not
 *   count: the buttons work only after this window has been in front, with focus, for DWELL_MS.
 */
export interface WindowEnv {
  hash: string;
  /** This window's (the coordinator's) origin. */
  origin: string;
  /** This document is inside a frame. */
  framed: boolean;
  opener: Pick<Window, "postMessage"> | null;
  timers: Timers;
  /** The window is visible and has focus now. */
  attentive(): boolean;
  /** Calls back when that may have changed (focus, blur, visibilitychange). */
  onAttention(listener: () => void): void;
  close(): void;
}

export const TOO_SOON_TEXT =
  "This window opened only a moment ago, so Tabgrid did not count the click. Read the question, then click again.";

export function confirmInWindow(root: HTMLElement, env: WindowEnv): void {
  const params = new URLSearchParams(env.hash.replace(/^#/, ""));
  const host = params.get("host") ?? "";
  const shareText = params.get("share") ?? "";
  const nonce = params.get("nonce") ?? "";
  const valid = isOrigin(host) && /^\d{1,3}$/.test(shareText) && /^[\w-]{16,64}$/.test(nonce);
  if (env.framed) {
    root.replaceChildren(para("This Tabgrid page works only as a window of its own."));
    return;
  }
  if (!valid || !env.opener) {
    root.replaceChildren(
      para(
        "Nothing to confirm here. Tabgrid's frame on a site opens this window when you choose to contribute there.",
      ),
    );
    return;
  }
  const share = consentShare(Number(shareText));
  const site = siteName(host);

  const { start, no, problem } = showQuestion(root, {
    site,
    share,
    tab: "that",
    stopWhere: ", on that page",
    notes: [
      `${site} cannot answer this for you: this window belongs to Tabgrid (${siteName(env.origin)}), and it asks because your browser cannot show Tabgrid whether its question is visible on ${site}.`,
    ],
  });

  // The buttons work once this window has been in front, with focus, for DWELL_MS.
  let since: number | null = null;
  let timer: number | null = null;
  const ready = () => since !== null && env.timers.now() - since >= DWELL_MS;
  const show = () => {
    if (ready()) start.removeAttribute("aria-disabled");
    else start.setAttribute("aria-disabled", "true");
  };
  const follow = () => {
    if (env.attentive()) {
      if (since === null) {
        since = env.timers.now();
        timer = env.timers.setTimeout(show, DWELL_MS);
      }
    } else {
      since = null;
      if (timer !== null) env.timers.clearTimeout(timer);
      timer = null;
    }
    show();
  };
  env.onAttention(follow);
  follow();

  let answered = false;
  const answer = (a: ConsentWindowAnswer["answer"]) => {
    answered = true;
    const msg: ConsentWindowAnswer = {
      tabgrid: EMBED_CHANNEL_VERSION,
      type: "consent",
      nonce,
      host,
      share,
      answer: a,
    };
    env.opener?.postMessage(msg, env.origin);
    root.replaceChildren(
      para(
        a === "yes"
          ? `Thank you. Tabgrid starts on ${site}; stop it there at any time. You can close this window.`
          : `Nothing starts on ${site}. You can close this window.`,
      ),
    );
    env.close();
  };
  start.addEventListener("click", (event) => {
    if (!event.isTrusted || answered) return;
    if (!ready()) {
      problem.textContent = TOO_SOON_TEXT;
      return;
    }
    answer("yes");
  });
  no.addEventListener("click", (event) => {
    if (event.isTrusted && !answered) answer("no");
  });
}

function isOrigin(value: string): boolean {
  try {
    const url = new URL(value);
    return (url.protocol === "https:" || url.protocol === "http:") && url.origin === value;
  } catch {
    return false;
  }
}
