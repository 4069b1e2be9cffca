import type { Browser, BrowserContext, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { contribute, firstQ4f32Model } from "../support/contributor-page.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * The production engine Worker up to the boundary this machine cannot cross: with nothing routed,
 * the page starts the real assets/engine-worker.js, WebLLM's CreateMLCEngine runs inside it on
 * SwiftShader and asks for the model's files; the model host answers 404 here (weights cannot be
 * downloaded), and the failure comes back through comlink as a typed `load_failed` error that the
 * page shows, without ever connecting to the coordinator.
 */

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let context: BrowserContext;
let page: Page;
const modelRequests: string[] = [];
const sockets: string[] = [];

beforeAll(async () => {
  ({ server, browser } = co);
  context = await browser.newContext();
  // Model hosts are unreachable here: answer for them so nothing leaves the machine.
  await context.route(/^https:\/\/(huggingface\.co|raw\.githubusercontent\.com)\//, (route) => {
    modelRequests.push(route.request().url());
    return route.fulfill({ status: 404, body: "not available in tests" });
  });
  page = await context.newPage();
  page.on("websocket", (ws) => sockets.push(ws.url()));
  await page.goto(`http://localhost:${server.port}/`);
});

describe("the production WebLLM engine worker", () => {
  it("starts WebLLM in the Worker and reports a typed load failure without connecting", async () => {
    const model = await firstQ4f32Model(page);
    const loading = contribute(page, model).then(
      () => "connected",
      () => "not connected",
    );
    const alert = page.locator('#progress [role="alert"]');
    await alert.waitFor();
    const text = (await alert.textContent()) ?? "";
    console.log(
      `production engine transcript: ${text}; model host requests: ${modelRequests.join(", ")}`,
    );
    expect(text).toMatch(/^Loading failed — load_failed: /);
    expect(modelRequests.some((u) => u.endsWith("/mlc-chat-config.json"))).toBe(true);
    expect(text).toMatch(/could not download the model's files/);
    expect(sockets).toEqual([]);
    await page.close();
    expect(await loading).toBe("not connected");
  });
});
