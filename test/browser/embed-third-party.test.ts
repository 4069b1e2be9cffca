import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { routeTestEngine, startHostSite, type HostSite } from "../support/embed-harness.js";

/**
 * embed.js on a page from another origin (third-party context): the host page at
 * http://127.0.0.1:<port> has only the script tag pointing at the coordinator on
 * http://localhost:<port>. Nothing is requested before consent; consent opens the hidden frame
 * from the coordinator's origin, which runs the contributor runtime and answers a request made
 * through `window.Tabgrid` (api mode) from the same page; the choice is remembered; withdrawal
 * stops the runtime; postMessage from foreign origins is ignored both ways.
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
  ({ server, browser } = co);
  coordinator = `http://localhost:${server.port}`;
  host = await startHostSite({ "/": hostPage(coordinator) });
  context = await browser.newContext();
  await routeTestEngine(context, co.engine());
  context.on("request", (r) => requests.push(r.url()));
  page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[host page error] ${err.message}`));
});

afterAll(async () => {
  await host?.close();
});

const widget = (p: Page) => p.locator("[data-tabgrid-widget]");
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
    await expect.poll(nodeCount).toBe(1);
  });

  it("withdrawal in one click stops the runtime, and is remembered", async () => {
    await page.getByRole("button", { name: "Stop" }).click();
    expect(await frameCount(page)).toBe(0);
    await expect.poll(nodeCount).toBe(0);
    expect(await widget(page).getAttribute("data-state")).toBe("declined");
    requests.length = 0;
    await page.reload();
    await widget(page).and(page.locator('[data-state="declined"]')).waitFor({ state: "attached" });
    expect(requests).toEqual([`${host.origin}/`, `${coordinator}/embed.js`]);
  });

  it("the host page can stop contribution with Tabgrid.contributor.stop()", async () => {
    await page.getByRole("button", { name: "Tabgrid: contribute GPU?" }).click();
    await page.getByRole("button", { name: "Contribute" }).click();
    await expect.poll(nodeCount).toBe(1);
    await page.evaluate(() =>
      (
        window as unknown as { Tabgrid: { contributor: { stop(): void } } }
      ).Tabgrid.contributor.stop(),
    );
    expect(await frameCount(page)).toBe(0);
    await expect.poll(nodeCount).toBe(0);
  });

  it("the frame ignores start messages from a page that is not its named parent", async () => {
    // The evil site frames the coordinator twice: one frame names the real host site as its
    // parent (forged), the control names the evil site itself. Both get the same start message.
    const evilSite = await startHostSite((evilOrigin) => ({
      "/": evilPage(coordinator, host.origin, evilOrigin),
    }));
    const evil = await context.newPage();
    const sockets: string[] = [];
    evil.on("websocket", (ws) => sockets.push(ws.url()));
    await evil.goto(`${evilSite.origin}/`);
    type W = { statuses: Array<{ phase: string; state: string | null }> };
    await evil.waitForFunction(() =>
      (window as unknown as W).statuses.some((s) => s.phase === "ready"),
    );
    await evil.evaluate((origin) => {
      for (const id of ["forged", "control"]) {
        const frame = document.getElementById(id) as HTMLIFrameElement;
        frame.contentWindow?.postMessage(
          { tabgrid: 1, type: "start", models: [], gpuShare: 50 },
          origin,
        );
      }
    }, coordinator);
    await evil.waitForFunction(() =>
      (window as unknown as W).statuses.some(
        (s) => s.phase === "contributing" && s.state === "idle",
      ),
    );
    // Only the control frame runs.
    expect(await nodeCount()).toBe(1);
    expect(sockets.filter((u) => u.includes("/v1/nodes/connect"))).toHaveLength(1);
    await evil.close();
    await evilSite.close();
    await expect.poll(nodeCount).toBe(0);
  });
});
