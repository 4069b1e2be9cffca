import { ConsentWindowAnswerSchema } from "../../shared/protocol/embed-messages.js";
import { browserTimers, type Timers } from "../runtime/timers.js";
import { showQuestion } from "../consent/question.js";
import { trackVisibility } from "./visibility.js";

/**
 * Consent for an embedded tab is given here, in the coordinator's own frame: a click in this
 * document, which the host page can neither forge (it cannot script a cross-origin frame or
 * dispatch trusted events into it) nor read. The host page's `start` message only asks.
 *
 * - Whose consent: the host origin, from `#parent=` checked against `location.ancestorOrigins`
 *   where the browser has it (a page cannot name someone else's origin), and against each
 *   message's `event.origin`.
 * - What was agreed: the question names the GPU share; it is stored with the consent, and a later
 *   `start` may ask for less but never for more (web/frame/frame-main.ts).
 * - Remembered per host origin in the frame's own localStorage (partitioned by the top-level site
 *   in Chrome, so one site's consent is invisible to another); where the browser refuses the
 *   frame storage, consent holds for this page view only and the next visit asks again.
 * - Clickjacking: where the browser supports IntersectionObserver v2 (Chromium), a click counts
 *   only once the whole question with its buttons has been visible (not transparent, transformed,
 *   covered or clipped) for half a second (./visibility.ts). Where it does not (Firefox, Safari),
 *   a click here never counts: "Start contributing" opens a small top-level window on this origin
 *   (`/consent/`, web/consent/) that the host page cannot cover, and the answer given there comes
 *   back to this frame as a message.
 * - The coordinator's own pages (parent origin = this origin) need no second consent: a same-origin
 *   page can script this frame anyway, and the full contributor page asks on its own.
 */
const KEY_PREFIX = "tabgrid.frame.consent:";

/** The share a consent names: 1–100 from the host, below 10 acting as 10 (web/control). */
export function consentShare(gpuShare: number): number {
  return Math.min(100, Math.max(10, Math.round(gpuShare)));
}

/** The host origin this frame serves, or null if it cannot be trusted to be who it names. */
export function hostOrigin(loc: Location = location): string | null {
  const named = new URLSearchParams(loc.hash.slice(1)).get("parent");
  if (!named) return null;
  const ancestors = loc.ancestorOrigins;
  if (ancestors && ancestors.length > 0 && ancestors[0] !== named) return null;
  return named;
}

export interface ConsentStore {
  /** The GPU share (%) the visitor agreed to for this host, or null: ask. */
  given(origin: string): number | null;
  remember(origin: string, share: number): void;
  forget(origin: string): void;
}

/**
 * localStorage where allowed (`share:<percent>`); otherwise this page view only. A consent stored
 * before the question named the share (`yes`) is asked again.
 */
export function consentStore(storage: () => Storage = () => localStorage): ConsentStore {
  const memory = new Map<string, number>();
  const tryStorage = <T>(f: (s: Storage) => T, fallback: T): T => {
    try {
      return f(storage());
    } catch {
      return fallback;
    }
  };
  const parse = (value: string | null): number | null => {
    const m = /^share:(\d{1,3})$/.exec(value ?? "");
    return m ? consentShare(Number(m[1])) : null;
  };
  return {
    given: (origin) =>
      memory.get(origin) ?? tryStorage((s) => parse(s.getItem(KEY_PREFIX + origin)), null),
    remember(origin, share) {
      memory.set(origin, consentShare(share));
      tryStorage((s) => s.setItem(KEY_PREFIX + origin, `share:${consentShare(share)}`), undefined);
    },
    forget(origin) {
      memory.delete(origin);
      tryStorage((s) => s.removeItem(KEY_PREFIX + origin), undefined);
    },
  };
}

export interface AskOptions {
  /** The GPU share (%) the question names, and the visitor agrees to. */
  share: number;
  timers?: Timers;
  /** This frame's (the coordinator's) origin. */
  origin?: string;
  /** Opens the consent window; null where the browser blocked it. */
  openWindow?: (url: string) => Window | null;
  /** Where the consent window's answer arrives: this frame's window. */
  messages?: Pick<Window, "addEventListener" | "removeEventListener"> | null;
}

export const HIDDEN_TEXT =
  "This question is hidden or covered on the page, or only partly shown, so Tabgrid cannot count the click. Nothing started.";
/** After a click the browser says it could not see: the way to answer anyway. */
export const WINDOW_BUTTON = "Answer in a Tabgrid window";
export const SETTLING_TEXT =
  "This question appeared only a moment ago, so Tabgrid did not count the click. Read it, then click again. Nothing started.";

