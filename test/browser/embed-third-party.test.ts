import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertPartitioned, launchWithDefaultStorage } from "../support/chrome-storage.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { routeTestEngine, startHostSite, type HostSite } from "../support/embed-harness.js";

/**
 * How long a tab may take to register or leave after a click: expect.poll's own 1 s was too short
 * beside the real-engine file on CI's 2 cores (a tab registered after it: 1 failure in 2026-12-02's
 * run, 10 of 10 passing alone).
 */
const SETTLED = { timeout: 15_000 };

/**
 * embed.js on a page from another origin (third-party context): the host page at
 * http://127.0.0.1:<port> has only the script tag pointing at the coordinator on
 * http://localhost:<port>, with Chrome's default (partitioned) third-party storage. Nothing is
 * requested before the visitor asks; "Contribute" opens the coordinator's frame, whose own
 * "Start contributing" is the consent (test/browser/embed-consent.test.ts covers forgery); the
 * frame runs the contributor runtime and answers a request made through `window.Tabgrid` (api mode)
 * from the same page; the choice is remembered; withdrawal stops the runtime; postMessage from
 * foreign origins is ignored. Then the production engine path (no test engine) on the same kind of
 * page, up to the model download, which cannot succeed offline: the failure is reported as a
 * download failure, never as a storage failure, with the cache WebLLM was given.
 */
const co = useCoordinator();
let server: TestServer;
let host: HostSite;
let browser: Browser;
let context: BrowserContext;
let page: Page;
let coordinator = "";
const requests: string[] = [];

const hostPage = (origin: string) => `<!doctype html><html><head><title>A site</title>
<style>* { color: rgb(255, 0, 0) !important; } button { border-radius: 0 }</style></head>
<body><h1>Some site</h1><button id="own">site button</button>
<script>window.events = []; document.addEventListener("tabgrid:status", (e) => window.events.push({ ...e.detail, at: performance.now() }));</script>
<script src="${origin}/embed.js" async data-mode="both" data-gpu-share="50" data-position="bottom-left"></script>
</body></html>`;

const evilPage = (origin: string, good: string, evil: string) => `<!doctype html><html><body>
<iframe id="forged" src="${origin}/frame/#parent=${encodeURIComponent(good)}"></iframe>
<iframe id="control" src="${origin}/frame/#parent=${encodeURIComponent(evil)}"></iframe>
<script>window.statuses = []; addEventListener("message", (e) => { if (e.origin === "${origin}") window.statuses.push(e.data); });</script>
</body></html>`;

