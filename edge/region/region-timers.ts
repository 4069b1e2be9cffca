import type { TimerCodec } from "./timer-table.js";

/**
 * Every timer a Region object arms, as a typed value. Stored names keep the format they always had
 * (`lease:<jobId>`, `report`, …) so timers armed before an upgrade still decode; this file is the
 * only place that knows the format.
 */
export type RegionTimer =
  /** An assigned job must be accepted, and a streaming job must keep sending, within its lease. */
  | { kind: "lease"; jobId: string }
  /** A queued job (new or failing over) gives up waiting for a free tab. */
  | { kind: "wait"; jobId: string }
  /** A job whose last reader left is cancelled unless a client resumes it in time. */
  | { kind: "detach"; jobId: string }
  /** A finished job's record (and text) is deleted after its time to live. */
  | { kind: "expire"; jobId: string }
  /** The region's summary is sent to the Directory (idle/busy flips are batched). */
  | { kind: "report" }
  /** A pass over the waiting line, moving jobs another object would start sooner (waiting-moves.ts). */
  | { kind: "moves" }
  /** Silent tabs are swept out. */
  | { kind: "liveness" }
  /** Sockets that never said `hello` are closed after the deadline. */
  | { kind: "hello" }
  /** A verifier that has not answered the audit it was sent by then loses it (audits.ts). */
  | { kind: "audit"; auditId: string }
  /** The credit ledger's outbox is sent again after a failed call (ledger-outbox.ts). */
  | { kind: "ledger" };

export type JobTimerKind = Extract<RegionTimer, { jobId: string }>["kind"];

const JOB_KINDS: ReadonlySet<string> = new Set<JobTimerKind>(["lease", "wait", "detach", "expire"]);

type PlainTimerKind = Exclude<RegionTimer, { jobId: string } | { auditId: string }>["kind"];
/** The timers that are their kind alone (no job or audit): stored as the bare kind. */
const PLAIN_KINDS: ReadonlySet<string> = new Set<PlainTimerKind>([
  "report",
  "moves",
  "liveness",
  "hello",
  "ledger",
]);

export const regionTimerCodec: TimerCodec<RegionTimer> = {
  encode(timer) {
    if (timer.kind === "audit") return `audit:${timer.auditId}`;
    return "jobId" in timer ? `${timer.kind}:${timer.jobId}` : timer.kind;
  },
  decode(name) {
    if (PLAIN_KINDS.has(name)) return { kind: name as PlainTimerKind };
    const colon = name.indexOf(":");
    const kind = name.slice(0, colon);
    const jobId = name.slice(colon + 1);
    if (kind === "audit" && jobId) return { kind, auditId: jobId };
    if (colon < 0 || !JOB_KINDS.has(kind) || !jobId) return null;
    return { kind: kind as JobTimerKind, jobId };
  },
};

/** Shorthand for a job's timer of one kind. */
export function jobTimer(kind: JobTimerKind, jobId: string): RegionTimer {
  return { kind, jobId };
}

/** The deadline of an audit sent to a verifier. */
export function auditTimer(auditId: string): RegionTimer {
  return { kind: "audit", auditId };
}
