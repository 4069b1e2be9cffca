import { mkdirSync } from "node:fs";
import { resolve } from "node:path";
import type { BrowserContext, Page } from "playwright-core";
import WebSocket from "ws";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { useCoordinator } from "../support/coordinator.js";
import { openFrameTab, routeTestEngine } from "../support/embed-harness.js";
import { ProtocolTab } from "../support/protocol-tab.js";

/**
 * The public status page (/status) against the real coordinator: a real contributor tab (the
 * headless frame with the deterministic engine; it sends no location, so it counts at its
 * region's centre, San Jose) and a simulated tab in Sydney (the protocol tab over Node's `ws`,
 * placed with the development location query) that serves one request. The page must show a dot
 * for each place, both in the per-model table, the served request in the per-region table, and
 * stay readable at phone (390 px) and desktop (1280 px) widths. Screenshots go to test-results/.
 */

const co = useCoordinator();
const ARTIFACTS = resolve(import.meta.dirname, "../../test-results");
const SYDNEY = { lat: -33.87, lon: 151.21 };
const SIM_MODEL = "status-sim-model";

let ctx: BrowserContext;
let sim: ProtocolTab;
let ws: WebSocket;
let frameModel = "";
let places: Array<{ lat: number; lon: number }> = [];

/** The frame tab's place: the one that is not Sydney's. */
function framePlace(): { lat: number; lon: number } {
  const place = places.find((p) => !(p.lat === -34 && p.lon === 151));
  expect(place).toBeDefined();
  return place!;
}

async function connectSimTab(port: number): Promise<ProtocolTab> {
  ws = new WebSocket(`ws://127.0.0.1:${port}/v1/nodes/connect?loc=${SYDNEY.lat},${SYDNEY.lon}`);
  const tab = new ProtocolTab({
    send: (text) => ws.send(text),
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    get readyState() {
      return ws.readyState;
    },
  });
  ws.on("message", (data: Buffer) => tab.receive(data.toString()));
  ws.on("close", (code: number, reason: Buffer) => tab.socketClosed(code, reason.toString()));
  await new Promise((ok, fail) => (ws.once("open", ok), ws.once("error", fail)));
  await tab.handshake({ models: [SIM_MODEL], agent: "status-test/1" });
  tab.startPinging(Math.max(1000, tab.statusIntervalMs / 2));
  return tab;
}

beforeAll(async () => {
  const { server, browser } = co;
  ctx = await browser.newContext();
  await routeTestEngine(ctx, co.engine());
  const coordinator = `http://localhost:${server.port}`;
  await openFrameTab(ctx, coordinator, { withMedia: false });
  sim = await connectSimTab(server.port);
  // One request from Sydney, served by the simulated tab: 300 ms to its first text.
  const resP = fetch(`${server.origin}/v1/chat/completions`, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "x-tabgrid-location": `${SYDNEY.lat},${SYDNEY.lon}`,
    },
    body: JSON.stringify({ model: SIM_MODEL, messages: [{ role: "user", content: "hi" }] }),
  });
  const job = await sim.nextJob();
  sim.accept(job);
  await new Promise((r) => setTimeout(r, 300));
  sim.delta(job, 0, "hello from Sydney");
  sim.done(job, "stop", { completion_tokens: 4 });
  expect((await resP).status).toBe(200);
  const models = (await (await fetch(`${server.origin}/v1/models`)).json()) as {
    data: Array<{ id: string }>;
  };
  frameModel = models.data.map((m) => m.id).find((id) => id !== SIM_MODEL) ?? "";
  expect(frameModel).not.toBe("");
  // Both tabs have reported to the Directory (regions report within a second of a change).
  for (const end = Date.now() + 15_000; places.length < 2 && Date.now() < end;) {
    const res = await fetch(`${server.origin}/v1/status`);
    places = ((await res.json()) as { places: typeof places }).places;
    if (places.length < 2) await new Promise((r) => setTimeout(r, 250));
  }
  mkdirSync(ARTIFACTS, { recursive: true });
});

afterAll(() => {
  sim?.stopPinging();
  ws?.close();
});

