import { z } from "zod";
import { parseFrame as parseFrameWithin, type FrameResult } from "./frames.js";
import {
  FinishReasonSchema,
  JobErrorSchema,
  JobSpecSchema,
  SamplingSchema,
  TextJobInputSchema,
  UsageSchema,
} from "./job.js";
import { JobLogprobsSchema, ReportedLogprobSchema } from "./logprobs.js";
import { MAX_EMBEDDING_INPUTS, MAX_VECTOR_BASE64 } from "./embedding-vectors.js";
import { ModelIdSchema } from "../models/model-id.js";
import { printableText } from "./printable-text.js";

/**
 * The contributor channel: one WebSocket per tab at /v1/nodes/connect. Every frame is JSON with a
 * `type`; both directions are parsed with these schemas (safeParse) and a frame that does not match
 * closes the socket with `CloseCode.BadFrame`. The first frame from the tab must be `hello` and
 * carries the protocol version.
 */

/** Limit on a frame a tab sends, in UTF-8 bytes; larger frames close the socket (FrameTooLarge). */
export const MAX_FRAME_BYTES = 256 * 1024;

export const NodeMessageType = {
  // tab -> coordinator
  Hello: "hello",
  Status: "status",
  JobAccept: "job.accept",
  JobDelta: "job.delta",
  /** Protocol 7 (`CHECKPOINT_SINCE_PROTOCOL`): text in batches while the caller reads directly. */
  JobCheckpoint: "job.checkpoint",
  JobProgress: "job.progress",
  JobVectors: "job.vectors",
  JobDone: "job.done",
  /** Since the logprobs work: sent only for jobs that ask (shared/protocol/logprobs.ts). */
  JobLogprobs: "job.logprobs",
  JobError: "job.error",
  // coordinator -> tab
  Challenge: "challenge",
  Welcome: "welcome",
  JobAssign: "job.assign",
  JobCancel: "job.cancel",
  JobCredit: "job.credit",
  // The tab's trust state (protocol 3; docs/trust.md).
  Trust: "trust",
  // Protocol 3 (`BALANCE_SINCE_PROTOCOL`): the identity's balance in the coordinator's ledger.
  CreditBalance: "credit.balance",
  JobResend: "job.resend",
  // Audits (protocol 1, added with docs/trust.md; older tabs never receive them unasked).
  AuditAssign: "audit.assign",
  AuditResult: "audit.result",
} as const;

/** The tab's WebGPU adapter as the browser reports it; GET /v1/nodes shows the strings. */
export const AdapterInfoSchema = z.object({
  vendor: printableText(200),
  architecture: printableText(200),
  description: printableText(500),
  shaderF16: z.boolean(),
  maxBufferSize: z.number().nonnegative(),
  maxStorageBufferBindingSize: z.number().nonnegative(),
});
export type AdapterInfo = z.infer<typeof AdapterInfoSchema>;

/**
 * What the tab knows about its GPU beyond the adapter: the class from shared/gpu/classify.ts and,
 * when it ran, the WGSL micro-benchmark it measured (not a typical figure).
 */
export const HelloGpuSchema = z.object({
  class: z.enum(["high", "mid", "entry", "integrated", "mobile", "software", "unknown"]),
  profile: z.string().max(100).nullable(),
  benchmark: z
    .object({
      matmulGflops: z.number().nonnegative(),
      bandwidthGBs: z.number().nonnegative(),
      durationMs: z.number().nonnegative(),
    })
    .optional(),
});
export type HelloGpu = z.infer<typeof HelloGpuSchema>;

/** What a tab is doing right now, as it reports it. */
export const NodeStateSchema = z.enum(["loading", "idle", "busy", "paused"]);
export type NodeState = z.infer<typeof NodeStateSchema>;

/**
 * The models a tab serves. The listings publish these names as model ids, so each must be one
 * (shared/models/model-id.ts); a name that is not closes the socket (BadFrame) like any frame
 * outside its schema.
 */
const modelList = z.array(ModelIdSchema).max(32);

// ---- tab -> coordinator -------------------------------------------------------------------------

