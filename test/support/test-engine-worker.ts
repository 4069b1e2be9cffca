/// <reference lib="webworker" />
/**
 * The browser test's Worker: the product's own comlink host (web/engine-worker/engine-host.ts) serving the
 * deterministic engine. The test bundles this file and routes it in place of
 * assets/engine-worker.js, so only the engine differs from production.
 */
import { exposeEngine } from "../../web/engine-worker/engine-host.js";
import { DeterministicEngine } from "./deterministic-engine.js";

exposeEngine(new DeterministicEngine());
