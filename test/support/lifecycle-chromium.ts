import { chromium, type Browser } from "playwright-core";
import { CHROMIUM_ARGS, findChromium } from "./chromium.js";

/**
 * Playwright's Chromium without the switches that hide real background behaviour
 * (`--disable-background-timer-throttling`, `--disable-renderer-backgrounding`,
 * `--disable-backgrounding-occluded-windows`), for tests about page lifecycle (freeze, several
 * tabs). Pages stay "visible" under Playwright; for a really hidden tab see own-chromium.ts.
 */
export const BACKGROUND_SWITCHES = [
  "--disable-background-timer-throttling",
  "--disable-renderer-backgrounding",
  "--disable-backgrounding-occluded-windows",
];

export function launchLifecycleChromium(): Promise<Browser> {
  return chromium.launch({
    executablePath: findChromium(),
    headless: true,
    args: CHROMIUM_ARGS,
    ignoreDefaultArgs: BACKGROUND_SWITCHES,
  });
}

/** Tab ids the coordinator registered, in order, from wrangler's log lines. */
export function registeredTabs(output: string): string[] {
  return [...output.matchAll(/"msg":"(?:tab|node) registered","(?:tab|node)":"([^"]+)"/g)].map(
    (m) => m[1]!,
  );
}