/** First frame: who the tab is and what it can serve. */
export const HelloSchema = z.object({
  type: z.literal(NodeMessageType.Hello),
  protocol: z.number().int().positive(),
  /**
   * Stable identity across reconnects: honoured only together with a valid `identity` proof
   * (see node-identity.ts); otherwise the coordinator assigns a fresh id for this connection.
   */
  nodeId: z.string().min(8).max(64).optional(),
  identity: z
    .object({
      /** SPKI of the tab's ECDSA P-256 public key, base64url. */
      publicKey: z.string().min(40).max(200),
      /** Signature of challengeText(nonce), base64url (IEEE P1363, 64 bytes). */
      signature: z.string().min(40).max(200),
    })
    .optional(),
  adapter: AdapterInfoSchema,
  /** Models loaded and ready to serve. */
  models: modelList,
  state: NodeStateSchema,
  /** Software name and version, for the node list. */
  agent: printableText(100),
  /** Optional: the tab's GPU class and WGSL benchmark (shared/gpu), for the scheduler. */
  gpu: HelloGpuSchema.optional(),
});

/** Sent on every state change and as a heartbeat. */
export const StatusSchema = z.object({
  type: z.literal(NodeMessageType.Status),
  state: NodeStateSchema,
  models: modelList,
  /**
   * Optional, why the state changed, in plain words: "on battery", "device_lost: reloading the
   * model", "backing off: throttling". For the node list and logs; the scheduler may ignore it.
   */
  reason: z.string().max(200).optional(),
});

export const JobAcceptSchema = z.object({
  type: z.literal(NodeMessageType.JobAccept),
  jobId: z.string().min(1).max(64),
});

/** A coalesced piece of generated text; `seq` counts deltas of this job from 0. */
export const JobDeltaSchema = z.object({
  type: z.literal(NodeMessageType.JobDelta),
  jobId: z.string().min(1).max(64),
  seq: z.number().int().nonnegative(),
  text: z.string().max(64 * 1024),
  /**
   * Since protocol 4 (`RESEND_SINCE_PROTOCOL`): where `text` starts in this attempt's answer, in
   * UTF-16 code units. The coordinator keeps what is new past the text it holds, and asks with
   * `job.resend` when a delta starts past it (text lost with an evicted object's unwritten batch).
   */
  offset: z.number().int().nonnegative().optional(),
});

/** Most UTF-16 units of text in one checkpoint (a frame stays far below MAX_FRAME_BYTES). */
export const MAX_CHECKPOINT_CHARS = 64 * 1024;

/**
 * Protocol 7 (`CHECKPOINT_SINCE_PROTOCOL`), the relay-light direct path: while the job's caller
 * receives every piece over the WebRTC data channel, the tab sends the coordinator the same text
 * in batches — every K tokens or T ms — instead of a coalesced `job.delta` every 50 ms. The batch
 * is what the coordinator keeps, relays, audits and bills (`offset` as on job.delta: where `text`
 * starts in this attempt's answer, UTF-16 units); `sha256` is the lowercase hex SHA-256 of `text`'s
 * UTF-8 bytes, and a checkpoint whose hash does not match its text is refused as the tab's fault.
 */
export const JobCheckpointSchema = z.object({
  type: z.literal(NodeMessageType.JobCheckpoint),
  jobId: z.string().min(1).max(64),
  offset: z.number().int().nonnegative(),
  text: z.string().min(1).max(MAX_CHECKPOINT_CHARS),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});
export type JobCheckpoint = z.infer<typeof JobCheckpointSchema>;

/**
 * The tab is still working on an accepted job before its first token (prefill takes a minute on a
 * slow GPU): sent about every half status interval from accept to the first delta, so the lease
 * knows the tab is alive. Since protocol 2 (`PROGRESS_SINCE_PROTOCOL`); a tab sends it only to a
 * coordinator whose `welcome` says it speaks 2 or later, since older ones close on unknown frames.
 */
export const JobProgressSchema = z.object({
  type: z.literal(NodeMessageType.JobProgress),
  jobId: z.string().min(1).max(64),
  phase: z.enum(["prefill"]),
});

/**
 * Part of an embedding job's answer (protocol 3): `vectors[i]` is the vector of input `index + i`,
 * base64 of little-endian float32 (embedding-vectors.ts). A tab sends them in order, as many per
 * frame as fit under MAX_FRAME_BYTES, then `job.done`. The coordinator checks each one (count,
 * length, finite values); anything else is the tab's fault and the job moves to another tab.
 */
