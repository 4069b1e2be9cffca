/// <reference lib="webworker" />
/**
 * The adaptation test's Worker: the product's comlink host serving the paced engine
 * (test/support/paced-engine.ts) on a pretend GPU with 1024 MB, plus a test-only hook on the
 * "tabgrid-test" BroadcastChannel: `{ pace: ms }` sets the pause between tokens and is answered
 * `{ paced: ms }`. Routed by the test in place of assets/engine-worker.js; not in the product.
 */
import { exposeEngine } from "../../web/engine-worker/engine-host.js";
import { PacedEngine, TEST_GPU_MEMORY_MB } from "./paced-engine.js";

const engine = new PacedEngine(TEST_GPU_MEMORY_MB, 10);
const channel = new BroadcastChannel("tabgrid-test");
channel.onmessage = (e: MessageEvent<unknown>) => {
  const pace = (e.data as { pace?: unknown } | null)?.pace;
  if (typeof pace === "number" && pace >= 0) {
    engine.pace = pace;
    channel.postMessage({ paced: pace });
  }
};
exposeEngine(engine);
