import { chromium, type Browser, type Page } from "playwright-core";
import { CHROMIUM_ARGS, findChromium } from "./chromium.js";

/**
 * Chromium with Chrome's DEFAULT third-party storage behaviour. Playwright's launch turns off
 * `ThirdPartyStoragePartitioning` (in its one `--disable-features=` switch); without partitioning
 * a frame from another site gets no storage at all (SecurityError on CacheStorage.open, IndexedDB
 * denied), which is not what Chrome users have. This launches once to read Playwright's exact
 * switch from chrome://version, then launches with that switch ignored and re-added without
 * `ThirdPartyStoragePartitioning`. `assertPartitioned` checks the outcome in a real frame.
 */
let cachedSwitch: string | null = null;

async function playwrightDisableFeatures(executablePath: string): Promise<string> {
  if (cachedSwitch) return cachedSwitch;
  const probe = await chromium.launch({ executablePath, headless: true, args: CHROMIUM_ARGS });
  try {
    const page = await probe.newPage();
    await page.goto("chrome://version");
    const commandLine = await page.locator("#command_line").innerText();
    const found = /--disable-features=\S+/.exec(commandLine)?.[0];
    if (!found) throw new Error(`no --disable-features in Chromium's command line: ${commandLine}`);
    cachedSwitch = found;
    return found;
  } finally {
    await probe.close();
  }
}

export async function launchWithDefaultStorage(
  extraArgs: string[] = [],
  executablePath = findChromium(),
): Promise<Browser> {
  const theirs = await playwrightDisableFeatures(executablePath);
  const ours = theirs
    .replace(/(=|,)ThirdPartyStoragePartitioning(?=,|$)/, "$1")
    .replace(/=,/, "=")
    .replace(/,,/, ",")
    .replace(/,$/, "");
  return chromium.launch({
    executablePath,
    headless: true,
    ignoreDefaultArgs: [theirs],
    args: [...CHROMIUM_ARGS, ours, ...extraArgs],
  });
}

/**
 * In `page` (a host page on another site that frames `frameOrigin`): the frame can use storage, and
 * what it stores is not what the same origin sees as a top-level page — storage is partitioned by
 * top-level site, as in Chrome by default. Throws otherwise.
 */
export async function assertPartitioned(page: Page, frameOrigin: string): Promise<void> {
  const frame = page.frames().find((f) => f.url().startsWith(frameOrigin));
  if (!frame) throw new Error(`no frame from ${frameOrigin} in ${page.url()}`);
  const inFrame = await frame.evaluate(async () => {
    localStorage.setItem("tabgrid.partition-probe", "third-party");
    await caches.open("tabgrid-partition-probe");
    return localStorage.getItem("tabgrid.partition-probe");
  });
  if (inFrame !== "third-party") throw new Error(`frame storage did not work: ${inFrame}`);
  const top = await page.context().newPage();
  try {
    await top.goto(`${frameOrigin}/frame/`);
    const firstParty = await top.evaluate(() => localStorage.getItem("tabgrid.partition-probe"));
    if (firstParty !== null)
      throw new Error("the frame's storage is visible first-party: storage is not partitioned");
  } finally {
    await top.close();
  }
}
