/// <reference lib="webworker" />
/**
 * The controls test's Worker: the product's comlink host serving the GPU-bound deterministic
 * engine, plus test-only hooks on a BroadcastChannel the test drives from the page
 * ("destroy-device", "crash-worker"); the Worker answers "device-lost" once WebGPU reports the
 * loss. None of this
 * exists in the product bundle: the test routes this file in place of assets/engine-worker.js.
 */
import { exposeEngine } from "../../web/engine-worker/engine-host.js";
import { GpuBoundEngine } from "./gpu-bound-engine.js";

const channel = new BroadcastChannel("tabgrid-test");
const engine = new GpuBoundEngine(15, () => channel.postMessage("device-lost"));
channel.onmessage = (e: MessageEvent) => {
  if (e.data === "destroy-device") engine.destroyDevice();
  // An uncaught error: the page's Worker object gets an "error" event, as when a Worker dies.
  if (e.data === "crash-worker")
    setTimeout(() => {
      throw new Error("the test crashed the engine worker");
    });
};
exposeEngine(engine);
