import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeElement, installFakeDocument } from "../../test/support/fake-dom.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import {
  askInFrame,
  HIDDEN_TEXT,
  SETTLING_TEXT,
  WINDOW_BUTTON,
  type AskOptions,
} from "./consent.js";
import { DWELL_MS } from "./visibility.js";

/**
 * The consent click in the coordinator's frame must not be obtainable by a host page that shows
 * the frame transparently, or only a sliver of it, over a decoy (from the embed audit). Where the
 * browser has IntersectionObserver v2 the click counts only on a question seen whole for
 * DWELL_MS; where it has not, a click in the frame never counts: it opens the consent window, and
 * only that window's answer does.
 */
/** The fake DOM element (test/support/fake-dom.ts), as this file names it. */
const El = FakeElement;
type El = FakeElement;

type G = Record<string, unknown>;
const g = globalThis as G;
let uninstall = () => {};
const saved: Record<string, unknown> = {};
const HOST = "https://host.example";
const ORIGIN = "https://coordinator.example";

function findButton(root: El, label: string): El {
  const walk = (e: El): El | null => {
    if (e.tagName === "button" && e.textContent === label) return e;
    for (const c of e.children)
      if (typeof c !== "string") {
        const f = walk(c as El);
        if (f) return f;
      }
    return null;
  };
  const b = walk(root);
  if (!b) throw new Error(`no ${label} button`);
  return b;
}

const tick = () => new Promise((r) => setTimeout(r, 0));

/** The question, asked; `answer` is what askInFrame resolved with so far ("pending" if nothing). */
async function ask(opts: Partial<AskOptions> = {}) {
  const root = new El("main");
  const timers = new ManualTimers();
  const state: { answer: boolean | "pending" } = { answer: "pending" };
  void askInFrame(root as unknown as HTMLElement, HOST, {
    share: 100,
    timers,
    origin: ORIGIN,
    ...opts,
  }).then((a) => (state.answer = a));
  await tick(); // the first visibility report
  const start = findButton(root, "Start contributing");
  const problem = () => root.children.at(-1) as El;
  return { root, timers, state, start, problem };
}

/** What askInFrame resolved with after one trusted click on "Start contributing" (or "pending"). */
async function clickStart(waitMs = 0): Promise<boolean | "pending"> {
  const q = await ask();
  q.timers.advance(waitMs);
  q.start.trustedClick();
  await tick();
  return q.state.answer;
}

beforeEach(() => {
  uninstall = installFakeDocument();
  (g.document as G).createElement = (tag: string) => new El(tag);
  for (const k of ["IntersectionObserver", "IntersectionObserverEntry"]) saved[k] = g[k];
});
afterEach(() => {
  uninstall();
  for (const k of Object.keys(saved)) {
    if (saved[k] === undefined) delete g[k];
    else g[k] = saved[k];
  }
});

/** An IntersectionObserver v2 that reports one entry for the target, as Chromium would. */
function installIoV2(entry: {
  isVisible: boolean;
  isIntersecting: boolean;
  intersectionRatio: number;
}) {
  class Entry {}
  Object.defineProperty(Entry.prototype, "isVisible", { get: () => false });
  g.IntersectionObserverEntry = Entry;
  const options: IntersectionObserverInit[] = [];
  g.IntersectionObserver = class {
    constructor(
      private readonly cb: (e: unknown[]) => void,
      init: IntersectionObserverInit,
    ) {
      options.push(init);
    }
    // Reports arrive asynchronously, after observe() returns, as in the browser.
    observe(target: unknown) {
      queueMicrotask(() => this.cb([{ ...entry, target, time: 0 }]));
    }
    disconnect() {}
  };
  return options;
}

/** Firefox/Safari: IntersectionObserver v1 only — no `isVisible` on entries. */
function installIoV1() {
  class Entry {}
  g.IntersectionObserverEntry = Entry;
  g.IntersectionObserver = class {
    constructor(private readonly cb: (e: unknown[]) => void) {}
    observe() {
      queueMicrotask(() => this.cb([{ isIntersecting: true, intersectionRatio: 1 }]));
    }
    disconnect() {}
  };
}

describe("the consent click in the frame is not obtainable by clickjacking", () => {
  it("without IntersectionObserver v2 (Firefox, Safari) a click on a frame nobody can see does not count", async () => {
    installIoV1();
    // The host page made the frame opacity:0 over a "Play!" button; the visitor clicks "Play!".
    expect(await clickStart(DWELL_MS)).not.toBe(true);
  });

  it("a frame showing only a sliver of the question (the button, not the text) does not count", async () => {
    // The host clips the frame (overflow:hidden container / negative offset) so that only the
    // "Start contributing" button shows: unoccluded, no opacity or transform, so isVisible is true.
    installIoV2({ isVisible: true, isIntersecting: true, intersectionRatio: 0.15 });
    const q = await ask();
    q.timers.advance(DWELL_MS);
    expect(q.start.getAttribute("aria-disabled")).toBe("true");
    q.start.trustedClick();
    await tick();
    expect(q.state.answer).not.toBe(true);
    expect(q.problem().textContent).toContain(HIDDEN_TEXT);
  });

  it("a question shown whole only a moment ago does not count yet; after DWELL_MS it does", async () => {
    installIoV2({ isVisible: true, isIntersecting: true, intersectionRatio: 1 });
    const q = await ask();
    q.timers.advance(DWELL_MS - 1);
    q.start.trustedClick();
    await tick();
    expect(q.state.answer).toBe("pending");
    expect(q.problem().textContent).toBe(SETTLING_TEXT);
    q.timers.advance(1);
    expect(q.start.getAttribute("aria-disabled")).toBeNull();
    q.start.trustedClick();
    await tick();
    expect(q.state.answer).toBe(true);
  });

  it("observes with v2's visibility tracking and a threshold at the whole panel", () => {
    const options = installIoV2({ isVisible: true, isIntersecting: true, intersectionRatio: 1 });
    void ask();
    expect(options[0]).toMatchObject({ trackVisibility: true, delay: 100 });
    expect(options[0]!.threshold).toContain(1);
  });

  // Controls: the harness tells a hidden frame from a fully shown one.
  it("control: a frame IOv2 reports not visible (opacity 0) does not count", async () => {
    installIoV2({ isVisible: false, isIntersecting: true, intersectionRatio: 1 });
    expect(await clickStart(DWELL_MS)).toBe("pending");
  });
  it("control: the whole question shown and visible counts", async () => {
    installIoV2({ isVisible: true, isIntersecting: true, intersectionRatio: 1 });
    expect(await clickStart(DWELL_MS)).toBe(true);
  });
});

