import type { JobCheckpoint } from "../../shared/protocol/node-messages.js";
import { sha256Hex } from "../../shared/protocol/sha256.js";

/**
 * The coordinator's check of `job.checkpoint` frames (protocol 7, the relay-light direct path;
 * docs/embed.md). A checkpoint carries a batch of the answer that the caller already received over
 * the WebRTC data channel; once accepted it is stored, relayed and billed exactly like `job.delta`
 * text (job-machine.ts hands it to the same path, so offsets, `job.resend`, failover and the
 * max_tokens bound hold unchanged). Refused, as the tab's fault:
 * - a batch whose SHA-256 is not the one the tab stated (a corrupted or forged frame is never
 *   stored: the client would otherwise be billed for text no tab committed to);
 * - a checkpoint for a job whose caller did not ask for the direct path: batching would only delay
 *   a relay-only client's text.
 */
export class JobCheckpoints {
  /** Whether each job's caller asked for the direct path; its spec never changes. */
  private readonly direct = new Map<string, boolean>();

  constructor(
    /** Whether the job exists and its caller asked for the direct path (one read per job). */
    private readonly isDirect: (jobId: string) => boolean | undefined,
    private readonly maxRemembered = 1000,
  ) {}

  /** Why this checkpoint is refused, or null when its text may be taken. */
  problem(msg: JobCheckpoint): string | null {
    if (sha256Hex(msg.text) !== msg.sha256) return "checkpoint hash does not match its text";
    if (!this.directJob(msg.jobId)) return "checkpoint for a job not read over the direct path";
    return null;
  }

  private directJob(jobId: string): boolean {
    const known = this.direct.get(jobId);
    if (known !== undefined) return known;
    const direct = this.isDirect(jobId);
    // Unknown jobs are not remembered: late frames of an expired job cost one read each, bounded
    // by the socket's frame budget.
    if (direct === undefined) return false;
    // Memory stays bounded: the oldest answer is forgotten (and read again if it ever comes up).
    if (this.direct.size >= this.maxRemembered) {
      const oldest = this.direct.keys().next().value;
      if (oldest !== undefined) this.direct.delete(oldest);
    }
    this.direct.set(jobId, direct);
    return direct;
  }
}
