import type { Browser, BrowserContext, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assertPartitioned, launchWithDefaultStorage } from "../support/chrome-storage.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { routeTestEngine, startHostSite, type HostSite } from "../support/embed-harness.js";

/**
 * Consent for an embedded tab is a click inside the coordinator's own frame, with Chrome's default
 * (partitioned) third-party storage. A page on another site that frames /frame/ itself and posts
 * `start` gets the frame's question back, never a running contributor: no catalog read, no engine
 * Worker, no socket. A transparent frame laid over a decoy button does not count a click either,
 * nor a frame clipped so that only the button row shows. The visitor's consent is remembered per
 * host site, and withdrawing forgets it; while it runs the frame shows its own notice with Stop,
 * and a page of that site that frames /frame/ 0×0 without the widget gets a tab that takes no job.
 * The coordinator's own pages refuse to be framed by other sites; /frame/ does not.
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

/** A page of the consenting site without the widget: it frames /frame/ 0×0 and asks for 100 %. */
const barePage = (coordinatorOrigin: string, own: string) => `<!doctype html>
<html><body><h1>Same site, no widget</h1>
<iframe id="bare" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(own)}" style="width:0;height:0;border:0"></iframe>
<script>window.statuses = [];
addEventListener("message", (e) => {
  const frame = document.getElementById("bare").contentWindow;
  if (e.origin !== "${coordinatorOrigin}" || e.source !== frame) return;
  window.statuses.push(e.data);
  if (e.data.phase === "ready") frame.postMessage({ tabgrid: 1, type: "start", models: [], gpuShare: 100 }, "${coordinatorOrigin}");
});</script></body></html>`;

/** A site that never shows the widget: it frames the coordinator directly, stealthily or not. */
const evilPage = (coordinatorOrigin: string, own: string, named: string) => `<!doctype html>
<html><body><h1>Free game</h1>
<button id="decoy" style="position:absolute;left:20px;top:80px;width:300px;height:150px">Play!</button>
<iframe id="direct" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(own)}"
  style="position:absolute;left:20px;top:80px;width:300px;height:150px;border:0;opacity:0"></iframe>
<iframe id="named" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(named)}" style="width:0;height:0;border:0"></iframe>
<div id="clipbox" style="position:absolute;left:20px;top:300px;width:300px;height:30px;overflow:hidden">
<iframe id="clip" src="${coordinatorOrigin}/frame/#parent=${encodeURIComponent(own)}"
  style="position:relative;top:0;width:300px;height:260px;border:0"></iframe></div>
<script>window.statuses = { direct: [], named: [], clip: [] };
addEventListener("message", (e) => {
  if (e.origin !== "${coordinatorOrigin}") return;
  for (const id of ["direct", "named", "clip"]) if (e.source === document.getElementById(id).contentWindow) window.statuses[id].push(e.data.phase);
});
function forgeStart() {
  for (const id of ["direct", "named", "clip"]) document.getElementById(id).contentWindow.postMessage({ tabgrid: 1, type: "start", models: [], gpuShare: 100 }, "${coordinatorOrigin}");
}</script></body></html>`;

