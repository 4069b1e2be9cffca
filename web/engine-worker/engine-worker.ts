/// <reference lib="webworker" />
/**
 * Production Worker entry: WebLLM's engine served to the page over comlink. Vite emits this file
 * as assets/engine-worker.js (see vite.config.ts).
 */
import { WebLLMEngine } from "./webllm-engine.js";
import { exposeEngine } from "./engine-host.js";

exposeEngine(new WebLLMEngine());
