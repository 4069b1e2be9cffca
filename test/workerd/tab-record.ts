import type { TabRecord } from "../../edge/region/tab-registry.js";

/**
 * A Region's record of a connected tab, for tests that drive the matcher directly (no socket):
 * idle, serving `model`, seen just now, 20 ms round trip, no GPU claim; `overrides` set what a test
 * is about (its protocol, a claimed GPU…).
 */
export function tabRecord(
  tabId: string,
  model: string,
  overrides: Partial<TabRecord> = {},
): TabRecord {
  return {
    tabId,
    publicId: tabId.slice(0, 12),
    ws: null as unknown as WebSocket,
    adapter: {
      vendor: "x",
      architecture: "x",
      description: "x",
      shaderF16: true,
      maxBufferSize: 1,
      maxStorageBufferBindingSize: 1,
    },
    agent: "t",
    models: [model],
    state: "idle",
    jobId: null,
    queuedJobId: null,
    protocol: 3,
    lat: null,
    lon: null,
    connectedAt: 0,
    lastSeen: Date.now(),
    lastAssignedAt: 0,
    jobsServed: 0,
    gpu: null,
    rttMs: 20,
    busyUntil: 0,
    ...overrides,
  };
}