async function openStatus(width: number): Promise<Page> {
  const page = await ctx.newPage();
  page.on("pageerror", (err) => console.error(`[status page error] ${err.message}`));
  await page.setViewportSize({ width, height: 900 });
  await page.goto(`http://localhost:${co.server.port}/status?poll-ms=500`);
  return page;
}

describe("the status page", () => {
  for (const width of [390, 1280]) {
    it(`shows the map, a dot per place and the tables at ${width} px`, async () => {
      const page = await openStatus(width);
      // The world is drawn from world-atlas (a land path with real geometry).
      const land = await page.locator("#map path.land").getAttribute("d");
      expect(land?.length ?? 0).toBeGreaterThan(10_000);
      // Sydney's tab at its 1° cell; the frame tab wherever the coordinator placed it (locally,
      // wrangler's placeholder location, or its region's centre), as the API says.
      const sydney = page.locator('#map circle.place[data-lat="-34"][data-lon="151"]');
      await sydney.waitFor({ timeout: 15_000 });
      const frame = framePlace();
      await page
        .locator(`#map circle.place[data-lat="${frame.lat}"][data-lon="${frame.lon}"]`)
        .waitFor({ timeout: 15_000 });
      // The page polls the API: each figure below is awaited until the page has drawn it.
      await expect
        .poll(() => page.locator("#map circle.place").count(), { timeout: 15_000 })
        .toBe(2);
      expect(await sydney.getAttribute("class")).toMatch(/state-(idle|busy)/);
      // The text alternative names the places.
      await expect
        .poll(() => page.locator("#places-list").textContent(), { timeout: 15_000 })
        .toContain("Australia (34°S 151°E): 1 tab");
      const places = await page.locator("#places-list").textContent();
      expect(places?.split("tab").length).toBeGreaterThanOrEqual(3);

      const models = page.locator("#models-table tbody");
      await expect.poll(() => models.textContent(), { timeout: 15_000 }).toContain(SIM_MODEL);
      expect(await models.textContent()).toContain(frameModel);
      const simRow = page.locator("#models-table tbody tr", { hasText: SIM_MODEL });
      // Tabs, idle, queued, wait, tokens/s: one tab, idle, nothing waiting, tokens/s measured.
      const cells = () => simRow.locator("td").allTextContents();
      await expect
        .poll(async () => (await cells()).slice(0, 4), { timeout: 15_000 })
        .toEqual(["1", "1", "0", "none"]);
      await expect
        .poll(async () => Number((await cells())[4]), { timeout: 15_000 })
        .toBeGreaterThan(0);

      const oc = page.locator("#regions-table tbody tr", { hasText: "oc" });
      await expect.poll(() => oc.locator("td").nth(3).textContent(), { timeout: 15_000 }).toBe("1");
      // TTFT p50 / p95 / p99 for the one request that waited ~300 ms for its first text.
      expect(await oc.locator("td").nth(4).textContent()).toMatch(/^\d+(\.\d)? \/ .* ms$/);
      // No request in this harness sets a latency budget, so none was hedged.
      expect(await oc.locator("td").nth(6).textContent()).toBe("none");
      await page.getByRole("button", { name: "1 day" }).click();
      expect(await page.locator("#regions-caption").textContent()).toContain("last day");
      await expect
        .poll(() => page.locator("#headline").textContent(), { timeout: 15_000 })
        .toMatch(/2 tabs connected/);

      // The harness runs without answer verification: the page says so instead of showing zeros.
      await expect
        .poll(() => page.locator("#verification-text").textContent(), { timeout: 15_000 })
        .toMatch(/verification is off/);
      expect(await page.locator("#verification-bars").isHidden()).toBe(true);

      // Readable on a phone: nothing but the tables' own scrollers is wider than the screen.
      const overflow = await page.evaluate(
        () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
      );
      expect(overflow).toBeLessThanOrEqual(0);
      const shot = await page.screenshot({
        path: resolve(ARTIFACTS, `status-page-${width}.png`),
        fullPage: true,
      });
      expect(shot.byteLength).toBeGreaterThan(10_000);
      await page.close();
    });
  }
});
