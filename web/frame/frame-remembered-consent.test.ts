import { afterAll, beforeEach, describe, expect, it, vi } from "vitest";
import { FakeElement } from "../../test/support/fake-dom.js";
import { DWELL_MS } from "./visibility.js";

/**
 * Once the visitor consented on a site, the contributor keeps control when that site's page is
 * the untrusted party (from the embed audit). The host page may frame /frame/ itself, 0×0, with no
 * widget, and post `start` with any `gpuShare`: the frame runs at no more than the share the
 * visitor agreed to (the question names it and it is stored with the consent), and shows a notice
 * of its own with Stop, which the host page cannot remove; where the browser can tell
 * (IntersectionObserver v2), it takes no job while that notice is not in front of the visitor.
 */
const HOST = "https://host.example";
const started: { settings: { gpuShare: number } }[] = [];
const unseen: boolean[] = [];
let disposed = 0;

vi.mock("../gpu/detect-gpu.js", () => ({
  detectGpu: async () => ({ ok: true, gpu: { vendor: "v", architecture: "a" } }),
  adapterInfo: () => ({ vendor: "v", architecture: "a", device: "", description: "" }),
}));
vi.mock("../runtime/catalog-client.js", () => ({ fetchCatalog: async () => [] }));
vi.mock("./choose-model.js", () => ({
  chooseEmbedModel: () => ({
    model_id: "SmolLM2-360M-Instruct-q4f32_1-MLC",
    vram_required_MB: 400,
  }),
}));
vi.mock("../runtime/start-contributing.js", () => ({
  startContributing: (opts: { settings: { gpuShare: number } }) => {
    started.push(opts);
    return {
      controller: { setUnseen: (u: boolean) => unseen.push(u), view: { headline: null } },
      start: async () => {},
      stop() {},
      dispose: () => disposed++,
    };
  },
}));

/** The fake DOM element (test/support/fake-dom.ts), as this file names it. */
const El = FakeElement;
type El = FakeElement;

const g = globalThis as Record<string, unknown>;
const saved = [
  "location",
  "window",
  "addEventListener",
  "document",
  "localStorage",
  "IntersectionObserver",
  "IntersectionObserverEntry",
].map((k) => [k, g[k]] as const);
afterAll(() => {
  for (const [k, v] of saved)
    if (v === undefined) delete g[k];
    else g[k] = v;
});

/** A fresh frame (frame-main.ts) under a host page, with what its storage holds. */
async function boot(stored: Record<string, string>) {
  const store = new Map(Object.entries(stored));
  const listeners: ((e: unknown) => void)[] = [];
  const toParent: { phase: string }[] = [];
  const parent = { postMessage: (m: { phase: string }) => toParent.push(m) };
  const panel = new El("main");
  panel.hidden = true;
  g.location = {
    hash: `#parent=${encodeURIComponent(HOST)}`,
    origin: "https://coordinator.example",
    href: "https://coordinator.example/frame/",
    ancestorOrigins: [HOST],
  };
  g.window = { parent };
  g.addEventListener = (type: string, l: (e: unknown) => void) => {
    if (type === "message") listeners.push(l);
  };
  g.document = { getElementById: () => panel, createElement: (t: string) => new El(t) };
  g.localStorage = {
    getItem: (k: string) => store.get(k) ?? null,
    setItem: (k: string, v: string) => store.set(k, v),
    removeItem: (k: string) => store.delete(k),
  };
  vi.resetModules();
  await import("./frame-main.js");
  const phases = () => toParent.map((s) => s.phase);
  return {
    store,
    panel,
    phases,
    /** The host page (no widget) asks the frame to start. */
    async start(gpuShare: number) {
      const msg = { tabgrid: 1, type: "start", models: [], gpuShare };
      for (const l of listeners) l({ source: parent, origin: HOST, data: msg });
      await vi.waitFor(() => expect(phases().some((p) => p !== "ready")).toBe(true));
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

beforeEach(() => {
  started.length = 0;
  unseen.length = 0;
  disposed = 0;
  delete g.IntersectionObserver;
  delete g.IntersectionObserverEntry;
});

const KEY = `tabgrid.frame.consent:${HOST}`;

describe("an embedded contributor after consent on an earlier visit", () => {
  it("a host page that shows no widget cannot run the GPU with nothing the visitor can see or stop", async () => {
    const frame = await boot({ [KEY]: "share:100" }); // consented at 100 % on an earlier visit
    // The host frames /frame/ 0×0 itself (no widget, no Stop) and asks for the full GPU.
    await frame.start(100);
    expect(frame.phases()).toContain("loading");
    // It starts without asking, at the share the visitor agreed to.
    expect(frame.phases()).not.toContain("consent");
    expect(started[0]?.settings.gpuShare).toBe(1);
    // What the contributor needs: something of the frame's own on screen (a running notice with
    // Stop) while the GPU works, which the host page cannot remove.
    expect(frame.panel.hidden, "the frame shows the visitor that it runs").toBe(false);
    expect(frame.panel.textContent).toMatch(/using this tab's GPU for host\.example \(up to 100 %/);

    // Its Stop withdraws: the runtime ends, the consent is forgotten, the widget hears "declined".
    frame.panel.button("Stop")!.trustedClick();
    expect(disposed).toBe(1);
    expect(frame.store.has(KEY)).toBe(false);
    expect(frame.phases().at(-1)).toBe("declined");
    expect(frame.panel.hidden).toBe(true);
  });

  it("a host asking for more GPU than the visitor agreed to gets the agreed share; less is allowed", async () => {
    const more = await boot({ [KEY]: "share:50" });
    await more.start(100);
    expect(started[0]?.settings.gpuShare).toBe(0.5);
    const less = await boot({ [KEY]: "share:50" });
    await less.start(20);
    expect(started[1]?.settings.gpuShare).toBe(0.2);
  });

  it("a consent stored before the question named a share is asked again, naming it", async () => {
    const frame = await boot({ [KEY]: "yes" });
    await frame.start(70);
    expect(frame.phases()).toEqual(["ready", "consent"]);
    expect(started).toHaveLength(0);
    expect(frame.panel.textContent).toMatch(/up to 70 % of the time/);
  });

  it("with IntersectionObserver v2, no job while the notice is hidden; jobs again once it is seen", async () => {
    const report: { cb: ((e: unknown[]) => void) | null } = { cb: null };
    class Entry {}
    Object.defineProperty(Entry.prototype, "isVisible", { get: () => false });
    g.IntersectionObserverEntry = Entry;
    g.IntersectionObserver = class {
      constructor(cb: (e: unknown[]) => void) {
        report.cb = cb;
      }
      observe() {}
      disconnect() {}
    };
    const frame = await boot({ [KEY]: "share:100" });
    await frame.start(100);
    vi.useFakeTimers({ toFake: ["setTimeout", "clearTimeout", "performance"] });
    try {
      // 0×0 frame: v2 says not visible.
      report.cb!([{ isVisible: false, intersectionRatio: 0 }]);
      expect(unseen.at(-1)).toBe(true);
      // Shown whole: still held until it has been so for DWELL_MS.
      report.cb!([{ isVisible: true, intersectionRatio: 1 }]);
      expect(unseen.at(-1)).toBe(true);
      vi.advanceTimersByTime(DWELL_MS);
      expect(unseen.at(-1)).toBe(false);
      // Clipped to a sliver: held again.
      report.cb!([{ isVisible: true, intersectionRatio: 0.2 }]);
      expect(unseen.at(-1)).toBe(true);
    } finally {
      vi.useRealTimers();
    }
  });
});
