import type { AdapterInfo, NodeState } from "../../shared/protocol/node-messages.js";
import type { TabRecord } from "./tab-registry.js";
import type { TrustView } from "./tab-trust.js";

/** Per-model capacity of one region, for GET /v1/models (field names are the public API's). */
export interface RegionSummary {
  models: Record<string, { nodes: number; idle: number }>;
  nodes: number;
  /** Requests waiting for their first tab. */
  queued: number;
}

/** A tab as GET /v1/nodes shows it: no identity secret, no socket. */
export interface TabListing {
  id: string;
  state: NodeState;
  models: string[];
  adapter: Pick<AdapterInfo, "vendor" | "architecture" | "description" | "shaderF16">;
  agent: string;
  connectedAt: string;
  jobsServed: number;
  /** Probation, trusted or quarantined, with the identity's finished jobs and faults. */
  trust: TrustView;
  /** Credit earned by the identity (its public key) across connections, as the coordinator counts it. */
  credits: number;
}

export function summarise(tabs: Iterable<TabRecord>): RegionSummary {
  const out: RegionSummary = { models: {}, nodes: 0, queued: 0 };
  for (const tab of tabs) {
    out.nodes += 1;
    for (const model of tab.models) {
      const entry = (out.models[model] ??= { nodes: 0, idle: 0 });
      entry.nodes += 1;
      if (tab.state === "idle" && !tab.jobId) entry.idle += 1;
    }
  }
  return out;
}

export function listingOf(tab: TabRecord, trust: TrustView, credits: number): TabListing {
  const { vendor, architecture, description, shaderF16 } = tab.adapter;
  return {
    id: tab.publicId,
    state: tab.state,
    models: tab.models,
    adapter: { vendor, architecture, description, shaderF16 },
    agent: tab.agent,
    connectedAt: new Date(tab.connectedAt).toISOString(),
    jobsServed: tab.jobsServed,
    trust,
    credits,
  };
}