beforeAll(async () => {
  server = co.server;
  // Not the shared browser: that one runs with Playwright's unpartitioned third-party storage.
  browser = await launchWithDefaultStorage();
  coordinator = `http://localhost:${server.port}`;
  host = await startHostSite({ "/": hostPage(coordinator) });
  context = await browser.newContext();
  await routeTestEngine(context, co.engine());
  context.on("request", (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[host page error] ${err.message}`));
});

afterAll(async () => {
  await browser?.close();
  await host?.close();
});

const widget = (p: Page) => p.locator("[data-tabgrid-widget]");
/** The visitor's consent: a click in the coordinator's frame, which the widget shows. */
/** Click "Start contributing" once it counts: the whole question seen for 500 ms (consent.ts). */
async function confirmInFrame(p: Page): Promise<void> {
  const start = p
    .frameLocator('iframe[title="Tabgrid consent"]')
    .getByRole("button", { name: "Start contributing" });
  await expect.poll(() => start.getAttribute("aria-disabled"), { timeout: 10_000 }).toBeNull();
  await start.click();
}
const frameCount = (p: Page) => p.locator(`iframe[src^="${coordinator}/frame/"]`).count();

async function nodeCount(): Promise<number> {
  const res = await fetch(`${server.origin}/v1/nodes`);
  return ((await res.json()) as { data: unknown[] }).data.length;
}

describe("embed.js in a third-party page", () => {
  it("asks first, in a Shadow DOM, and requests nothing but embed.js before consent", async () => {
    await page.goto(`${host.origin}/`);
    await widget(page).and(page.locator('[data-state="asking"]')).waitFor({ state: "attached" });
    // Playwright's CSS engine reads into the (open) shadow root.
    const text = (await page.locator("[data-tabgrid-widget] p").allTextContents()).join(" ");
    expect(text).toMatch(/see the prompts you serve/);
    expect(requests).toEqual([`${host.origin}/`, `${coordinator}/embed.js`]);
    expect(await frameCount(page)).toBe(0);
    // Styles don't cross the shadow boundary either way.
    const inside = await page
      .locator("[data-tabgrid-widget] button", { hasText: "Contribute" })
      .evaluate((b) => getComputedStyle(b).borderRadius);
    expect(inside).toBe("6px");
    expect(await page.locator("#own").evaluate((b) => getComputedStyle(b).borderRadius)).toBe(
      "0px",
    );
  });

  it("consent opens the coordinator's frame, which contributes and answers via window.Tabgrid", async () => {
    await page.getByRole("button", { name: "Contribute" }).click();
    await confirmInFrame(page);
    await assertPartitioned(page, coordinator);
    await page.waitForFunction(() =>
      (window as unknown as { events: Array<{ phase: string; state: string | null }> }).events.some(
        (e) => e.phase === "contributing" && e.state === "idle",
      ),
    );
    expect(await frameCount(page)).toBe(1);
    expect(await nodeCount()).toBe(1);
    const model = await page.evaluate(
      () => (window as unknown as { events: Array<{ model: string | null }> }).events.at(-1)?.model,
    );
    const content = "hello from a third party page";
    const answer = await page.evaluate(
      async ({ model, content }) => {
        const T = (window as unknown as { Tabgrid: { client(): any } }).Tabgrid;
        const res = await T.client().chat.completions.create({
          model,
          messages: [{ role: "user", content }],
        });
        return res.choices[0].message.content as string;
      },
      { model, content },
    );
    expect(answer).toBe(
      expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, { max_tokens: 256 })
        .text,
    );
    expect(await widget(page).getAttribute("data-state")).toBe("running");
  });

  it("data-gpu-share=50: the frame rests as long as a job took before it takes the next", async () => {
    type Ev = { state: string | null; model: string | null; at: number };
    const from = await page.evaluate(() => (window as unknown as { events: Ev[] }).events.length);
    const model = await page.evaluate(
      () => (window as unknown as { events: Ev[] }).events.at(-1)?.model,
    );
    // Two requests at once: the second waits in the coordinator's queue while the tab serves the
    // first and then rests; long enough answers (~60 tokens) that the rest is well above jitter.
    const prompts = [0, 1].map((n) => Array.from({ length: 60 }, (_, i) => `j${n}w${i}`).join(" "));
    const answers = await page.evaluate(
      async ({ model, prompts }) => {
        const T = (window as unknown as { Tabgrid: { client(): any } }).Tabgrid;
        const client = T.client();
        return Promise.all(
          prompts.map(async (content) => {
            const res = await client.chat.completions.create({
              model,
              messages: [{ role: "user", content }],
            });
            return res.choices[0].message.content as string;
          }),
        );
      },
      { model, prompts },
    );
    expect(answers.toSorted()).toEqual(
      prompts
        .map(
          (content) =>
            expectedOutput(
              { kind: "chat", messages: [{ role: "user", content }] },
              { max_tokens: 256 },
            ).text,
        )
        .toSorted(),
    );
    // The rest after the second job ends too: the tab is idle again once it is over.
    await page.waitForFunction(
      (from) => (window as unknown as { events: Ev[] }).events.slice(from).at(-1)?.state === "idle",
      from,
    );
    const events = await page.evaluate(
      (from) => (window as unknown as { events: Ev[] }).events.slice(from),
      from,
    );
    // State changes only: busy (job 1) → paused (resting) → idle → busy (job 2) → paused → idle.
    const changes = events.filter((e, i) => i === 0 || e.state !== events[i - 1]!.state);
    const busy = changes.flatMap((e, i) => (e.state === "busy" ? [i] : []));
    expect(busy.length).toBe(2);
    const [b1, b2] = busy as [number, number];
    const jobMs = changes[b1 + 1]!.at - changes[b1]!.at;
    expect(changes.slice(b1 + 1, b2).map((e) => e.state)).toEqual(["paused", "idle"]);
    const restMs = changes[b2]!.at - changes[b1 + 1]!.at;
    // Rest = job time · (1 − 0.5) / 0.5; the frame measures the job on its own clock, so allow
    // for the postMessage hops either side.
    expect(jobMs).toBeGreaterThan(300);
    expect(restMs).toBeGreaterThan(jobMs * 0.8);
  });

  it("ignores status messages from any origin but the coordinator's", async () => {
    const seen = await page.evaluate(async () => {
      const w = window as unknown as { events: unknown[] };
      const before = w.events.length;
      const forged = {
        tabgrid: 1,
        type: "status",
        phase: "failed",
        state: null,
        connection: null,
        model: null,
        jobsServed: 0,
        progress: null,
        detail: "forged",
      };
      window.postMessage(forged, "*");
      // Messages are delivered in order: once the marker arrives, the forged one was handled.
      await new Promise<void>((resolve) => {
        addEventListener("message", function marker(e) {
          if (e.data === "marker") {
            removeEventListener("message", marker);
            resolve();
          }
        });
        window.postMessage("marker", "*");
      });
      return w.events.length - before;
    });
    expect(seen).toBe(0);
  });

  it("remembers the choice per site: a reload contributes without asking", async () => {
    await page.reload();
    await widget(page).and(page.locator('[data-state="running"]')).waitFor({ state: "attached" });
    await page.waitForFunction(() =>
      (window as unknown as { events: Array<{ phase: string }> }).events.some(
        (e) => e.phase === "contributing",
      ),
    );
    await expect.poll(nodeCount, SETTLED).toBe(1);
  });

  it("withdrawal in one click stops the runtime, and is remembered", async () => {
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(() => frameCount(page), SETTLED).toBe(0);
    await expect.poll(nodeCount, SETTLED).toBe(0);
    expect(await widget(page).getAttribute("data-state")).toBe("declined");
    requests.length = 0;
    await page.reload();
    await widget(page).and(page.locator('[data-state="declined"]')).waitFor({ state: "attached" });
    expect(requests).toEqual([`${host.origin}/`, `${coordinator}/embed.js`]);
  });

  it("the host page can stop contribution with Tabgrid.contributor.stop()", async () => {
    await page.getByRole("button", { name: "Tabgrid: contribute GPU?" }).click();
    await page.getByRole("button", { name: "Contribute" }).click();
    // Withdrawal made the frame forget the consent: it asks again.
    await confirmInFrame(page);
    await expect.poll(nodeCount, SETTLED).toBe(1);
    await page.evaluate(() =>
      (
        window as unknown as { Tabgrid: { contributor: { stop(): void } } }
      ).Tabgrid.contributor.stop(),
    );
    expect(await frameCount(page)).toBe(0);
    await expect.poll(nodeCount, SETTLED).toBe(0);
  });
});

describe("embed.js on another site: the production engine up to the model download", () => {
  /** A fresh browser context without the test engine, consent given in the frame. */
  async function loadWithProductionEngine(
    b: Browser,
    workerPrefix?: string,
  ): Promise<{ page: Page; detail: string; text: string }> {
    const ctx = await b.newContext();
    if (workerPrefix) {
      // The real engine Worker bundle, with the browser's Cache API refusing as it does in
      // restricted third-party frames (everything after the prefix is the production code).
      await ctx.route("**/assets/engine-worker*.js", async (route) => {
        const res = await route.fetch();
        route.fulfill({ response: res, body: workerPrefix + (await res.text()) });
      });
    }
    const p = await ctx.newPage();
    await p.goto(`${host.origin}/`);
    await p.getByRole("button", { name: "Contribute" }).click();
    await confirmInFrame(p);
    type Ev = { phase: string; detail: string | null };
    await p.waitForFunction(
      () => (window as unknown as { events: Ev[] }).events.some((e) => e.phase === "failed"),
      undefined,
      { timeout: 120_000 },
    );
    const events = await p.evaluate(() => (window as unknown as { events: Ev[] }).events);
    expect(events.map((e) => e.phase)).toContain("loading");
    const detail = events.find((e) => e.phase === "failed")?.detail ?? "";
    console.info(`[embed] the frame reported: ${detail}`);
    // What the visitor reads in the widget.
    const text = (await p.locator("[data-tabgrid-widget] p").allTextContents()).join(" ");
    return { page: p, detail, text };
  }

  it("with partitioned storage: the Cache API is used, and the offline download is blamed", async () => {
    const { page: p, detail, text } = await loadWithProductionEngine(browser);
    expect(detail).toMatch(
      /^load_failed: could not download the model's files \(network or model host unavailable\) \(model cache: Cache API\)/,
    );
    expect(detail).not.toMatch(/store the model's files|SecurityError/);
    expect(text).toContain("could not download the model's files");
    // The visitor can try again without reloading.
    expect(await widget(p).getAttribute("data-state")).toBe("failed");
    expect(await p.getByRole("button", { name: "Try again" }).isVisible()).toBe(true);
    await p.context().close();
  }, 180_000);

  it("where the Cache API is refused: WebLLM's IndexedDB cache is chosen, and the download is blamed", async () => {
    const refuse = `globalThis.caches.open = () => Promise.reject(new DOMException("Failed to execute 'open' on 'CacheStorage': An attempt was made to break through the security policy of the user agent.", "SecurityError"));\n`;
    const { page: p, detail } = await loadWithProductionEngine(browser, refuse);
    expect(detail).toMatch(
      /^load_failed: could not download the model's files \(network or model host unavailable\) \(model cache: IndexedDB, because the Cache API is refused here \(SecurityError/,
    );
    await p.context().close();
  }, 180_000);

  it("with Playwright's unpartitioned third-party storage (all storage refused): a storage failure, not a network one", async () => {
    // The harness's shared browser keeps Playwright's default (partitioning off).
    const { page: p, detail } = await loadWithProductionEngine(co.browser);
    expect(detail).toMatch(
      /^load_failed: this browser does not let the tab store the model's files here/,
    );
    expect(detail).not.toMatch(/could not download|network/);
    await p.context().close();
  }, 180_000);
});
