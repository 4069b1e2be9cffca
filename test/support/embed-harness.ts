import { spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { CHROMIUM_ARGS, WEBRTC_ARGS, findChromium } from "./chromium.js";
import { freePort } from "./wrangler-dev.js";

/**
 * Helpers for the embed, SDK and p2p browser tests: a second local origin serving a host page,
 * Chromium with what WebRTC between two local pages needs, the headless contributor frame driven
 * as a tab, and the loopback-only network namespace the WebRTC tests run in.
 */

export async function launchWebRtcChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    args: [...CHROMIUM_ARGS, ...WEBRTC_ARGS],
  });
}

/** A host page on its own origin (http://127.0.0.1:<port>), recording every request it gets. */
export interface HostSite {
  origin: string;
  paths: string[];
  close(): Promise<void>;
}

export async function startHostSite(
  content: Record<string, string> | ((origin: string) => Record<string, string>),
): Promise<HostSite> {
  const port = await freePort();
  const pages = typeof content === "function" ? content(`http://127.0.0.1:${port}`) : content;
  const paths: string[] = [];
  const server: Server = createServer((req, res) => {
    paths.push(req.url ?? "");
    const body = pages[(req.url ?? "/").split("?")[0] ?? "/"];
    if (body === undefined) {
      res.writeHead(404).end();
      return;
    }
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" }).end(body);
  });
  await new Promise<void>((r) => server.listen(port, "127.0.0.1", r));
  return {
    origin: `http://127.0.0.1:${port}`,
    paths,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** Route the engine Worker to the deterministic test engine in every page of the context. */
export async function routeTestEngine(context: BrowserContext, workerBundle: string) {
  await context.route("**/assets/engine-worker*.js", (route) =>
    route.fulfill({ status: 200, contentType: "text/javascript", body: workerBundle }),
  );
}

/**
 * Open the headless contributor frame as a top-level page that is its own parent, and start it
 * with the same `start` message embed.js sends. `withMedia`: call getUserMedia first, which is
 * what makes Chromium offer loopback ICE candidates (without it, ICE cannot connect here).
 * `gpuShare` (default 100: no rest between jobs, so tests and benchmarks never wait on the duty
 * cycle unless they ask for it).
 */
export async function openFrameTab(
  context: BrowserContext,
  coordinator: string,
  opts: { withMedia: boolean; blockIce?: boolean; gpuShare?: number },
): Promise<Page> {
  const page = await context.newPage();
  page.on("pageerror", (err) => console.error(`[frame tab error] ${err.message}`));
  if (opts.blockIce) await blockIceCandidates(page);
  await page.goto(`${coordinator}/frame/#parent=${encodeURIComponent(coordinator)}`);
  if (opts.withMedia) await grabMedia(page);
  await page.evaluate(
    ({ origin, gpuShare }) => {
      const w = window as unknown as { statuses: unknown[] };
      w.statuses = [];
      addEventListener("message", (e) => {
        if (e.origin === origin) w.statuses.push(e.data);
      });
      window.postMessage({ tabgrid: 1, type: "start", models: [], gpuShare }, origin);
    },
    { origin: coordinator, gpuShare: opts.gpuShare ?? 100 },
  );
  await page.waitForFunction(() =>
    (
      window as unknown as { statuses: Array<{ phase: string; state: string | null }> }
    ).statuses.some((s) => s.phase === "contributing" && s.state === "idle"),
  );
  return page;
}

/**
 * Make ICE fail for this page the way blocked UDP / symmetric NAT does: its signalling socket to
 * the coordinator loses every ICE candidate (CANDIDATE messages and a=candidate lines in SDPs), in
 * both directions, so no candidate pair can ever be checked. Signalling itself still works.
 */
export async function blockIceCandidates(page: Page): Promise<void> {
  const scrub = (raw: string | Buffer): string | null => {
    const msg = JSON.parse(raw.toString()) as {
      type?: string;
      payload?: { sdp?: { sdp?: string } };
    };
    if (msg.type === "CANDIDATE") return null;
    const sdp = msg.payload?.sdp;
    if (sdp?.sdp) sdp.sdp = sdp.sdp.replace(/^a=candidate:.*\r?\n/gm, "");
    return JSON.stringify(msg);
  };
  await page.routeWebSocket(/\/v1\/signal\/peerjs\?/, (ws) => {
    const server = ws.connectToServer();
    ws.onMessage((m) => {
      const out = scrub(m);
      if (out !== null) server.send(out);
    });
    server.onMessage((m) => {
      const out = scrub(m);
      if (out !== null) ws.send(out);
    });
  });
}

export async function grabMedia(page: Page): Promise<void> {
  await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
    (window as unknown as { keepMedia: MediaStream }).keepMedia = stream;
  });
}

/** Whether this process may create a network namespace (root in CI; not on most laptops). */
export function canUnshareNet(): boolean {
  return spawnSync("unshare", ["-n", "true"], { stdio: "ignore" }).status === 0;
}

/** Run one vitest file again inside a fresh namespace with only loopback; returns its output. */
export function rerunInLoopbackNamespace(file: string): { status: number | null; output: string } {
  const cmd = `ip link set lo up && PATH="$PWD/node_modules/.bin:$PATH" exec env TABGRID_NETNS=1 node_modules/.bin/vitest run --project browser ${file}`;
  const r = spawnSync("unshare", ["-n", "sh", "-c", cmd], {
    encoding: "utf8",
    timeout: 300_000,
    env: { ...process.env, NO_COLOR: "1", FORCE_COLOR: "0" },
  });
  return { status: r.status, output: `${r.stdout}\n${r.stderr}` };
}

/** Load the served ESM SDK (/sdk/tabgrid.js) into a page as `window.sdk`. */
export async function loadSdk(page: Page): Promise<void> {
  await page.addScriptTag({
    type: "module",
    content: 'import * as sdk from "/sdk/tabgrid.js"; window.sdk = sdk;',
  });
  await page.waitForFunction(() => "sdk" in window);
}