beforeAll(async () => {
  server = co.server;
  coordinator = `http://localhost:${server.port}`;
  host = await startHostSite((own) => ({
    "/": hostPage(coordinator),
    "/bare": barePage(coordinator, own),
  }));
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

/** Phases in order, a repeat of the same phase (a new height, new progress) counted once. */
const phaseSteps = (list: string[]) => list.filter((p, i) => p !== list[i - 1]);

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

  it("the coordinator's pages refuse framing by other sites; /frame/ is frameable (dist/_headers)", async () => {
    for (const path of ["/", "/status/", "/consent/"]) {
      const res = await fetch(`${server.origin}${path}`);
      expect(res.headers.get("x-frame-options"), path).toBe("SAMEORIGIN");
      expect(res.headers.get("content-security-policy"), path).toBe("frame-ancestors 'self'");
    }
    const frame = await fetch(`${server.origin}/frame/`);
    expect(frame.headers.get("x-frame-options")).toBeNull();
    expect(frame.headers.get("content-security-policy")).toBe("frame-ancestors *");
  });

  it("the visitor's click in the frame starts contributing; a reload remembers it", async () => {
    const question = consentFrame(page).getByText(/see the prompts you serve/);
    expect(await question.isVisible()).toBe(true);
    expect(
      await consentFrame(page)
        .getByText(/up to 50 % of the time/)
        .isVisible(),
    ).toBe(true);
    const start = consentFrame(page).getByRole("button", { name: "Start contributing" });
    // Enabled once the whole question has been visible for half a second.
    await expect.poll(() => start.getAttribute("aria-disabled")).toBeNull();
    await start.click();
    await page.waitForFunction(() =>
      (window as unknown as { events: { phase: string; state: string | null }[] }).events.some(
        (e) => e.phase === "contributing" && e.state === "idle",
      ),
    );
    expect(await widgetState(page)).toBe("running");
    expect(await nodeCount()).toBe(1);
    // The frame's own notice with Stop is on screen (state "idle" above: it was seen, so the tab
    // takes jobs).
    const notice = consentFrame(page).getByText(/using this tab's GPU for 127\.0\.0\.1/);
    expect(await notice.isVisible()).toBe(true);
    expect(await consentFrame(page).getByRole("button", { name: "Stop" }).isVisible()).toBe(true);

    await page.reload();
    await page.waitForFunction(() =>
      (window as unknown as { events: { phase: string }[] }).events.some(
        (e) => e.phase === "contributing",
      ),
    );
    expect(await phases(page)).not.toContain("consent");
  });

  it("a page of the consenting site that frames /frame/ 0×0 without the widget gets a tab that takes no job", async () => {
    const bare = await context.newPage();
    await bare.goto(`${host.origin}/bare`);
    type S = { statuses: { phase: string; state: string | null }[] };
    // Consent is remembered for this site, so it starts without asking; but its notice is not
    // visible (0×0), so the tab connects paused.
    await bare.waitForFunction(() =>
      (window as unknown as S).statuses.some(
        (s) => s.phase === "contributing" && s.state === "paused",
      ),
    );
    const statuses = await bare.evaluate(() => (window as unknown as S).statuses);
    expect(statuses.map((s) => s.phase)).not.toContain("consent");
    expect(statuses.some((s) => s.state === "idle" || s.state === "busy")).toBe(false);
    await bare.close();
    await expect.poll(nodeCount).toBe(1);
  });

  it("a site that frames /frame/ itself and posts start gets the question, not a contributor", async () => {
    evil = await startHostSite((own) => ({ "/": evilPage(coordinator, own, host.origin) }));
    const attacker = await context.newPage();
    const sockets: string[] = [];
    attacker.on("websocket", (ws) => sockets.push(ws.url()));
    const before = requests.length;
    await attacker.goto(`${evil.origin}/`);
    type S = { statuses: { direct: string[]; named: string[]; clip: string[] } };
    await attacker.waitForFunction(() =>
      (window as unknown as S).statuses.direct.includes("ready"),
    );
    await attacker.evaluate(() => (window as unknown as { forgeStart(): void }).forgeStart());
    await attacker.waitForFunction(
      () =>
        (window as unknown as S).statuses.direct.includes("consent") &&
        (window as unknown as S).statuses.clip.includes("consent"),
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
    // (A status repeats when only the frame's height changed: its message below the question.)
    expect(phaseSteps(statuses.direct)).toEqual(["ready", "consent"]);
    expect(await frame.getByRole("alert").innerText()).toMatch(/hidden or covered/);
    // The frame naming the real host (which consented above) is not that host: it says nothing.
    expect(statuses.named).toEqual([]);

    // A frame clipped so that only its button row shows (no opacity, nothing on top): a real click
    // on that button is not consent either, since the question above it is hidden.
    const clip = attacker.frameLocator("#clip");
    const clipButton = clip.getByRole("button", { name: "Start contributing" });
    const r = await clipButton.evaluate((el) => {
      const b = el.getBoundingClientRect();
      return { top: b.top, left: b.left, width: b.width, height: b.height };
    });
    await attacker.evaluate((r) => {
      document.getElementById("clip")!.style.top = `${-(r.top - 2)}px`;
      document.getElementById("clipbox")!.style.height = `${r.height + 4}px`;
    }, r);
    const box = (await attacker.locator("#clipbox").boundingBox())!;
    await attacker.mouse.click(box.x + r.left + r.width / 2, box.y + 2 + r.height / 2);
    await expect.poll(() => clip.getByRole("alert").innerText()).toMatch(/hidden or covered/);
    expect(await clipButton.getAttribute("aria-disabled")).toBe("true");
    const clipped = (await attacker.evaluate(() => (window as unknown as S).statuses)).clip;
    expect(phaseSteps(clipped)).toEqual(["ready", "consent"]);
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
