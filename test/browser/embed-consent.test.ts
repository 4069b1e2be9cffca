import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertPartitioned, launchWithDefaultStorage } from "../support/chrome-storage.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { routeTestEngine, startHostSite, type HostSite } from "../support/embed-harness.js";

/**
 * Consent for an embedded tab is a click inside the coordinator's own frame, with Chrome's default
 * (partitioned) third-party storage. A page on another site that frames /frame/ itself and posts
 * `start` gets the frame's question back, never a running contributor: no catalog read, no engine
 * Worker, no socket. A transparent frame laid over a decoy button does not count a click either.
 * The visitor's consent is remembered per host site, and withdrawing forgets it.
 */
const co = useCoordinator();
let server: TestServer;
let host: HostSite;
let evil: HostSite;
let browser: Browser;
let context: BrowserContext;
let coordinator = "";
const requests: string[] = [];

const hostPage = (origin: string) => `<!doctype html><html><head><title>A site</title></head>
<body><h1>Some site</h1>
<script>window.events = []; document.addEventListener("tabgrid:status", (e) => window.events.push(e.detail));</script>
<script src="${origin}/embed.js" async data-mode="contribute"></script></body></html>`;

/** A site that never shows the widget: it frames the coordinator directly, stealthily or not. */
const evilPage = (coordinatorOrigin: string, own: string, named: string) => `<!doctype html>
<html><body><h1>Free game</h1>
<button id="decoy" style="position:absolute;left:20px;top:80px;width:300px;height:150px">Play!</button>
<iframe id="direct" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(own)}"
  style="position:absolute;left:20px;top:80px;width:300px;height:150px;border:0;opacity:0"></iframe>
<iframe id="named" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(named)}" style="width:0;height:0;border:0"></iframe>
<script>window.statuses = { direct: [], named: [] };
addEventListener("message", (e) => {
  if (e.origin !== "${coordinatorOrigin}") return;
  for (const id of ["direct", "named"]) if (e.source === document.getElementById(id).contentWindow) window.statuses[id].push(e.data.phase);
});
function forgeStart() {
  for (const id of ["direct", "named"]) document.getElementById(id).contentWindow.postMessage({ tabgrid: 1, type: "start", models: [], gpuShare: 100 }, "${coordinatorOrigin}");
}</script></body></html>`;

beforeAll(async () => {
  server = co.server;
  coordinator = `http://localhost:${server.port}`;
  host = await startHostSite({ "/": hostPage(coordinator) });
  // Not the harness's shared browser: that one has Playwright's unpartitioned storage.
  browser = await launchWithDefaultStorage();
  context = await browser.newContext();
  await routeTestEngine(context, co.engine());
  context.on("request", (r) => requests.push(r.url()));
});

afterAll(async () => {
  await browser?.close();
  await host?.close();
  await evil?.close();
});

async function nodeCount(): Promise<number> {
  const res = await fetch(`${server.origin}/v1/nodes`);
  return ((await res.json()) as { data: unknown[] }).data.length;
}

const widgetState = (p: Page) => p.locator("[data-tabgrid-widget]").getAttribute("data-state");
const consentFrame = (p: Page) => p.frameLocator('iframe[title="Tabgrid consent"]');
const phases = (p: Page) =>
  p.evaluate(() =>
    (window as unknown as { events: { phase: string }[] }).events.map((e) => e.phase),
  );

describe("embed consent happens in the coordinator's frame", () => {
  let page: Page;

  it("runs with Chrome's default partitioned storage (not Playwright's default)", async () => {
    page = await context.newPage();
    await page.goto(`${host.origin}/`);
    await page.getByRole("button", { name: "Contribute", exact: true }).click();
    // The host's button only opens the frame; the question is the frame's own.
    await consentFrame(page).getByRole("button", { name: "Start contributing" }).waitFor();
    expect(await widgetState(page)).toBe("confirming");
    await assertPartitioned(page, coordinator);
    expect(await phases(page)).toEqual(["ready", "consent"]);
    expect(await nodeCount()).toBe(0);
    expect(requests.some((u) => u.includes("/v1/catalog"))).toBe(false);
  });

  it("the visitor's click in the frame starts contributing; a reload remembers it", async () => {
    const question = consentFrame(page).getByText(/see the prompts you serve/);
    expect(await question.isVisible()).toBe(true);
    await consentFrame(page).getByRole("button", { name: "Start contributing" }).click();
    await page.waitForFunction(() =>
      (window as unknown as { events: { phase: string; state: string | null }[] }).events.some(
        (e) => e.phase === "contributing" && e.state === "idle",
      ),
    );
    expect(await widgetState(page)).toBe("running");
    expect(await nodeCount()).toBe(1);

    await page.reload();
    await page.waitForFunction(() =>
      (window as unknown as { events: { phase: string }[] }).events.some(
        (e) => e.phase === "contributing",
      ),
    );
    expect(await phases(page)).not.toContain("consent");
  });

  it("a site that frames /frame/ itself and posts start gets the question, not a contributor", async () => {
    evil = await startHostSite((own) => ({ "/": evilPage(coordinator, own, host.origin) }));
    const attacker = await context.newPage();
    const sockets: string[] = [];
    attacker.on("websocket", (ws) => sockets.push(ws.url()));
    const before = requests.length;
    await attacker.goto(`${evil.origin}/`);
    type S = { statuses: { direct: string[]; named: string[] } };
    await attacker.waitForFunction(() =>
      (window as unknown as S).statuses.direct.includes("ready"),
    );
    await attacker.evaluate(() => (window as unknown as { forgeStart(): void }).forgeStart());
    await attacker.waitForFunction(() =>
      (window as unknown as S).statuses.direct.includes("consent"),
    );
    // A real click where the transparent frame's button sits (the decoy "Play!" button is under
    // it): the frame is not visible, so the click is not consent.
    const frame = attacker.frameLocator("#direct");
    const startButton = frame.getByRole("button", { name: "Start contributing" });
    // Never seen visible, so the button shows as disabled (a click could not count).
    expect(await startButton.getAttribute("aria-disabled")).toBe("true");
    await startButton.click({ force: true });
    await attacker.waitForTimeout(1500);
    const statuses = await attacker.evaluate(() => (window as unknown as S).statuses);
    expect(statuses.direct).toEqual(["ready", "consent"]);
    expect(await frame.getByRole("alert").innerText()).toMatch(/hidden or covered/);
    // The frame naming the real host (which consented above) is not that host: it says nothing.
    expect(statuses.named).toEqual([]);
    const after = requests.slice(before);
    expect(after.filter((u) => /\/v1\/catalog|engine-worker/.test(u))).toEqual([]);
    expect(sockets.filter((u) => u.includes("/v1/nodes/connect"))).toEqual([]);
    // Only the consenting host's tab is on the network.
    expect(await nodeCount()).toBe(1);
    await attacker.close();
  });

  it("withdrawing forgets the consent: contributing again asks in the frame again", async () => {
    await page.getByRole("button", { name: "Stop" }).click();
    await expect.poll(nodeCount).toBe(0);
    await expect.poll(() => widgetState(page)).toBe("declined");
    await page.getByRole("button", { name: "Tabgrid: contribute GPU?" }).click();
    await page.getByRole("button", { name: "Contribute", exact: true }).click();
    await consentFrame(page).getByRole("button", { name: "Start contributing" }).waitFor();
    expect(await widgetState(page)).toBe("confirming");
    expect(await nodeCount()).toBe(0);
  });
});
