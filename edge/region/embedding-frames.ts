import type { Audits } from "./audits.js";
import type { EmbeddingAnswers } from "./embedding-answers.js";
import type { JobLeases } from "./job-leases.js";
import type { JobStore } from "./job-store.js";
import type { JobTransitions } from "./job-transitions.js";
import type { Placement } from "./placement.js";
import type { RegionReport } from "./region-report.js";
import type { TabFrame } from "./tab-channel.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import { boundUsage } from "./usage-bounds.js";

export interface EmbeddingFramesDeps {
  jobs: JobStore;
  /** Vectors of embedding jobs (embedding-answers.ts). */
  embeddings: EmbeddingAnswers;
  placement: Placement;
  leases: JobLeases;
  trust: TabTrust;
  report: RegionReport;
  /** Embedding audits: a keyed sample of finished jobs is re-embedded elsewhere (audits.ts). */
  verify?: { audits: Pick<Audits, "afterJob"> };
  /** How the job moves on or ends (job-machine.ts). */
  machine: Pick<
    JobTransitions,
    "isCurrent" | "redispatch" | "finish" | "offerWork" | "falseInvalidReports"
  >;
}

/**
 * The serving tab's frames of an embedding job, whose answer is vectors (embedding-answers.ts
 * checks and keeps them): `job.vectors`, its `job.done`, and the fault of any other answer. The
 * job machine hands these frames here; the job's state changes through its transitions.
 */
export class EmbeddingFrames {
  constructor(private readonly d: EmbeddingFramesDeps) {}

  async onVectors(tab: TabRecord, msg: Extract<TabFrame, { type: "job.vectors" }>) {
    const row = this.d.machine.isCurrent(tab, msg.jobId) ? this.d.jobs.get(msg.jobId) : undefined;
    if (!row) {
      this.d.trust.rejections.note(tab.publicId, "vectors for a job not running on this tab", {
        jobId: msg.jobId,
        index: msg.index,
      });
      return;
    }
    const refused = this.d.embeddings.add(this.d.jobs.spec(row), tab.tabId, msg);
    if (refused) return this.embeddingFault(tab, msg.jobId, refused);
    this.d.jobs.markStreaming(msg.jobId);
    await this.d.leases.extend(msg.jobId);
  }

  /**
   * `job.done` of an embedding job: finished only with one valid vector per input from this tab;
   * usage is the coordinator's bound on the inputs' tokens (no completion tokens). It may be
   * sampled for an embedding audit (audits.ts). No credit or canary: those measure generated text.
   */
  async embeddingDone(tab: TabRecord, msg: Extract<TabFrame, { type: "job.done" }>) {
    const { jobs, placement, machine } = this.d;
    const current = machine.isCurrent(tab, msg.jobId);
    // As for a chat job: a job queued behind this one starts now (placement.release).
    if (tab.jobId === msg.jobId) await placement.release(tab, msg.state ?? "idle");
    const row = current ? jobs.get(msg.jobId) : undefined;
    if (row && msg.finishReason === "abort") {
      this.d.trust.fault(tab, "stopped a job on its own", { jobId: msg.jobId });
      await machine.redispatch(msg.jobId, {
        code: "node_gone",
        message: "the serving tab stopped",
      });
    } else if (row) {
      const spec = jobs.spec(row);
      const missing = this.d.embeddings.complete(spec, tab.tabId);
      if (missing) {
        await this.embeddingFault(tab, msg.jobId, missing);
      } else {
        const bounded = boundUsage({ ...msg.usage, completion_tokens: 0 }, spec, "");
        if (bounded.inflated) {
          this.d.trust.fault(tab, "usage outside what the coordinator observed", {
            jobId: msg.jobId,
            reported: msg.usage,
            counted: bounded.usage,
          });
        }
        this.d.trust.jobDone(tab.tabId);
        tab.jobsServed += 1;
        await machine.falseInvalidReports(row, tab);
        await machine.finish(msg.jobId, { finishReason: "stop", usage: bounded.usage });
        this.d.verify?.audits.afterJob(tab, msg.jobId);
      }
    }
    await this.d.report.soon(false);
    return machine.offerWork(tab);
  }

  /** A tab's embedding answer broke the rules: its fault, and the job moves to another tab. */
  async embeddingFault(tab: TabRecord, jobId: string, why: string): Promise<void> {
    if (!this.d.machine.isCurrent(tab, jobId)) return;
    this.d.trust.fault(tab, `embedding answer refused: ${why}`, { jobId });
    this.d.placement.recordFailure(tab.tabId);
    await this.d.machine.redispatch(jobId, {
      code: "engine_error",
      message: `the serving tab's answer was refused (${why})`,
    });
  }
}