const browserWindow = (): (Window & typeof globalThis) | null =>
  typeof window !== "undefined" && typeof window.open === "function" ? window : null;

/**
 * Show the question in this frame and resolve true on "Start contributing" (a trusted click on a
 * question seen whole, or the answer from the consent window) or false on "No thanks".
 */
export function askInFrame(root: HTMLElement, host: string, opts: AskOptions): Promise<boolean> {
  const share = consentShare(opts.share);
  const origin = opts.origin ?? location.origin;
  // "Start contributing" shows as disabled (aria-disabled, so a click still reaches the handler and
  // can say why it did not count) until the question has been seen whole for DWELL_MS: before
  // that a click cannot count, and a greyed-out button says so instead of an error after a quick
  // click. Without v2 it stays enabled: it opens the consent window.
  const visible = trackVisibility(
    root,
    (seen) => setEnabled(start, seen === "shown" || seen === "unsupported"),
    opts.timers ?? browserTimers,
  );
  const inWindow = visible.state() === "unsupported";
  const site = siteName(host);
  const { start, no, problem } = showQuestion(root, {
    site,
    share,
    tab: "this",
    stopWhere: "",
    notes: inWindow
      ? [
          `This browser cannot show Tabgrid whether this question is visible on the page, so you answer in a small Tabgrid window (${siteName(origin)}).`,
        ]
      : [],
  });
  setEnabled(start, inWindow);
  root.hidden = false;

  const messages = opts.messages !== undefined ? opts.messages : (browserWindow() as Window | null);
  const openWindow =
    opts.openWindow ??
    ((url: string) => browserWindow()?.open(url, "_blank", "popup,width=460,height=440") ?? null);
  let pending: { win: Window; nonce: string } | null = null;

  return new Promise((resolve) => {
    const onAnswer = (event: MessageEvent) => {
      if (!pending || event.source !== pending.win || event.origin !== origin) return;
      const parsed = ConsentWindowAnswerSchema.safeParse(event.data);
      if (!parsed.success) return;
      const a = parsed.data;
      if (a.nonce !== pending.nonce || a.host !== host || a.share !== share) return;
      done(a.answer === "yes");
    };
    const done = (answer: boolean) => {
      visible.stop();
      messages?.removeEventListener("message", onAnswer as EventListener);
      root.hidden = true;
      root.replaceChildren();
      resolve(answer);
    };
    const askInWindow = () => {
      const nonce = crypto.randomUUID();
      const query = new URLSearchParams({ host, share: String(share), nonce });
      const win = messages ? openWindow(`${origin}/consent/#${query}`) : null;
      if (!win) {
        const link = document.createElement("a");
        link.href = `${origin}/`;
        link.target = "_blank";
        link.rel = "noopener";
        link.textContent = "Tabgrid's own page";
        problem.replaceChildren(
          "The Tabgrid window did not open (pop-ups blocked?). Nothing started. Allow it and click again, or contribute on ",
          link,
          ".",
        );
        return;
      }
      pending = { win, nonce };
      problem.textContent = "Answer in the Tabgrid window. Nothing starts until you do.";
    };
    // Answers come only from a window this frame opened (`pending`), so listening is harmless.
    messages?.addEventListener("message", onAnswer as EventListener);
    start.addEventListener("click", (event) => {
      if (!event.isTrusted) return;
      const seen = visible.state();
      if (seen === "unsupported") return askInWindow();
      if (seen === "settling") {
        problem.textContent = SETTLING_TEXT;
        return;
      }
      if (seen !== "shown") {
        // A page whose own layout fades, transforms or clips the frame looks hidden to the browser
        // for as long as it lasts: the visitor may answer in the consent window instead, which no
        // page can cover. A click there is as safe as where v2 is missing (docs/embed.md).
        const inTabgridWindow = document.createElement("button");
        inTabgridWindow.type = "button";
        inTabgridWindow.textContent = WINDOW_BUTTON;
        inTabgridWindow.addEventListener("click", (e) => {
          if (e.isTrusted) askInWindow();
        });
        problem.replaceChildren(`${HIDDEN_TEXT} `, inTabgridWindow);
        return;
      }
      done(true);
    });
    no.addEventListener("click", (event) => {
      if (event.isTrusted) done(false);
    });
  });
}

/** `host` of an origin, for the question's words. */
export function siteName(origin: string): string {
  try {
    return new URL(origin).host;
  } catch {
    return origin;
  }
}

function setEnabled(button: HTMLButtonElement, enabled: boolean): void {
  if (enabled) button.removeAttribute("aria-disabled");
  else button.setAttribute("aria-disabled", "true");
}
