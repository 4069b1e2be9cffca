import type { JobSpec, Sampling } from "../../shared/protocol/job.js";
import { decodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import { cosineSimilarity, isFarVector } from "../../shared/trust/embedding-agreement.js";
import { keyedUniform } from "../../shared/trust/keyed-prng.js";
import type { TrustConfig } from "../../shared/trust/policy.js";

type VectorsFrame = Extract<TabMessage, { type: "job.vectors" }>;

/**
 * What an embedding audit holds (audits.ts keeps it as the audit's payload): a few of the audited
 * job's inputs and the audited tab's vectors for them. At most `maxAuditVectors` inputs, each at
 * most MAX_EMBEDDING_INPUT_BYTES (the API's bound) and each vector at most MAX_VECTOR_BASE64, so
 * one audit is ~150 KB at most with the defaults, within the audits' storage share.
 */
export interface EmbeddingAuditPayload {
  kind: "embedding";
  model: string;
  dimensions: number;
  /** The inputs the verifier re-embeds, in the order its vectors come back. */
  inputs: string[];
  /** The audited tab's vectors for those inputs, as it sent them (checked on arrival). */
  claimed: string[];
  /** The audited job's sampling fields, so the verifier's job looks like any embedding job. */
  sampling: Sampling;
}

export function isEmbeddingAudit(payload: unknown): payload is EmbeddingAuditPayload {
  return (payload as { kind?: unknown }).kind === "embedding";
}

/**
 * The audit of a finished embedding job: a keyed choice of up to `maxAuditVectors` of its inputs
 * (a tab cannot tell which of its vectors will be checked, so every one of them must be right)
 * with the vectors the tab gave for them. Null for a job that is not an embedding job.
 */
export function embeddingAuditPayload(
  c: TrustConfig,
  spec: JobSpec,
  vectors: readonly string[],
): EmbeddingAuditPayload | null {
  const input = spec.input;
  if (input.kind !== "embedding" || vectors.length !== input.inputs.length) return null;
  const picked = input.inputs
    .map((_, i) => ({ i, draw: keyedUniform(c.key, "audit-input", spec.id, i) }))
    .sort((a, b) => a.draw - b.draw)
    .slice(0, Math.max(0, c.maxAuditVectors))
    .map((p) => p.i)
    .sort((a, b) => a - b);
  if (!picked.length) return null;
  return {
    kind: "embedding",
    model: spec.model,
    dimensions: input.dimensions,
    inputs: picked.map((i) => input.inputs[i]!),
    claimed: picked.map((i) => vectors[i]!),
    sampling: spec.sampling,
  };
}

/**
 * The job a verifier is sent for an embedding audit: an ordinary embedding job (a `job.assign`
 * every embedding tab understands, with an id minted like a client job's), answered with
 * `job.vectors` and `job.done` that audits.ts keeps from every client and ledger.
 */
export function embeddingAuditJob(id: string, p: EmbeddingAuditPayload): JobSpec {
  return {
    id,
    model: p.model,
    input: { kind: "embedding", inputs: p.inputs, dimensions: p.dimensions },
    sampling: p.sampling,
  };
}

/**
 * Compare a frame of the verifier's vectors with the claimed ones: the counts so far (vectors
 * compared, of which far), or why the verifier's frame is refused (out of order, too many, not
 * vectors of the model's length) — the verifier's fault, not evidence about the audited tab.
 */
export function compareVectors(
  c: TrustConfig,
  p: EmbeddingAuditPayload,
  so: { compared: number; far: number },
  msg: VectorsFrame,
): { compared: number; far: number } | { refused: string } {
  if (msg.index !== so.compared) {
    return { refused: `vectors from index ${msg.index}, expected ${so.compared}` };
  }
  if (msg.index + msg.vectors.length > p.inputs.length) {
    return { refused: `${msg.index + msg.vectors.length} vectors for ${p.inputs.length} inputs` };
  }
  let far = so.far;
  for (const [k, text] of msg.vectors.entries()) {
    const i = msg.index + k;
    const mine = decodeVector(text, p.dimensions);
    if (!mine.ok) return { refused: `input ${i}: ${mine.why}` };
    const theirs = decodeVector(p.claimed[i]!, p.dimensions);
    // The claimed vectors were checked when the audited tab sent them; one that no longer decodes
    // (a payload from another version) is far: it was never a vector of this model's length.
    if (!theirs.ok || isFarVector(cosineSimilarity(theirs.values, mine.values), c)) far += 1;
  }
  return { compared: so.compared + msg.vectors.length, far };
}
