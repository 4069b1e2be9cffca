import type { Browser, BrowserContext, Page } from "playwright-core";

/**
 * Open the real contributor page in its own browser context (own localStorage, so its own node
 * identity), with the engine Worker routed to the deterministic test engine bundle, and drive the
 * real UI to contribute.
 */
export interface ContributorPage {
  context: BrowserContext;
  page: Page;
  /** URLs of WebSockets the page opened, in order. */
  sockets: string[];
  field(name: string): ReturnType<Page["locator"]>;
}

export interface OpenOptions {
  /** Path and query to open, e.g. "/?bench-ms=600". */
  path?: string;
  /** Runs in the page before its own scripts (e.g. a scripted Battery Status API). */
  initScript?: () => void;
}

export async function openContributorPage(
  browser: Browser,
  port: number,
  workerBundle: string,
  opts: OpenOptions = {},
): Promise<ContributorPage> {
  const context = await browser.newContext();
  if (opts.initScript) await context.addInitScript(opts.initScript);
  await context.route("**/assets/engine-worker*.js", (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: workerBundle }),
  );
  const page = await context.newPage();
  const sockets: string[] = [];
  page.on("websocket", (ws) => sockets.push(ws.url()));
  page.on("pageerror", (err) => console.error(`[page error] ${err.message}`));
  // WebGPU needs a secure context: http://localhost is one, http://127.0.0.1 may not be.
  await page.goto(`http://localhost:${port}${opts.path ?? "/"}`);
  return {
    context,
    page,
    sockets,
    field: (name) => page.locator(`[data-field="${name}"]`).first(),
  };
}

/** The first eligible q4f32 model the page offers (the deterministic engine "loads" any). */
export async function firstQ4f32Model(page: Page): Promise<string> {
  // The picker appears once the page has read the coordinator's catalog.
  await page.waitForSelector("#model-select option", { state: "attached" });
  const options = await page
    .locator("#model-select option")
    .evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
  const model = options.find((id) => /q4f32/.test(id));
  if (!model) throw new Error(`no q4f32 model offered; options: ${options.join(", ")}`);
  return model;
}

/** Pick `model`, consent, and wait until the tab is connected and idle. */
export async function contribute(page: Page, model: string): Promise<void> {
  await page.selectOption("#model-select", model);
  await page.getByRole("button", { name: "Contribute this GPU" }).click();
  await page.waitForSelector('#status[data-connection="connected"][data-state="idle"]');
}
