import type { JobErrorCode } from "../../shared/protocol/job.js";
import type { SlotPort, SlotRef } from "../auth/client-slots.js";
import { log } from "../http/log.js";
import type { JobEvent, SubscribeResult } from "./job-events.js";
import { JobRelay } from "./job-relay.js";
import { TERMINAL_STATES, type JobRow, type JobStore } from "./job-store.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TimerTable } from "./timer-table.js";

/**
 * Who is reading each job: the request that opened it and clients resuming it. Owns the in-memory
 * relay; when a job's last reader leaves it arms the job's `detach` timer (the job keeps running
 * for its resume grace, then the state machine cancels it if nobody came back). A job holds its
 * caller's concurrency slot whether read or not, and lets go of it when it ends — the terminal
 * event every ending job's readers get (edge/auth/client-slots.ts).
 */
export class JobReaders {
  private readonly relay = new JobRelay((jobId) => void this.onDetached(jobId));

  constructor(
    private readonly jobs: JobStore,
    private readonly timers: TimerTable<RegionTimer>,
    /** Where a job's concurrency slot is let go of (absent: jobs hold none, as in unit tests). */
    private readonly slots?: SlotPort,
  ) {}

  /** The first reader of a job that was just written. */
  first(jobId: string): { readerId: string; events: ReadableStream<Uint8Array> } {
    return this.relay.subscribe(jobId, "");
  }

  /** Read a job's events from character `after` of its text (resume after a dropped stream). */
  async subscribe(jobId: string, after: number, owner: string | null): Promise<SubscribeResult> {
    const row = this.visibleJob(jobId, owner);
    if (!row) return { ok: false, error: { code: "job_not_found", message: `No job '${jobId}'.` } };
    // A reader may have more than the object holds: text relayed live from a batch the object
    // lost before writing it, which the tab resends (job-text.ts); that much live text is skipped.
    const from = Math.max(0, after);
    const skip = Math.max(0, from - row.text.length);
    const sub = this.relay.subscribe(jobId, row.text.slice(from), terminalEvent(row), skip);
    if (!TERMINAL_STATES.has(row.state)) await this.timers.clear(jobTimer("detach", jobId));
    return { ok: true, ...sub };
  }

  release(jobId: string, readerId: string): void {
    this.relay.release(jobId, readerId);
  }

  push(jobId: string, event: JobEvent): void {
    this.relay.push(jobId, event);
    if (event.type === "done" || event.type === "error") this.letGoOfSlot(jobId);
  }

  count(jobId: string): number {
    return this.relay.readerCount(jobId);
  }

  /** A job as its owner may see it (jobs without an owner are visible to everyone). */
  visibleJob(jobId: string, owner: string | null): JobRow | undefined {
    const row = this.jobs.get(jobId);
    return row && (row.owner === null || row.owner === owner) ? row : undefined;
  }

  /**
   * The job ended: its caller's slot is let go of now, without waiting for the Client object (a
   * failed call leaves the slot to the Client object's own check: client-do.ts `reclaim`).
   */
  private letGoOfSlot(jobId: string): void {
    const slot = this.jobs.get(jobId)?.slot;
    if (!slot || !this.slots) return;
    const ref = JSON.parse(slot) as SlotRef;
    this.slots.jobEnded(ref, jobId).catch((err: unknown) => {
      log("warn", "letting go of a job's concurrency slot failed", { jobId, error: String(err) });
    });
  }

  private async onDetached(jobId: string): Promise<void> {
    const row = this.jobs.status(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    await this.timers.set(jobTimer("detach", jobId), Date.now() + row.detach_grace_ms);
  }
}

/** The event that ends a finished job's stream for a reader subscribing after the end. */
function terminalEvent(row: JobRow): JobEvent | undefined {
  switch (row.state) {
    case "done":
      return {
        type: "done",
        finishReason: (row.finish_reason ?? "stop") as "stop" | "length",
        usage: {
          prompt_tokens: row.prompt_tokens ?? 0,
          completion_tokens: row.completion_tokens ?? 0,
          total_tokens: (row.prompt_tokens ?? 0) + (row.completion_tokens ?? 0),
        },
      };
    case "failed":
      return {
        type: "error",
        error: {
          code: (row.error_code ?? "internal") as JobErrorCode,
          message: row.error_message ?? "",
        },
      };
    case "cancelled":
      return { type: "error", error: { code: "cancelled", message: "the job was cancelled" } };
    default:
      return undefined;
  }
}