export const JobVectorsSchema = z.object({
  type: z.literal(NodeMessageType.JobVectors),
  jobId: z.string().min(1).max(64),
  index: z.number().int().nonnegative().max(MAX_EMBEDDING_INPUTS),
  vectors: z.array(z.string().max(MAX_VECTOR_BASE64)).min(1).max(MAX_EMBEDDING_INPUTS),
});

export const JobDoneSchema = z.object({
  type: z.literal(NodeMessageType.JobDone),
  jobId: z.string().min(1).max(64),
  finishReason: FinishReasonSchema,
  usage: UsageSchema,
  /**
   * Since protocol 4: the length of this attempt's answer the tab sent (UTF-16 code units). A
   * coordinator that holds less asks for the rest (`job.resend`) before it finishes the job.
   */
  chars: z.number().int().nonnegative().optional(),
  /** Decode speed the tab measured for this job, tokens per second. */
  decodeTokensPerSecond: z.number().nonnegative().optional(),
  /**
   * After a failover: how many tokens the `continueFrom` text was for this tab's tokenizer (it
   * prefilled them). `usage.completion_tokens` counts only the tokens it generated; the
   * coordinator adds this, bounded by the text (usage-bounds.ts), for the whole answer's usage.
   */
  continuedTokens: z.number().int().nonnegative().max(1e7).optional(),
  /**
   * Protocol 5: the tab's time from starting the job to its first token (its prefill), in ms. A
   * claim: the coordinator never lets it exceed the time to first token it measured itself.
   */
  prefillMs: z.number().nonnegative().max(3_600_000).optional(),
  /**
   * The tab's state once this job is off its hands (e.g. "paused" when its GPU share makes it
   * rest); absent means idle. Saves a race with the status frame that follows.
   */
  state: NodeStateSchema.optional(),
});

export const JobErrorFrameSchema = z.object({
  type: z.literal(NodeMessageType.JobError),
  jobId: z.string().min(1).max(64),
  error: JobErrorSchema,
  /** As in job.done: the tab's state after this job; absent means idle. */
  state: NodeStateSchema.optional(),
});

/** Most tokens an audit re-scores (the coordinator caps what it asks; see shared/trust). */
export const MAX_AUDIT_TOKENS = 1024;

/**
 * Tab → coordinator: the answer to `audit.assign`. `tokenLogprobs` are the natural-log
 * probabilities of each claimed token under this tab's model (teacher forced); `stopLogprob` of
 * ending right after the answer, when asked. A tab that could not score says why in `error`.
 */
export const AuditResultSchema = z.object({
  type: z.literal(NodeMessageType.AuditResult),
  auditId: z.string().min(1).max(64),
  tokenLogprobs: z.array(z.number().max(0).min(-1e4)).max(MAX_AUDIT_TOKENS),
  stopLogprob: z.number().max(0).min(-1e4).nullable(),
  /**
   * How many tokens the whole answer it was sent is, by the verifier's tokenizer (however many it
   * scored; the stop token not counted): the coordinator compares it with the audited tab's
   * completion-token count (shared/trust/token-counts.ts). Optional: a tab from before it sends
   * none and the count is then not judged, so no protocol version gates it (an older coordinator's
   * schema strips it).
   */
  answerTokens: z.number().int().nonnegative().max(1e7).optional(),
  /**
   * Since protocol 10, for an audit of a job that asked for logprobs, scored from the answer's
   * start: each scored token's entry as WebLLM would have reported it (`ReportedLogprobSchema`),
   * one per `tokenLogprobs` value. The coordinator confirms the serving tab's claimed logprobs by
   * them. Absent from an older page: the claim is then left unconfirmed.
   */
  reported: z.array(ReportedLogprobSchema).max(MAX_AUDIT_TOKENS).optional(),
  error: JobErrorSchema.optional(),
  /** As in job.done: the tab's state after the audit; absent means idle. */
  state: NodeStateSchema.optional(),
});

export const TabMessageSchema = z.discriminatedUnion("type", [
  HelloSchema,
  StatusSchema,
  JobAcceptSchema,
  JobDeltaSchema,
  JobCheckpointSchema,
  JobProgressSchema,
  JobVectorsSchema,
  JobDoneSchema,
  JobErrorFrameSchema,
  AuditResultSchema,
  JobLogprobsSchema,
]);
export type TabMessage = z.infer<typeof TabMessageSchema>;
export type Hello = z.infer<typeof HelloSchema>;

