import { readFileSync, statSync, mkdirSync } from "node:fs";
import { resolve } from "node:path";
import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import {
  contribute,
  firstQ4f32Model,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * Know your GPU, see what you gave: the real page in Chromium with SwiftShader runs the real WGSL
 * benchmarks in its engine Worker (twice, to check they are stable), classifies the GPU, sends the
 * class and benchmark in `hello`, records served jobs in its dexie ledger (kept across reloads,
 * migrated from schema v1), and renders the dashboard (screenshot kept under test-results/).
 */
const ARTIFACTS = resolve(import.meta.dirname, "../../test-results");
const BENCH_MS = 1500;

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let tab: ContributorPage;
let page: Page;
let openai: OpenAI;
let model = "";
const sent: string[] = [];
const runs: { gflops: number; gbs: number }[] = [];

beforeAll(async () => {
  ({ server, browser } = co);
  tab = await openContributorPage(browser, server.port, co.engine(), {
    path: `/?bench-ms=${BENCH_MS}`,
  });
  page = tab.page;
  page.on("websocket", (ws) => ws.on("framesent", (f) => sent.push(String(f.payload))));
  openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
});

/** A measured rate as shown ("31.0 MFLOP/s", "1.46 GB/s"), in G units; never shown as "0.0". */
const number = async (key: string) => {
  const text = (await tab.field(key).textContent()) ?? "";
  expect(text).not.toMatch(/^0\.0+ /);
  const m = /^([\d.]+) ([kMGT]?)(?:FLOP|B)\/s$/.exec(text);
  if (!m) return NaN;
  const scale: Record<string, number> = { "": 1e-9, k: 1e-6, M: 1e-3, G: 1, T: 1e3 };
  return parseFloat(m[1]!) * scale[m[2]!]!;
};

async function runBenchmark(): Promise<{ gflops: number; gbs: number }> {
  await page.getByRole("button", { name: "Measure this GPU" }).click();
  // The progress bar is up while the Worker measures, and goes when the figures are in.
  await page.locator("#bench-progress").waitFor();
  await page.locator("#bench-progress").waitFor({ state: "detached", timeout: 60_000 });
  return { gflops: await number("bench-matmul"), gbs: await number("bench-bandwidth") };
}

describe("the contributor's GPU", () => {
  it("classifies SwiftShader as a software renderer before anything runs", async () => {
    await page.waitForSelector('#gpu-class[data-gpu-class="software"]');
    expect(await tab.field("gpu-class").textContent()).toMatch(/software renderer/);
    expect(await tab.field("bench-matmul").textContent()).toBe("not measured yet");
    const hint = await page.locator("#models .hint").first().textContent();
    expect(hint).toMatch(/predictions/);
    expect(await page.locator("#gpu-indicator").getAttribute("data-active")).toBe("false");
  });

  it("runs the WGSL benchmarks in the Worker: positive and stable across two runs", async () => {
    runs.push(await runBenchmark());
    runs.push(await runBenchmark());
    console.log(
      `SwiftShader benchmark (${BENCH_MS} ms each): ` +
        runs
          .map(
            (r, i) =>
              `run ${i + 1}: matmul ${r.gflops.toFixed(2)} GFLOP/s, bandwidth ${r.gbs.toFixed(2)} GB/s`,
          )
          .join("; "),
    );
    for (const r of runs) {
      expect(r.gflops).toBeGreaterThan(0);
      expect(r.gbs).toBeGreaterThan(0);
    }
    // Two cores shared with other work (the harness boots the next file's coordinator meanwhile,
    // SwiftShader's threads compete with it): within a factor of ten of each other. Measured
    // under load: ratios of 0.43–2.2 between two runs, and once beyond 3 in CI (2026-11-30); a
    // broken kernel (nothing computed, or a timer misread) differs by orders of magnitude.
    const [a, b] = runs as [(typeof runs)[0], (typeof runs)[0]];
    expect(b.gflops / a.gflops).toBeGreaterThan(1 / 10);
    expect(b.gflops / a.gflops).toBeLessThan(10);
    expect(b.gbs / a.gbs).toBeGreaterThan(1 / 10);
    expect(b.gbs / a.gbs).toBeLessThan(10);
  });

  it("predicts decode speed per model from the measured bandwidth, labelled as a prediction", async () => {
    model = await firstQ4f32Model(page);
    const label = await page.locator(`#model-select option[value="${model}"]`).textContent();
    expect(label).toMatch(/predicted ~[\d.]+ tok\/s/);
  });

  it("sends its class and measured benchmark in hello", async () => {
    await contribute(page, model);
    const hello = sent.map((s) => JSON.parse(s)).find((f) => f.type === "hello");
    expect(hello?.gpu).toMatchObject({ class: "software", profile: "swiftshader" });
    expect(hello.gpu.benchmark.matmulGflops).toBeCloseTo(runs[1]!.gflops, 1);
    expect(hello.gpu.benchmark.bandwidthGBs).toBeGreaterThan(0);
  });

  it("records served jobs and shows them on the dashboard; screenshot kept", async () => {
    let tokens = 0;
    for (const content of ["first job for the ledger", "second job for the ledger please"]) {
      const done = await openai.chat.completions.create({
        model,
        messages: [{ role: "user", content }],
        max_tokens: 32,
      });
      tokens += done.usage?.completion_tokens ?? 0;
    }
    expect(tokens).toBeGreaterThan(0);
    await expect.poll(() => tab.field("jobs-total").textContent()).toBe("2");
    expect(await tab.field("jobs-today").textContent()).toBe("2");
    expect(Number(await tab.field("tokens-total").textContent())).toBeGreaterThan(0);
    // Credit as the coordinator reported it: one per completion token this tab generated.
    await expect
      .poll(async () => Number(await tab.field("credit-total").textContent()))
      .toBe(tokens);
    // The identity's balance in the coordinator's ledger, told over the socket (credit.balance).
    await expect
      .poll(async () => Number(await tab.field("credit-balance").textContent()))
      .toBe(tokens);
    await expect.poll(() => tab.field("live-tps").textContent()).toMatch(/tokens\/s/);
    expect(await tab.field("state-words").textContent()).toMatch(
      /^ready: waiting for requests for /,
    );

    for (const sel of ["#state-words", "#tps-spark canvas", "#days-chart canvas", "#pause"]) {
      expect(await page.locator(sel).first().isVisible(), sel).toBe(true);
    }
    // Idle between jobs: the GPU is not working, so the badge is not shown.
    expect(await page.locator("#gpu-indicator").isVisible()).toBe(false);
    mkdirSync(ARTIFACTS, { recursive: true });
    const shot = resolve(ARTIFACTS, "contributor-dashboard.png");
    await page.setViewportSize({ width: 1366, height: 768 });
    await page.screenshot({ path: shot, fullPage: true });
    const size = statSync(shot).size;
    console.log(`dashboard screenshot: ${shot} (${size} bytes)`);
    expect(size).toBeGreaterThan(20_000);
  });

  it("keeps the ledger and the benchmark across a reload, and exports them as JSON", async () => {
    await page.reload();
    await expect.poll(() => tab.field("jobs-total").textContent()).toBe("2");
    expect(await number("bench-matmul")).toBeCloseTo(runs[1]!.gflops, 1);
    const [download] = await Promise.all([
      page.waitForEvent("download"),
      page.getByRole("button", { name: "Export ledger (JSON)" }).click(),
    ]);
    // The browser is shared (connected remotely): copy the download here before reading it.
    mkdirSync(ARTIFACTS, { recursive: true });
    const saved = resolve(ARTIFACTS, "ledger-export.json");
    await download.saveAs(saved);
    const exported = JSON.parse(readFileSync(saved, "utf8"));
    expect(exported).toMatchObject({ format: "tabgrid-ledger", schemaVersion: 2 });
    expect(exported.jobs).toHaveLength(2);
    expect(
      exported.jobs.every(
        (j: { credit: unknown; model: string }) =>
          typeof j.credit === "number" && j.credit > 0 && j.model === model,
      ),
    ).toBe(true);
    expect(exported.identity.find((r: { key: string }) => r.key === "nodeId")?.value).toMatch(
      /\S{8,}/,
    );
  });

  it("migrates a schema v1 ledger (no day field, no daily totals) when the page opens it", async () => {
    const context = await browser.newContext();
    const fresh = await context.newPage();
    await fresh.goto(`http://localhost:${server.port}/v1/models`);
    await fresh.evaluate(
      () =>
        new Promise<void>((done, fail) => {
          // Dexie stores version n as IndexedDB version n × 10.
          const open = indexedDB.open("tabgrid-ledger", 10);
          open.onupgradeneeded = () => {
            const db = open.result;
            const jobs = db.createObjectStore("jobs", { keyPath: "id", autoIncrement: true });
            jobs.createIndex("jobId", "jobId");
            jobs.createIndex("at", "at");
            db.createObjectStore("settings", { keyPath: "key" });
            jobs.add({
              jobId: "old-job",
              at: Date.now(),
              model: "Old-q4f32_1-MLC",
              outcome: "done",
              promptTokens: 4,
              completionTokens: 21,
              durationMs: 900,
              decodeTokensPerSecond: 23,
            });
          };
          open.onsuccess = () => (open.result.close(), done());
          open.onerror = () => fail(open.error);
        }),
    );
    await fresh.goto(`http://localhost:${server.port}/`);
    const jobs = fresh.locator('[data-field="jobs-total"]');
    // The page reads the ledger after detecting WebGPU: seconds on a loaded 2-core machine.
    await expect.poll(() => jobs.textContent(), { timeout: 20_000 }).toBe("1");
    expect(await fresh.locator('[data-field="tokens-today"]').textContent()).toBe("21");
    await context.close();
  });
});
