import { defineConfig } from "vitest/config";
import { cloudflareTest } from "@cloudflare/vitest-plugin";

/** The one browser file that drives the real WebLLM engine (test/browser/real-engine.test.ts). */
const REAL_ENGINE = "test/browser/real-engine.test.ts";

/** What the browser projects share: real Chromium against `wrangler dev`, driven from Node. */
const BROWSER = {
  environment: "node",
  testTimeout: 120_000,
  hookTimeout: 120_000,
  // Builds the page, bundles the test engines and starts one Chromium for every file of the
  // project; each file starts its own wrangler dev (test/support/coordinator.ts).
  globalSetup: ["./test/support/browser-setup.ts"],
  // One file at a time: two at once on 2 cores made timing-sensitive tests fail (measured). Also
  // what lets both projects share a group: vitest refuses one group with different maxWorkers.
  fileParallelism: false,
  sequence: { groupOrder: 1 },
};

/**
 * One vitest project per runtime: pure shared code in Node, the coordinator inside workerd (the
 * real Workers runtime, through the Cloudflare plugin), web units in Node, and browser tests that
 * drive real Chromium (SwiftShader WebGPU) against `wrangler dev`.
 */
export default defineConfig({
  test: {
    // Every core for the unit and workerd projects (vitest's default leaves one idle: on CI's 2
    // cores that ran the ~80 workerd files one at a time, 277 s; two at a time 177 s, measured).
    // The browser, real-engine and integration files run after them, one file at a time
    // (groupOrder 1; `npm test` runs the real-engine file beside the others: scripts/test.mjs).
    maxWorkers: "100%",
    projects: [
      {
        test: {
          name: "shared",
          include: ["shared/**/*.test.ts"],
          environment: "node",
          isolate: false,
        },
      },
      {
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ALLOW_LOCATION_HEADER: "true",
                ANONYMOUS_TIER: "on",
                ANONYMOUS_RPM: "100000",
                ANONYMOUS_CONCURRENT: "1000",
                STATUS_INTERVAL_MS: "15000",
                // Short timings so lease expiry and waiting for a replacement happen within a test.
                ACCEPT_MS: "1500",
                LEASE_MS: "1500",
                // Prefill allowance for unobserved tabs: 20 tokens/s keeps "hi" well under a lease.
                PREFILL_UNSEEN_TPS: "20",
                SSE_KEEPALIVE_MS: "300",
                // Tests read GET /v1/nodes and /v1/models right after what they change; the
                // listings' isolate cache has its own test (edge/api/listings-cache.test.ts).
                LISTING_CACHE_MS: "0",
                REDISPATCH_WAIT_MS: "1000",
                MAX_NODES_PER_IP: "40",
                // The fuzz test's chaos sockets open ~80 from one address within a minute.
                TAB_CONNECTS_PER_MIN: "100",
                STREAM_IDLE_MS: "400",
                QUEUE_CAPACITY: "2",
                QUEUE_WAIT_MS: "1500",
                HELLO_DEADLINE_MS: "1000",
                // Waiting jobs are looked at for a move 4 times within QUEUE_WAIT_MS, not once, so
                // edge/region/waiting-moves.test.ts does not depend on one pass landing in time.
                WAITING_MOVE_MS: "250",
                // A small storage budget, so edge/region/storage-budget.test.ts can fill it.
                REGION_STORAGE_BYTES: "3000000",
                // Verification off: scripted tabs here answer no audits (verification.test.ts turns it on).
                TRUST: "off",
                // Credit for any model: scripted tabs here serve made-up names (production credits
                // catalog models only; edge/credits/credited-models.test.ts turns that on).
                CREDIT_MODELS: "any",
                EXTRA_MODELS: JSON.stringify([
                  {
                    model: "https://models.example.org/Operator-Test-Model-q4f32_1-MLC",
                    model_id: "Operator-Test-Model-q4f32_1-MLC",
                    model_lib: "https://models.example.org/Operator-Test-Model-webgpu.wasm",
                    vram_required_MB: 512,
                  },
                ]),
              },
            },
          }),
        ],
        test: { name: "edge", include: ["edge/**/*.test.ts"], exclude: ["edge/**/*.prod.test.ts"] },
      },
      {
        // Production defaults (keys required, location header ignored) plus an admin token.
        plugins: [
          cloudflareTest({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                ANONYMOUS_TIER: "off",
                ADMIN_TOKEN: "test-admin-token-0123456789",
              },
            },
          }),
        ],
        test: { name: "edge-prod", include: ["edge/**/*.prod.test.ts"] },
      },
      {
        test: { name: "web", include: ["web/**/*.test.ts"], environment: "node", isolate: false },
      },
      {
        // The coordinator under `wrangler dev` with Node-side peers (a local upstream, ws tabs).
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          environment: "node",
          testTimeout: 60_000,
          hookTimeout: 120_000,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
      {
        test: {
          ...BROWSER,
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          exclude: [REAL_ENGINE],
        },
      },
      // The real engine on SwiftShader: ~11 minutes of one file, most of it the GPU process
      // decoding. Its own project so that `npm test` (scripts/test.mjs) can run it in a second
      // vitest process beside the browser files: in one run, a group whose projects allow one
      // worker each runs its files one at a time, and CI took 24.6 minutes (2026-12-02).
      { test: { ...BROWSER, name: "real-engine", include: [REAL_ENGINE] } },
    ],
  },
});