// ---- coordinator -> tab -------------------------------------------------------------------------

/** First frame from the coordinator: the nonce the tab signs to prove its identity in `hello`. */
export const ChallengeSchema = z.object({
  type: z.literal(NodeMessageType.Challenge),
  nonce: z.string().min(16).max(100),
});

export const WelcomeSchema = z.object({
  type: z.literal(NodeMessageType.Welcome),
  protocol: z.number().int().positive(),
  nodeId: z.string(),
  /**
   * The liveness interval: the tab sends PING_FRAME every half interval and `status` at least
   * every interval; a tab silent for 1.5 intervals (three missed pings) is marked gone, so a
   * vanished tab is detected within 2 intervals.
   */
  statusIntervalMs: z.number().int().positive(),
});

/**
 * Assign a job. After a failover `continueFrom` holds the assistant text the client already
 * received: the tab continues right after it and its deltas carry only new text. `max_tokens` is
 * then what the earlier text left of the client's budget, and like the `completion_tokens` the tab
 * reports in `job.done` it counts only the tokens this tab generates (the delivered text is
 * prefilled, as WebLLM counts it); the coordinator adds the earlier text's tokens itself.
 */
export const JobAssignSchema = z.object({
  type: z.literal(NodeMessageType.JobAssign),
  job: JobSpecSchema,
  /** 1 for the first tab, 2 and 3 for replacements. */
  attempt: z.number().int().positive(),
  continueFrom: z.string().optional(),
  /**
   * Protocol 3: the tab is busy and the coordinator queues this job behind its running one; the
   * tab holds it (at most one) and starts it, with `job.accept`, the moment the running job ends.
   */
  queued: z.boolean().optional(),
  /**
   * Protocol 8, with `continueFrom`: the client's `max_tokens` for the whole answer. The tab counts
   * `continueFrom`'s tokens with its model's tokenizer and writes at most this many minus that
   * count (none when the count reaches it: it finishes with "length"), reporting the count as
   * `continuedTokens` in `job.done`. `job.sampling.max_tokens` stays the coordinator's own bound
   * (one token per delivered byte; usage-bounds.ts), for a tab that cannot count. The tab's count
   * is a claim: the coordinator clamps it into the delivered text's bounds, and the whole answer
   * into max_tokens' bytes, as for any tab's (edge/region/answer-budget.ts).
   */
  answerMaxTokens: z.number().int().positive().optional(),
});

export const JobCancelSchema = z.object({
  type: z.literal(NodeMessageType.JobCancel),
  jobId: z.string(),
  reason: z.string().max(200),
});

/**
 * Credit for a finished job, as the coordinator counts it: one credit per completion token this
 * tab generated for the client (a failover's earlier text belongs to the tabs that wrote it; tabs
 * whose attempt failed earn nothing). Sent after job.done; the tab records it in its ledger.
 */
export const JobCreditSchema = z.object({
  type: z.literal(NodeMessageType.JobCredit),
  jobId: z.string(),
  credit: z.number().nonnegative(),
});

/**
 * The identity's account in the coordinator's credit ledger (edge/credits, docs/credits.md): sent
 * after `welcome`, after each credited job and after credit is taken back, only to tabs that speak
 * `BALANCE_SINCE_PROTOCOL`. `earned` counts every credit earned less what was taken back, `spent`
 * what a linked API key spent on priority, `withheld` what was not added while the identity was
 * quarantined; `balance` = earned − spent.
 */
export const CreditBalanceSchema = z.object({
  type: z.literal(NodeMessageType.CreditBalance),
  balance: z.number(),
  earned: z.number().nonnegative(),
  spent: z.number().nonnegative(),
  withheld: z.number().nonnegative(),
  /**
   * Credit taken back for token counts two verifiers confirmed inflated, and the latest one's
   * reason in words (optional: coordinators before it send neither, and older tabs drop them).
   */
  takenBack: z.number().nonnegative().optional(),
  lastTakeBack: printableText(500).optional(),
  /** Credit is withheld from this identity now (quarantined). */
  quarantined: z.boolean(),
  /** Whether an API key is linked to this identity (its id is the key holder's business). */
  linked: z.boolean(),
});
export type CreditBalance = z.infer<typeof CreditBalanceSchema>;

