import { chromium } from "playwright-core";
import type { TestProject } from "vitest/node";
import { buildContributorPage, bundleEngineWorkers, type EngineWorker } from "./build-page.js";
import { CHROMIUM_ARGS, WEBRTC_ARGS, findChromium } from "./chromium.js";
import { CoordinatorPool } from "./coordinator-pool.js";

/**
 * The browser project's global setup, run once before its files: build the contributor page
 * (unless `npm test` already did), bundle the test engine Workers, start one Chromium server that
 * every file connects to, and a pool that boots each file's `wrangler dev` while the previous file
 * runs (test/support/coordinator-pool.ts). Files use all of it through `useCoordinator()`
 * (test/support/coordinator.ts); each still gets its own coordinator and its own browser
 * contexts, so files stay independent.
 *
 * Inside the p2p test's loopback-only network namespace (TABGRID_NETNS=1, a nested run of that
 * one file), the browser gets the WebRTC switches too, since the p2p file is all that runs there.
 */
declare module "vitest" {
  export interface ProvidedContext {
    /** Where to `chromium.connect()` to the shared browser. */
    chromiumWsEndpoint: string;
    /** Whether the shared browser was started with the WebRTC switches (WEBRTC_ARGS). */
    chromiumWebRtc: boolean;
    /** The test engine Worker bundles, by name (see ENGINE_WORKERS). */
    engineBundles: Record<EngineWorker, string>;
    /** Base URL of the coordinator pool (claim / output / release). */
    coordinatorPool: string;
  }
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  // Fail fast, with the one-line hint, before building anything.
  const executablePath = findChromium();
  const webRtc = process.env.TABGRID_NETNS === "1";
  const pool = new CoordinatorPool();
  const built = buildContributorPage().then(() => {
    // wrangler dev serves dist/ (and reloads when it changes): boot the first one after the build.
    pool.prime();
    // A nested run (the p2p file in its namespace) inherits this: dist/ is built already.
    process.env.TABGRID_PAGE_BUILT = "1";
  });
  const started = await Promise.allSettled([
    built,
    bundleEngineWorkers(),
    chromium.launchServer({
      executablePath,
      headless: true,
      host: "127.0.0.1",
      args: webRtc ? [...CHROMIUM_ARGS, ...WEBRTC_ARGS] : CHROMIUM_ARGS,
    }),
    pool.listen(),
  ] as const);
  const [, bundled, launched, listening] = started;
  const teardown = async () => {
    await Promise.all([
      launched.status === "fulfilled" && launched.value.close(),
      pool.close(),
      listening.status === "fulfilled" && listening.value.close(),
    ]);
  };
  const failed = started.find((r) => r.status === "rejected");
  if (
    failed ||
    bundled.status !== "fulfilled" ||
    launched.status !== "fulfilled" ||
    listening.status !== "fulfilled"
  ) {
    await teardown();
    throw failed?.status === "rejected" ? failed.reason : new Error("browser setup failed");
  }
  const [bundles, browser, endpoint] = [bundled.value, launched.value, listening.value];
  project.provide("chromiumWsEndpoint", browser.wsEndpoint());
  project.provide("chromiumWebRtc", webRtc);
  project.provide("engineBundles", bundles);
  project.provide("coordinatorPool", endpoint.url);
  return teardown;
}
