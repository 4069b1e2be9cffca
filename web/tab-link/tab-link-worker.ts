/// <reference lib="webworker" />
/**
 * Worker entry of the tab link (see link-host.ts): the coordinator WebSocket and the contributor's
 * timers, off the page's main thread so a hidden tab keeps serving. Started by link-client.ts.
 */
import { serveTabLink } from "./link-host.js";

serveTabLink(self as unknown as DedicatedWorkerGlobalScope);