/**
 * Coordinator → tab, protocol 4: "I hold this job's answer up to `offset`" (UTF-16 code units of
 * this attempt's text). The tab sends the rest again as `job.delta` frames from that offset (each
 * within JobDeltaSchema's bound), and, if it had already finished the job, its `job.done` again. Sent when a delta or a job.done shows the
 * coordinator lost a batch it had not yet written (docs/performance.md).
 */
export const JobResendSchema = z.object({
  type: z.literal(NodeMessageType.JobResend),
  jobId: z.string(),
  offset: z.number().int().nonnegative(),
});

/**
 * Coordinator → tab: re-score another tab's answer (an audit; docs/trust.md). The tab reads
 * `input` as for a job and is teacher-forced through `answer`, recording each claimed token's
 * log-probability (InferenceEngine.score). `seed` is the coordinator's. Like a job, one at a time.
 */
export const AuditAssignSchema = z.object({
  type: z.literal(NodeMessageType.AuditAssign),
  auditId: z.string().min(1).max(64),
  model: z.string().min(1).max(200),
  input: TextJobInputSchema,
  sampling: SamplingSchema,
  answer: z.string(),
  /**
   * Since protocol 9: the audited answer's text before `answer`, which the verifier reads as the
   * start of the reply (prefilled, not scored) before scoring `answer`'s tokens — so an audit can
   * look at any window of a long answer, not only its first `maxTokens` tokens.
   */
  prefix: z.string().optional(),
  seed: z.number().int(),
  scoreStop: z.boolean(),
  maxTokens: z.number().int().positive().max(MAX_AUDIT_TOKENS),
});
export type AuditAssign = z.infer<typeof AuditAssignSchema>;

/**
 * Coordinator → tab: this tab's identity's trust state (docs/trust.md), sent after `welcome` and
 * whenever it changes (a quarantine, its release, a finished job, an audit of its answers), so the
 * contributor page can say in plain words where the tab stands and, when quarantined, since when
 * and why. Since protocol 3 (`TRUST_SINCE_PROTOCOL`); older tabs ignore frames they cannot parse.
 */
export const TrustNoticeSchema = z.object({
  type: z.literal(NodeMessageType.Trust),
  state: z.enum(["probation", "trusted", "quarantined"]),
  /** Jobs this identity finished for clients, and how many it needs to leave probation. */
  jobs: z.number().int().nonnegative(),
  probationJobs: z.number().int().nonnegative(),
  /** Things it did that the coordinator rejected (errors, overlong answers, inflated usage, …). */
  faults: z.number().int().nonnegative(),
  /** Re-scoring audits of its answers by other tabs. */
  audits: z.object({
    passed: z.number().int().nonnegative(),
    failed: z.number().int().nonnegative(),
  }),
  /** When quarantined: since when (ms since the epoch) and the coordinator's reason. */
  quarantinedAt: z.number().int().nonnegative().optional(),
  reason: z.string().max(500).optional(),
});
export type TrustNotice = z.infer<typeof TrustNoticeSchema>;

export const CoordinatorMessageSchema = z.discriminatedUnion("type", [
  ChallengeSchema,
  WelcomeSchema,
  JobAssignSchema,
  JobCancelSchema,
  JobCreditSchema,
  CreditBalanceSchema,
  JobResendSchema,
  AuditAssignSchema,
  TrustNoticeSchema,
]);
export type CoordinatorMessage = z.infer<typeof CoordinatorMessageSchema>;

/**
 * Keep-alive: the tab sends exactly this text and the coordinator's WebSocket auto-response answers
 * `PONG_FRAME` without waking a hibernated Durable Object.
 */
export const PING_FRAME = '{"type":"ping"}';
export const PONG_FRAME = '{"type":"pong"}';

/**
 * Parse one text frame of the contributor channel; returns a typed message or a readable reason for
 * the close frame. Frames a tab sends (TabMessageSchema) are limited to MAX_FRAME_BYTES in UTF-8
 * bytes (`tooLarge` when over; see frames.ts). Frames the coordinator sends are not: a `job.assign`
 * carries the whole request, which the HTTP body limit (1 MB) already bounds.
 */
export function parseFrame<T>(schema: z.ZodType<T>, raw: string | ArrayBuffer): FrameResult<T> {
  const inbound = (schema as z.ZodType) === TabMessageSchema;
  return parseFrameWithin(schema, raw, inbound ? MAX_FRAME_BYTES : Number.POSITIVE_INFINITY);
}
