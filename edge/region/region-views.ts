import type { AdapterInfo, NodeState } from "../../shared/protocol/node-messages.js";
import type { NodeRecord } from "./node-registry.js";

/** Per-model capacity of one region, for GET /v1/models. */
export interface RegionSummary {
  models: Record<string, { nodes: number; idle: number }>;
  nodes: number;
  /** Requests waiting for their first tab. */
  queued: number;
}

/** A tab as GET /v1/nodes shows it: no identity secret, no socket. */
export interface NodeListing {
  id: string;
  state: NodeState;
  models: string[];
  adapter: Pick<AdapterInfo, "vendor" | "architecture" | "description" | "shaderF16">;
  agent: string;
  connectedAt: string;
  jobsServed: number;
}

export function summarise(nodes: Iterable<NodeRecord>): RegionSummary {
  const out: RegionSummary = { models: {}, nodes: 0, queued: 0 };
  for (const node of nodes) {
    out.nodes += 1;
    for (const model of node.models) {
      const entry = (out.models[model] ??= { nodes: 0, idle: 0 });
      entry.nodes += 1;
      if (node.state === "idle" && !node.jobId) entry.idle += 1;
    }
  }
  return out;
}

export function listingOf(node: NodeRecord): NodeListing {
  const { vendor, architecture, description, shaderF16 } = node.adapter;
  return {
    id: node.publicId,
    state: node.state,
    models: node.models,
    adapter: { vendor, architecture, description, shaderF16 },
    agent: node.agent,
    connectedAt: new Date(node.connectedAt).toISOString(),
    jobsServed: node.jobsServed,
  };
}
