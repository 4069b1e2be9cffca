import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext } from "playwright-core";
import WebSocket from "ws";
import { CHROMIUM_ARGS, findChromium } from "./chromium.js";

/**
 * A Chromium the test starts itself, for tests about hidden tabs. Playwright's `launch()` adds
 * `--disable-background-timer-throttling`, `--disable-renderer-backgrounding` and
 * `--disable-backgrounding-occluded-windows`; and while Playwright is attached to a page it keeps
 * that page active (`Emulation.setActiveAndFocused`), so the page stays "visible" whatever the test
 * does. Here Chromium is started by hand (`--headless=new`, a DevTools port, its own profile; none
 * of those switches), Playwright drives the set-up (routes, clicks) and is then let go
 * (`releasePlaywright`); from then on the test speaks raw CDP (`cdp`), and a tab opened in the same
 * window (`frontTab`) really hides the others — with Chromium's background throttling in force.
 */
export interface OwnChromium {
  /** Playwright over CDP, for the set-up only. */
  browser: Browser;
  context: BrowserContext;
  /** The command line Chromium was started with (for the test's transcript). */
  args: string[];
  /** Disconnect Playwright (the browser and its pages stay) and return a raw CDP client. */
  releasePlaywright(): Promise<RawCdp>;
  close(): Promise<void>;
}

type Listener = (params: Record<string, unknown>, sessionId: string | undefined) => void;

/** A minimal CDP client on the browser endpoint (flat sessions). */
export class RawCdp {
  private nextId = 0;
  private readonly waits = new Map<
    number,
    { resolve: (v: unknown) => void; reject: (e: Error) => void }
  >();
  private readonly listeners = new Map<string, Listener[]>();

  private constructor(private readonly ws: WebSocket) {
    ws.on("message", (data) => {
      const m = JSON.parse(String(data)) as {
        id?: number;
        result?: unknown;
        error?: { message: string };
        method?: string;
        params?: Record<string, unknown>;
        sessionId?: string;
      };
      if (m.id !== undefined) {
        const w = this.waits.get(m.id);
        this.waits.delete(m.id);
        if (m.error) w?.reject(new Error(`CDP: ${m.error.message}`));
        else w?.resolve(m.result);
      } else if (m.method) {
        for (const l of this.listeners.get(m.method) ?? []) l(m.params ?? {}, m.sessionId);
      }
    });
  }

  static async connect(endpoint: string): Promise<RawCdp> {
    const ws = new WebSocket(endpoint);
    await new Promise((resolve, reject) => {
      ws.once("open", resolve);
      ws.once("error", reject);
    });
    return new RawCdp(ws);
  }

  send<T = Record<string, unknown>>(
    method: string,
    params: Record<string, unknown> = {},
    sessionId?: string,
  ): Promise<T> {
    const id = ++this.nextId;
    return new Promise<T>((resolve, reject) => {
      this.waits.set(id, { resolve: resolve as (v: unknown) => void, reject });
      this.ws.send(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }));
    });
  }

  on(method: string, listener: Listener): void {
    this.listeners.set(method, [...(this.listeners.get(method) ?? []), listener]);
  }

  /** Attach to the first page whose URL contains `urlPart`; returns its session id. */
  async attachPage(urlPart: string): Promise<string> {
    const { targetInfos } = await this.send<{
      targetInfos: { targetId: string; type: string; url: string }[];
    }>("Target.getTargets");
    const page = targetInfos.find((t) => t.type === "page" && t.url.includes(urlPart));
    if (!page)
      throw new Error(`no page at ${urlPart}: ${targetInfos.map((t) => t.url).join(", ")}`);
    const { sessionId } = await this.send<{ sessionId: string }>("Target.attachToTarget", {
      targetId: page.targetId,
      flatten: true,
    });
    return sessionId;
  }

  /** Evaluate in a page (promises awaited); returns the value. */
  async evaluate<T>(sessionId: string, expression: string): Promise<T> {
    const r = await this.send<{ result: { value: T }; exceptionDetails?: { text: string } }>(
      "Runtime.evaluate",
      { expression, awaitPromise: true, returnByValue: true },
      sessionId,
    );
    if (r.exceptionDetails)
      throw new Error(`evaluate failed: ${JSON.stringify(r.exceptionDetails)}`);
    return r.result.value;
  }

  /** Open a tab in the same window, in front: the window's other tabs become hidden. */
  async frontTab(url = "about:blank"): Promise<string> {
    const { targetId } = await this.send<{ targetId: string }>("Target.createTarget", {
      url,
      newWindow: false,
      background: false,
    });
    return targetId;
  }

  close(): void {
    this.ws.close();
  }
}

export async function launchOwnChromium(opts: { features?: string[] } = {}): Promise<OwnChromium> {
  const profile = mkdtempSync(join(tmpdir(), "tabgrid-chromium-"));
  const args = [
    ...CHROMIUM_ARGS,
    "--headless=new",
    "--remote-debugging-port=0",
    `--user-data-dir=${profile}`,
    ...(opts.features?.length ? [`--enable-features=${opts.features.join(",")}`] : []),
    "about:blank",
  ];
  const child = spawn(findChromium(), args, {
    detached: true,
    stdio: ["ignore", "ignore", "pipe"],
  });
  let err = "";
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", (code) =>
      reject(new Error(`chromium exited (${code}):\n${err.slice(-2000)}`)),
    );
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const context = browser.contexts()[0];
  if (!context) throw new Error("chromium started without a default context");
  let raw: RawCdp | null = null;
  return {
    browser,
    context,
    args,
    async releasePlaywright() {
      await browser.close();
      raw = await RawCdp.connect(endpoint);
      return raw;
    },
    async close() {
      raw?.close();
      await browser.close().catch(() => {});
      if (child.exitCode === null && child.pid) {
        const exited = new Promise((r) => child.once("exit", r));
        try {
          process.kill(-child.pid, "SIGKILL");
        } catch {
          // Already gone.
        }
        await exited;
      }
      rmSync(profile, { recursive: true, force: true });
    },
  };
}
