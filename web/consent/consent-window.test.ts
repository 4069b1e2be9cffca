import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { FakeElement, installFakeDocument } from "../../test/support/fake-dom.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { DWELL_MS } from "../frame/visibility.js";
import { confirmInWindow, TOO_SOON_TEXT, type WindowEnv } from "./consent-window.js";

/**
 * The consent window a frame opens where it cannot see its own visibility: it answers only the
 * frame that opened it, only after being in front of the visitor for DWELL_MS (a double click on
 * a host page cannot land its second click here), and never inside a frame.
 */
/** The fake DOM element (test/support/fake-dom.ts), as this file names it. */
const El = FakeElement;
type El = FakeElement;

const ORIGIN = "https://coordinator.example";
const NONCE = "0b0e1c7e-4f4a-4d7e-9b1e-2c3d4e5f6a7b";
const hash = `#host=${encodeURIComponent("https://host.example")}&share=60&nonce=${NONCE}`;
let uninstall = () => {};
beforeEach(() => {
  uninstall = installFakeDocument();
  (globalThis as { document: { createElement: unknown } }).document.createElement = (t: string) =>
    new El(t);
});
afterEach(() => uninstall());

function open(over: Partial<WindowEnv> = {}) {
  const root = new El("main");
  const posted: { msg: unknown; target: string }[] = [];
  const timers = new ManualTimers();
  let attentive = true;
  let listener = () => {};
  let closed = false;
  confirmInWindow(root as unknown as HTMLElement, {
    hash,
    origin: ORIGIN,
    framed: false,
    opener: {
      postMessage: (msg: unknown, target: string) => posted.push({ msg, target }),
    } as never,
    timers,
    attentive: () => attentive,
    onAttention: (l) => (listener = l),
    close: () => (closed = true),
    ...over,
  });
  return {
    root,
    posted,
    timers,
    closed: () => closed,
    setAttentive(a: boolean) {
      attentive = a;
      listener();
    },
  };
}

describe("the consent window", () => {
  it("names the site and the share, and answers the opener only after DWELL_MS in front", () => {
    const w = open();
    expect(w.root.textContent).toMatch(/Tabgrid on host\.example: .*up to 60 % of the time/);
    const start = w.root.button("Start contributing")!;
    expect(start.getAttribute("aria-disabled")).toBe("true");
    // The second click of a double click on the host page lands here at once: not counted.
    start.trustedClick();
    expect(w.posted).toEqual([]);
    expect(w.root.textContent).toContain(TOO_SOON_TEXT);
    // Losing focus restarts the wait.
    w.timers.advance(DWELL_MS - 100);
    w.setAttentive(false);
    w.setAttentive(true);
    w.timers.advance(DWELL_MS - 1);
    start.trustedClick();
    expect(w.posted).toEqual([]);
    w.timers.advance(1);
    expect(start.getAttribute("aria-disabled")).toBeNull();
    start.trustedClick();
    expect(w.posted).toEqual([
      {
        msg: {
          tabgrid: 1,
          type: "consent",
          nonce: NONCE,
          host: "https://host.example",
          share: 60,
          answer: "yes",
        },
        target: ORIGIN,
      },
    ]);
    expect(w.closed()).toBe(true);
  });

  it("'No thanks' answers no", () => {
    const w = open();
    w.root.button("No thanks")!.trustedClick();
    expect(w.posted.map((p) => (p.msg as { answer: string }).answer)).toEqual(["no"]);
  });

  it("inside a frame, or not opened by a frame, it asks nothing", () => {
    for (const over of [{ framed: true }, { opener: null }, { hash: "#host=nonsense" }]) {
      const w = open(over);
      expect(w.root.button("Start contributing"), JSON.stringify(over)).toBeNull();
    }
  });
});
