import OpenAI from "openai";
import type { Browser } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  contribute,
  firstQ4f32Model,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { launchLifecycleChromium, registeredTabs } from "../support/lifecycle-chromium.js";
import { launchOwnChromium, type OwnChromium, type RawCdp } from "../support/own-chromium.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * A frozen tab (Page Lifecycle: the browser stops a background page to save power) loses its job
 * to another tab, and serves again under the same identity once resumed. The frozen tab runs in a
 * Chromium without Playwright's background switches and without Playwright attached (Chromium does
 * not freeze a page Playwright keeps active; see test/support/own-chromium.ts); it is frozen and
 * resumed with CDP `Page.setWebLifecycleState`. The replacement tab is another browser (its own
 * profile, so its own identity and its own engine lock).
 */
// The job waits for a replacement as long as in production (the harness's 2 s is too short for a
// tab that joins only after the freeze).
const co = useCoordinator({ vars: { REDISPATCH_WAIT_MS: "30000" } });
let server: TestServer;
let chrome: OwnChromium;
let cdp: RawCdp;
let tab = "";
let other: Browser;
let model = "";
let workerBundle = "";

/** Resolves once the page shows "connected" again after its `resume` (a mutation observer). */
const connectedAfterResume = `new Promise((resolve) => {
  const ok = () => {
    const e = window.events;
    const r = e.indexOf("resume");
    return r >= 0 && e.slice(r).includes("connecting") && e.at(-1) === "connected";
  };
  if (ok()) return resolve(true);
  new MutationObserver((_, o) => { if (ok()) { o.disconnect(); resolve(true); } })
    .observe(document, { subtree: true, attributes: true, attributeFilter: ["data-connection"] });
})`;

beforeAll(async () => {
  server = co.server;
  workerBundle = co.engine();
  chrome = await launchOwnChromium();
  await chrome.context.route("**/assets/engine-worker*.js", (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: workerBundle }),
  );
  // Lifecycle events and the connection states the page shows, in order (no timers involved).
  await chrome.context.addInitScript(() => {
    const w = window as unknown as { events: string[] };
    w.events = [];
    for (const e of ["freeze", "resume"]) document.addEventListener(e, () => w.events.push(e));
    let shown = "";
    new MutationObserver(() => {
      const c = document.getElementById("status")?.dataset.connection;
      if (c && c !== shown) w.events.push((shown = c));
    }).observe(document, { subtree: true, attributes: true, attributeFilter: ["data-connection"] });
  });
  const page = chrome.context.pages()[0] ?? (await chrome.context.newPage());
  await page.goto(`http://localhost:${server.port}/`);
  model = await firstQ4f32Model(page);
  await contribute(page, model);
  cdp = await chrome.releasePlaywright();
  tab = await cdp.attachPage(`localhost:${server.port}`);
  other = await launchLifecycleChromium();
}, 120_000);

afterAll(async () => {
  await chrome?.close();
  await other?.close();
});

describe("a frozen contributor tab", () => {
  it("has its job failed over, then serves again after resuming, with the same identity", async () => {
    const openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
    // ~400 tokens at the deterministic engine's 15 ms a token: about 6 s of streaming.
    const content = Array.from({ length: 400 }, (_, i) => `w${i}`).join(" ");
    const messages = [{ role: "user" as const, content }];
    // The replacement's page is open (not contributing) before the job starts.
    const waiting = await openContributorPage(other, server.port, workerBundle);
    const stream = await openai.chat.completions.create({
      model,
      messages,
      max_tokens: 500,
      stream: true,
    });
    let text = "";
    let finish: string | null | undefined;
    let frozenAt = 0;
    let frozeAfterChars = 0;
    let replacement: Promise<ContributorPage> | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
      if (!frozenAt && text.length > 20) {
        await cdp.send("Page.setWebLifecycleState", { state: "frozen" }, tab);
        frozenAt = Date.now();
        frozeAfterChars = text.length;
        // Only now a second contributor joins: the job can only finish there.
        replacement = contribute(waiting.page, model).then(() => waiting);
      }
    }
    const endedAt = Date.now();
    expect(frozenAt).toBeGreaterThan(0);
    // Nothing missing or repeated across the move: the answer is the deterministic one. After a
    // failover the coordinator budgets the rest of max_tokens conservatively (at most one token
    // per delivered character; docs/failure-handling.md), so the answer may end early with
    // "length" — never with text that differs.
    const want = expectedOutput({ kind: "chat", messages }, { max_tokens: 500 }).text;
    expect(text.length).toBeGreaterThan(frozeAfterChars);
    if (finish === "length") expect(want.startsWith(text)).toBe(true);
    else expect(text).toBe(want);
    const second = await replacement!;
    await expect.poll(() => second.field("jobs-served").textContent()).toBe("1");

    // Resume: the tab reconnects (signing the coordinator's challenge with its stored key) and
    // comes back under the id it had.
    await cdp.send("Page.setWebLifecycleState", { state: "active" }, tab);
    await cdp.evaluate(tab, connectedAfterResume);
    const events = await cdp.evaluate<string[]>(tab, "window.events");
    // The page shows "connected" on the coordinator's welcome; the Region's "tab registered" line
    // reaches wrangler's output a moment later through its log pipe, so wait for the line itself.
    await expect
      .poll(async () => registeredTabs(await server.output()).length, { timeout: 10_000 })
      .toBeGreaterThanOrEqual(3);
    const registered = registeredTabs(await server.output());
    console.log(
      `froze the serving tab after ${frozeAfterChars} chars; the answer ended ` +
        `${endedAt - frozenAt} ms later, finished by a tab that joined after the freeze; page events ` +
        `${JSON.stringify(events)}; registrations ${JSON.stringify(registered)}`,
    );
    expect(events.filter((e) => e === "freeze" || e === "resume")).toEqual(["freeze", "resume"]);
    // First tab, replacement, then the first tab again under its old id.
    expect(registered.length).toBeGreaterThanOrEqual(3);
    expect(new Set(registered).size).toBe(2);
    expect(registered.slice(2).every((id) => id === registered[0])).toBe(true);
    expect(
      await cdp.evaluate(tab, `document.querySelector('[data-field="jobs-served"]').textContent`),
    ).toBe("0");

    // With the replacement gone, the resumed tab serves the next job.
    await second.page.close();
    const next = [{ role: "user" as const, content: "after resuming" }];
    const answer = await openai.chat.completions.create({ model, messages: next, max_tokens: 20 });
    expect(answer.choices[0]?.message.content).toBe(
      expectedOutput({ kind: "chat", messages: next }, { max_tokens: 20 }).text,
    );
    expect(
      await cdp.evaluate(tab, `document.querySelector('[data-field="jobs-served"]').textContent`),
    ).toBe("1");
  });
});