describe("without IntersectionObserver v2 the visitor answers in the consent window", () => {
  /** The frame's window (where answers arrive) and the windows it opened. */
  function frameWindow() {
    const listeners: ((e: unknown) => void)[] = [];
    const opened: { url: string; win: object }[] = [];
    return {
      opened,
      messages: {
        addEventListener: (_: string, l: (e: unknown) => void) => listeners.push(l),
        removeEventListener: (_: string, l: (e: unknown) => void) =>
          listeners.splice(listeners.indexOf(l), 1),
      } as unknown as Window,
      openWindow: (url: string) => {
        const win = {};
        opened.push({ url, win });
        return win as Window;
      },
      deliver: (e: object) => [...listeners].forEach((l) => l(e)),
      listening: () => listeners.length,
    };
  }
  const answer = (nonce: string, extra: object = {}) => ({
    tabgrid: 1,
    type: "consent",
    nonce,
    host: HOST,
    share: 60,
    answer: "yes",
    ...extra,
  });

  it("a click opens the window on the coordinator's origin; only that window's answer counts", async () => {
    installIoV1();
    const w = frameWindow();
    const q = await ask({ share: 60, openWindow: w.openWindow, messages: w.messages });
    expect(q.start.getAttribute("aria-disabled")).toBeNull();
    q.start.trustedClick();
    expect(w.opened).toHaveLength(1);
    const url = new URL(w.opened[0]!.url);
    expect(url.origin + url.pathname).toBe(`${ORIGIN}/consent/`);
    const params = new URLSearchParams(url.hash.slice(1));
    expect(params.get("host")).toBe(HOST);
    expect(params.get("share")).toBe("60");
    const nonce = params.get("nonce")!;
    const win = w.opened[0]!.win;

    // Not from that window, not from this origin, another nonce, a larger share: ignored.
    w.deliver({ source: {}, origin: ORIGIN, data: answer(nonce) });
    w.deliver({ source: win, origin: HOST, data: answer(nonce) });
    w.deliver({ source: win, origin: ORIGIN, data: answer(`${nonce}x`) });
    w.deliver({ source: win, origin: ORIGIN, data: answer(nonce, { share: 100 }) });
    w.deliver({
      source: win,
      origin: ORIGIN,
      data: answer(nonce, { host: "https://other.example" }),
    });
    await tick();
    expect(q.state.answer).toBe("pending");

    w.deliver({ source: win, origin: ORIGIN, data: answer(nonce) });
    await tick();
    expect(q.state.answer).toBe(true);
    expect(w.listening()).toBe(0);
  });

  it("with v2, after a click it could not see, the visitor may answer in the window instead", async () => {
    // A page whose layout fades or transforms the frame looks hidden to v2 while it lasts.
    installIoV2({ isVisible: false, isIntersecting: true, intersectionRatio: 1 });
    const w = frameWindow();
    const q = await ask({ share: 60, openWindow: w.openWindow, messages: w.messages });
    q.timers.advance(DWELL_MS);
    q.start.trustedClick();
    expect(w.opened).toHaveLength(0);
    const button = findButton(q.problem(), WINDOW_BUTTON);
    button.click(); // a script's click (not trusted) opens nothing
    expect(w.opened).toHaveLength(0);
    button.trustedClick();
    expect(w.opened).toHaveLength(1);
    const nonce = new URLSearchParams(new URL(w.opened[0]!.url).hash.slice(1)).get("nonce")!;
    w.deliver({ source: w.opened[0]!.win, origin: ORIGIN, data: answer(nonce) });
    await tick();
    expect(q.state.answer).toBe(true);
  });

  it("'No thanks' in the window declines", async () => {
    installIoV1();
    const w = frameWindow();
    const q = await ask({ share: 60, openWindow: w.openWindow, messages: w.messages });
    q.start.trustedClick();
    const nonce = new URLSearchParams(new URL(w.opened[0]!.url).hash.slice(1)).get("nonce")!;
    w.deliver({ source: w.opened[0]!.win, origin: ORIGIN, data: answer(nonce, { answer: "no" }) });
    await tick();
    expect(q.state.answer).toBe(false);
  });

  it("a blocked window says so and links to the contributor page; nothing starts", async () => {
    installIoV1();
    const w = frameWindow();
    const q = await ask({ openWindow: () => null, messages: w.messages });
    q.start.trustedClick();
    await tick();
    expect(q.state.answer).toBe("pending");
    expect(q.problem().textContent).toMatch(/did not open.*Nothing started.*Tabgrid's own page/);
    const link = q.problem().children.find((c) => typeof c !== "string") as El;
    expect(link.href).toBe(`${ORIGIN}/`);
  });
});
