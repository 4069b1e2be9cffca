import { log } from "../http/log.js";
import type { JobError } from "../../shared/protocol/job.js";
import {
  continuationRequest,
  mayContinueElsewhere,
  remoteCause,
  remoteJobOf,
  remoteNode,
  remoteUsage,
  type RemoteEvent,
  type RemoteJob,
} from "./continuation.js";
import type { JobReaders } from "./job-readers.js";
import { TERMINAL_STATES, type JobRow, type JobStore } from "./job-store.js";
import type { JobTransitions } from "./job-transitions.js";
import type { RegionConfig } from "./region-config.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { RemoteAttempts } from "./remote-attempts.js";
import type { TextDelivery } from "./text-delivery.js";
import type { TimerTable } from "./timer-table.js";

export interface RemoteFollowingDeps {
  jobs: JobStore;
  readers: JobReaders;
  timers: TimerTable<RegionTimer>;
  config: RegionConfig;
  /**
   * Attempts running as continuation jobs on other Region objects (continuation.ts); absent, a job
   * whose tab left waits for a tab of this object only.
   */
  remote?: RemoteAttempts;
  /** A remote attempt's text is taken as a tab's. */
  text: TextDelivery;
  /** How the job moves on or ends (job-machine.ts). */
  machine: Pick<JobTransitions, "redispatch" | "finishHere" | "finish">;
}

/**
 * A job's attempt that runs as a job on another Region object (continuation.ts): opening it there
 * (a failed-over job no tab here can take, or a waiting job moved by waiting-moves.ts), reading
 * its events as if from a tab, and cancelling it. The job stays this object's: what the events
 * mean for it, the job machine decides through its transitions.
 */
export class RemoteFollowing {
  constructor(private readonly d: RemoteFollowingDeps) {
    d.remote?.onEvent((jobId, node, event) => this.onRemoteEvent(jobId, node, event));
  }

  /**
   * No tab here can take the failed-over job now: open its continuation on a sibling shard (then
   * another hint) and read that job as this attempt. True when the job is no longer waiting here
   * (continued elsewhere, or taken or ended meanwhile).
   */
  async continueElsewhere(jobId: string): Promise<boolean> {
    const { jobs, remote } = this.d;
    const row = jobs.get(jobId);
    if (row?.state !== "queued") return true;
    if (!remote || row.attempts === 0 || row.attempts >= this.d.config.maxAttempts) return false;
    if (!mayContinueElsewhere(row, jobs.tried(row))) return false;
    const opened = await remote.open(continuationRequest(jobs, row));
    // The open was a round trip: a tab here may have taken the job, or the client cancelled it.
    if (jobs.get(jobId)?.state !== "queued") {
      if (opened) await remote.discard(opened, row.owner, "the job was taken by another tab");
      return true;
    }
    if (!opened) return false;
    await this.followRemote(jobId, opened);
    log("info", "job continued on another shard", { jobId, remote: opened.jobId });
    return true;
  }

  /**
   * A job waiting in this object's line was opened on another object (waiting-moves.ts): that job
   * is now its attempt, read like a continuation. False when the job no longer waits here (a tab
   * here took it, or the client cancelled, during the open): the remote job is then cancelled.
   */
  async movedWaiting(jobId: string, opened: RemoteJob, owner: string | null): Promise<boolean> {
    const { jobs, remote } = this.d;
    if (!remote) return false;
    if (jobs.get(jobId)?.state !== "queued") {
      await remote.discard(opened, owner, "the job was taken here");
      return false;
    }
    await this.followRemote(jobId, opened);
    log("info", "waiting job moved to another region object", { jobId, remote: opened.jobId });
    return true;
  }

  private async followRemote(jobId: string, opened: RemoteJob): Promise<void> {
    await this.d.timers.clear(jobTimer("wait", jobId));
    this.d.jobs.assign(jobId, remoteNode(opened.jobId));
    this.d.remote?.follow(jobId, opened);
  }

  /** An event of a job's attempt on another object, as if from a tab. */
  private async onRemoteEvent(jobId: string, node: string, event: RemoteEvent): Promise<void> {
    const { jobs, readers, machine } = this.d;
    switch (event.type) {
      case "delta": {
        const at = jobs.position(jobId, node);
        if (!at || !event.text) return;
        if (at.nextSeq === 0) jobs.markStreaming(jobId);
        const ended = this.d.text.takeText(jobId, node, at, event.text);
        if (ended === "over") return machine.finishHere(jobId, "length", "max_tokens");
        if (ended === "stop") return machine.finishHere(jobId, "stop", "a stop sequence");
        return;
      }
      case "logprobs":
        return;
      case "restart": {
        // The remote job's own failover restarted a constrained answer (job-reading.ts); it was
        // moved here empty (the origin restarts those too), so the two texts stay aligned.
        const row = jobs.get(jobId);
        if (row?.node_id !== node || TERMINAL_STATES.has(row.state)) return;
        if (row.attempt_start_chars !== 0) {
          return this.remoteFailed(jobId, node, {
            code: "node_gone",
            message: "the shard continuing the job restarted it",
          });
        }
        jobs.clearText(jobId);
        readers.push(jobId, { type: "restart" });
        return;
      }
      case "done": {
        const row = jobs.get(jobId);
        if (row?.node_id !== node || TERMINAL_STATES.has(row.state)) return;
        if (event.finishReason === "abort") {
          return this.remoteFailed(jobId, node, {
            code: "node_gone",
            message: "the shard continuing the job stopped it",
          });
        }
        // Usage is the remote job's count of the whole answer, held to what this object saw: the
        // client is charged once, for the answer it received.
        const spec = jobs.spec(row);
        const usage = remoteUsage(event.usage, spec, row.text);
        await machine.finish(jobId, {
          finishReason: event.finishReason,
          usage,
          ...(spec.sampling.logprobs ? { logprobs: null } : {}),
        });
        log("info", "job finished on another shard", { jobId, remote: remoteJobOf(node) });
        return;
      }
      case "error":
        return this.remoteFailed(jobId, node, event.error);
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  /**
   * The remote attempt failed (its job failed there after its own failover, or it could not be
   * reached): a tab here may still continue the job; else the client gets the remote job's error,
   * the usual failover error. The job is not moved elsewhere again (mayContinueElsewhere).
   */
  private async remoteFailed(jobId: string, node: string, error: JobError): Promise<void> {
    const row = this.d.jobs.get(jobId);
    if (row?.node_id !== node || TERMINAL_STATES.has(row.state)) return;
    this.d.remote?.stop(jobId);
    await this.d.machine.redispatch(jobId, remoteCause(error), { orFail: true });
  }

  async cancelRemote(row: JobRow, reason: string): Promise<void> {
    if (row.node_id) await this.d.remote?.cancel(row.id, row.node_id, reason, row.owner);
  }
}
