import { existsSync } from "node:fs";
import { chromium, type Browser } from "playwright-core";

/**
 * Find and launch a local Chromium/Chrome with WebGPU on (SwiftShader where there is no GPU). Never
 * downloads a browser. Without one, fail with a one-line hint instead of a stack trace.
 */
const CANDIDATES = [
  "/usr/bin/chromium",
  "/usr/bin/chromium-browser",
  "/usr/bin/google-chrome",
  "/opt/google/chrome/chrome",
];

export const CHROMIUM_ARGS = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--enable-unsafe-webgpu",
  "--use-webgpu-adapter=swiftshader",
];

/** Switches that let two local pages connect over WebRTC (see shared/ENVIRONMENT.md). */
export const WEBRTC_ARGS = [
  "--allow-loopback-in-peer-connection",
  "--use-fake-ui-for-media-stream",
  "--use-fake-device-for-media-stream",
];

export class NoChromiumError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "NoChromiumError";
    // One line is the whole message; a stack adds nothing for the person reading it.
    this.stack = `${this.name}: ${message}`;
  }
}

export function findChromium(env: NodeJS.ProcessEnv = process.env): string {
  const fromEnv = env.TABGRID_CHROMIUM;
  if (fromEnv) {
    if (existsSync(fromEnv)) return fromEnv;
    throw new NoChromiumError(
      `TABGRID_CHROMIUM=${fromEnv} does not exist: apt-get install chromium, or set TABGRID_CHROMIUM=/path`,
    );
  }
  const found = CANDIDATES.find((p) => existsSync(p));
  if (!found) {
    throw new NoChromiumError(
      "no Chromium found: apt-get install chromium, or set TABGRID_CHROMIUM=/path",
    );
  }
  return found;
}

export async function launchChromium(executablePath = findChromium()): Promise<Browser> {
  return chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
}
