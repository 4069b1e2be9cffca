import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { CHROMIUM_ARGS, findChromium } from "./chromium.js";

/**
 * A Chromium the test starts itself, for tests about hidden tabs. Playwright's `launch()` adds
 * `--disable-background-timer-throttling`, `--disable-renderer-backgrounding` and
 * `--disable-backgrounding-occluded-windows`, and with it a page stays "visible" whatever the test
 * does (docs: /work/shared/ENVIRONMENT.md). Started by hand (`--headless=new`, a DevTools port,
 * its own profile) and driven over CDP, none of those switches are present, and a second tab opened
 * in the same window (`Target.createTarget` with `newWindow: false`) really hides the first one —
 * with Chromium's background throttling in force. `features` go to `--enable-features`.
 */
export interface OwnChromium {
  browser: Browser;
  /** The profile's one context (routes set here apply to every tab). */
  context: BrowserContext;
  /** The command line Chromium was started with (for the test's transcript). */
  args: string[];
  /** Open a tab in the same window and bring it to the front: the others become hidden. */
  frontTab(url?: string): Promise<Page>;
  close(): Promise<void>;
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
  const child = spawn(findChromium(), args, { detached: true, stdio: ["ignore", "ignore", "pipe"] });
  let err = "";
  const endpoint = await new Promise<string>((resolve, reject) => {
    child.stderr.on("data", (d: Buffer) => {
      err += d.toString();
      const m = /DevTools listening on (ws:\/\/\S+)/.exec(err);
      if (m?.[1]) resolve(m[1]);
    });
    child.once("exit", (code) => reject(new Error(`chromium exited (${code}):\n${err.slice(-2000)}`)));
  });
  const browser = await chromium.connectOverCDP(endpoint);
  const context = browser.contexts()[0];
  if (!context) throw new Error("chromium started without a default context");
  return {
    browser,
    context,
    args,
    async frontTab(url = "about:blank") {
      const session = await browser.newBrowserCDPSession();
      const opened = context.waitForEvent("page");
      await session.send("Target.createTarget", { url, newWindow: false, background: false });
      const page = await opened;
      await session.detach();
      return page;
    },
    async close() {
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
