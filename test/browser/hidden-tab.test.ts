import OpenAI from "openai";
import type { Page, WebSocket } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildContributorPage, bundleTestEngineWorker } from "../support/build-page.js";
import { contribute, firstQ4f32Model } from "../support/contributor-page.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { launchOwnChromium, type OwnChromium } from "../support/own-chromium.js";
import { startWranglerDev, type WranglerDev } from "../support/wrangler-dev.js";

/**
 * A contributor tab keeps serving while hidden. Chromium runs without Playwright's
 * background-throttling switches (test/support/own-chromium.ts) and with the intensive-throttling
 * grace period cut from 5 minutes to 10 s; another tab is brought to the front, so the contributor
 * page is really hidden. The test proves the throttling is active — a chain of 200 ms timers on the
 * hidden page's main thread gets a gap of more than 30 s — while the tab-link Worker's pings keep
 * their 2.5 s pace, the tab never loses its connection (the coordinator closes a tab silent for
 * more than two 5 s status intervals), and the hidden tab then answers a job.
 */
const STATUS_INTERVAL_MS = 5000;
const FEATURES = [
  "IntensiveWakeUpThrottling:grace_period_seconds/10",
  "QuickIntensiveWakeUpThrottlingAfterLoading",
];

let server: WranglerDev;
let chrome: OwnChromium;
let tab: Page;
let model = "";
const pings: number[] = [];
let socketsOpened = 0;

beforeAll(async () => {
  const [, workerBundle] = await Promise.all([buildContributorPage(), bundleTestEngineWorker()]);
  server = await startWranglerDev({ vars: { STATUS_INTERVAL_MS: String(STATUS_INTERVAL_MS) } });
  chrome = await launchOwnChromium({ features: FEATURES });
  await chrome.context.route("**/assets/engine-worker*.js", (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: workerBundle }),
  );
  // Every connection state the page shows, with its time (a mutation observer: no timers).
  await chrome.context.addInitScript(() => {
    const w = window as unknown as { connections: string[] };
    w.connections = [];
    new MutationObserver(() => {
      const c = document.getElementById("status")?.dataset.connection;
      if (c && w.connections.at(-1) !== c) w.connections.push(c);
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-connection"] });
  });
  tab = chrome.context.pages()[0] ?? (await chrome.context.newPage());
  tab.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
  tab.on("websocket", (ws: WebSocket) => {
    if (!ws.url().includes("/v1/nodes/connect")) return;
    socketsOpened++;
    ws.on("framesent", (f) => {
      if (f.payload === '{"type":"ping"}') pings.push(Date.now());
    });
  });
  await tab.goto(`http://localhost:${server.port}/`);
  model = await firstQ4f32Model(tab);
  await contribute(tab, model);
}, 120_000);

afterAll(async () => {
  await chrome?.close();
  await server?.stop();
});

describe("a hidden contributor tab", () => {
  it(
    "keeps its connection through intensive throttling and serves a job",
    { timeout: 330_000 },
    async () => {
      expect(chrome.args.join(" ")).not.toMatch(/disable-background-timer-throttling/);
      expect(await tab.evaluate(() => document.visibilityState)).toBe("visible");
      const front = await chrome.frontTab();
      expect(await tab.evaluate(() => document.visibilityState)).toBe("hidden");
      const hiddenAt = Date.now();
      const pingsBefore = pings.length;

      // A main-thread timer chain in the hidden page, resolved at its first gap over 30 s.
      const chain = await tab.evaluate(
        () =>
          new Promise<{ longestGapMs: number; ticks: number; afterMs: number }>((resolve) => {
            const start = performance.now();
            let last = start;
            let ticks = 0;
            const tick = () => {
              const now = performance.now();
              const gap = now - last;
              last = now;
              ticks++;
              if (gap > 30_000) resolve({ longestGapMs: gap, ticks, afterMs: now - start });
              else setTimeout(tick, 200);
            };
            setTimeout(tick, 200);
          }),
      );
      const hiddenMs = Date.now() - hiddenAt;
      const during = pings.slice(pingsBefore).filter((t) => t >= hiddenAt);
      const pingGaps = during.slice(1).map((t, i) => t - during[i]!);
      const maxPingGap = Math.max(...pingGaps);
      const connections = await tab.evaluate(
        () => (window as unknown as { connections: string[] }).connections,
      );
      console.log(
        `hidden for ${Math.round(hiddenMs / 1000)} s: main-thread 200 ms timer chain ticked ` +
          `${chain.ticks} times, longest gap ${Math.round(chain.longestGapMs)} ms; worker pings ` +
          `${during.length}, longest gap ${maxPingGap} ms; sockets opened ${socketsOpened}; ` +
          `connection states ${JSON.stringify(connections)}`,
      );
      // The throttling is real: the page's own timers were held back by more than 30 s ...
      expect(chain.longestGapMs).toBeGreaterThan(30_000);
      // ... while the Worker pinged every half status interval (2.5 s) throughout ...
      expect(during.length).toBeGreaterThan(hiddenMs / (STATUS_INTERVAL_MS / 2) - 3);
      expect(maxPingGap).toBeLessThan(STATUS_INTERVAL_MS);
      // ... so the coordinator never dropped the tab: one socket, never reconnecting.
      expect(socketsOpened).toBe(1);
      expect(connections).not.toContain("reconnecting");

      // Still hidden, the tab serves a job.
      expect(await tab.evaluate(() => document.visibilityState)).toBe("hidden");
      const openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
      const messages = [{ role: "user" as const, content: "served from a hidden tab" }];
      const answer = await openai.chat.completions.create({ model, messages, max_tokens: 20 });
      const want = expectedOutput({ kind: "chat", messages }, { max_tokens: 20 });
      expect(answer.choices[0]?.message.content).toBe(want.text);
      expect(await tab.locator('[data-field="jobs-served"]').first().textContent()).toBe("1");
      await front.close();
    },
  );
});
