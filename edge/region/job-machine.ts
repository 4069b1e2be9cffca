import { log } from "../http/log.js";
import type { JobError, JobErrorCode } from "../../shared/protocol/job.js";
import { retryAfterSeconds } from "../../shared/scheduling/wait-queue.js";
import type { JobLeases } from "./job-leases.js";
import type { JobReaders } from "./job-readers.js";
import { TERMINAL_STATES, type JobStore } from "./job-store.js";
import type { Placed, Placement } from "./placement.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionReport } from "./region-report.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TabChannel, TabEvent, TabFrame } from "./tab-channel.js";
import type { TabLearning } from "./tab-learning.js";
import type { TabRecord } from "./tab-registry.js";
import type { TimerTable } from "./timer-table.js";
import type { Audits } from "./audits.js";
import type { Canaries } from "./canaries.js";
import type { Reputation } from "./reputation.js";

/** Failures another tab may fix; the rest end the job at once. */
const RETRYABLE: ReadonlySet<JobErrorCode> = new Set([
  "engine_error",
  "device_lost",
  "node_gone",
  "model_not_served",
  "internal",
  // A tab refusing a job it was offered (it had just paused): another tab, or the queue, takes it.
  "no_capacity",
]);

export interface JobMachineDeps {
  jobs: JobStore;
  readers: JobReaders;
  channel: TabChannel;
  placement: Placement;
  learning: TabLearning;
  leases: JobLeases;
  timers: TimerTable<RegionTimer>;
  report: RegionReport;
  config: RegionConfig;
  /** Verification (docs/trust.md): audits, canaries and per-identity reputation. */
  trust?: { reputation: Reputation; audits: Audits; canaries: Canaries };
}

/**
 * Every change of a job's state after it was written: accepted, streaming, done, failed, cancelled,
 * moved to another tab (redispatch) and settled (timers dropped, expiry armed) — whether the cause
 * is a tab's frame, a tab leaving, a client cancelling or a timer running out. Where a job goes is
 * Placement's part; this decides when it moves and what the client is told.
 */
export class JobMachine {
  constructor(private readonly d: JobMachineDeps) {}

  /** After eviction: jobs whose tab vanished move on; timers lost with memory are re-armed. */
  async restore(): Promise<void> {
    const { jobs, timers, channel, placement } = this.d;
    for (const tab of channel.tabs.all()) placement.syncTab(tab);
    for (const row of jobs.active()) {
      // No reader survives eviction; the Worker re-subscribes at once, a client may resume.
      if (!timers.has(jobTimer("detach", row.id))) {
        const grace = Math.max(row.detach_grace_ms, 2000);
        await timers.set(jobTimer("detach", row.id), Date.now() + grace);
      }
      if (row.node_id && !channel.tabs.get(row.node_id)) {
        await this.redispatch(row.id, { code: "node_gone", message: "the serving tab left" });
      } else if (row.state === "queued" && !timers.has(jobTimer("wait", row.id))) {
        await timers.set(jobTimer("wait", row.id), Date.now() + this.d.config.queueWaitMs);
      }
    }
  }

  /** What the tab channel saw, forwarded by the Durable Object. */
  async onTabEvent(event: TabEvent): Promise<void> {
    switch (event.type) {
      case "joined":
        this.d.placement.syncTab(event.tab);
        await this.d.report.soon(true);
        await this.offerWaiting(event.tab);
        return this.d.trust?.audits.dispatch();
      case "left":
        return this.tabLeft(event.tab, event.why);
      case "frame":
        return this.onFrame(event.tab, event.msg);
      default: {
        const unreachable: never = event;
        return unreachable;
      }
    }
  }

  async tabLeft(tab: TabRecord, why: string): Promise<void> {
    this.d.channel.forget(tab);
    this.d.placement.forgetTab(tab.tabId);
    this.d.trust?.audits.tabLeft(tab);
    log("info", "tab left", { tab: tab.publicId, why });
    const row = tab.jobId ? this.d.jobs.get(tab.jobId) : undefined;
    if (row && row.node_id === tab.tabId && !TERMINAL_STATES.has(row.state)) {
      await this.redispatch(row.id, {
        code: "node_gone",
        message: `the serving tab left (${why})`,
      });
    }
    await this.d.report.soon(true);
  }

  /** A job was just put on a tab (or not): a tab whose socket is gone has left. */
  async placed(placed: Placed): Promise<void> {
    if (placed && !placed.sent) await this.tabLeft(placed.tab, "socket closed");
  }

  async cancel(jobId: string, reason: string): Promise<void> {
    const row = this.d.jobs.get(jobId);
    if (!row || !this.d.jobs.cancel(jobId)) return;
    this.d.readers.push(jobId, { type: "error", error: { code: "cancelled", message: reason } });
    const tab = row.node_id ? this.d.channel.tabs.get(row.node_id) : undefined;
    // The tab stays bound until it confirms with job.done(abort), so it gets no new job while its
    // engine is still stopping.
    if (tab && tab.jobId === jobId) this.d.channel.send(tab, { type: "job.cancel", jobId, reason });
    await this.settle(jobId);
    log("info", "job cancelled", { jobId, reason });
  }

  // ---- timers (one handler per kind; region-alarms.ts routes them here) ----------------------

  async onLeaseDue(jobId: string): Promise<void> {
    const row = this.d.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state) || !row.node_id) return;
    if (!(await this.d.leases.expired(jobId, row.state === "streaming"))) return;
    this.d.placement.recordFailure(row.node_id);
    const message =
      row.state === "assigned"
        ? "the tab did not accept the job in time"
        : "the tab stopped sending tokens";
    await this.redispatch(jobId, { code: "node_gone", message });
  }

  async onWaitDue(jobId: string): Promise<void> {
    const row = this.d.jobs.get(jobId);
    if (row?.state !== "queued") return;
    if (row.attempts === 0) {
      await this.endWithError(jobId, {
        code: "no_capacity",
        message: `No tab serving '${row.model}' became free in time; retry later.`,
        retryAfterS: retryAfterSeconds(this.d.config.queueRetryAfterMs),
      });
    } else {
      await this.endWithError(jobId, {
        code: (row.error_code ?? "node_gone") as JobErrorCode,
        message: `${row.error_message ?? "the serving tab left"}; no other tab could take over in time`,
      });
    }
  }

  async onDetachDue(jobId: string): Promise<void> {
    if (this.d.readers.count(jobId) === 0) await this.cancel(jobId, "client went away");
  }

  onExpireDue(jobId: string): void {
    this.d.jobs.delete(jobId);
  }

  // ---- frames from the serving tab -----------------------------------------------------------

  private async onFrame(tab: TabRecord, msg: TabFrame): Promise<void> {
    const { jobs, placement, readers, report } = this.d;
    const trust = this.d.trust;
    if (trust && "jobId" in msg && trust.canaries.owns(msg.jobId)) {
      trust.canaries.onFrame(tab, msg);
      return this.afterTrust(tab);
    }
    switch (msg.type) {
      case "audit.result":
        trust?.audits.onResult(tab, msg);
        return this.afterTrust(tab);
      case "status": {
        // A tab reporting idle is done with a job that was taken from it (moved or cancelled).
        const free = msg.state === "idle" && tab.jobId && !this.isCurrent(tab, tab.jobId);
        const modelsChanged = msg.models.join() !== tab.models.join();
        placement.updateTab(tab, {
          state: msg.state,
          models: msg.models,
          jobId: free ? null : tab.jobId,
        });
        await report.soon(modelsChanged);
        if (!tab.jobId && tab.state === "idle") await this.offerWaiting(tab);
        return;
      }
      case "job.accept":
        if (this.isCurrent(tab, msg.jobId)) {
          this.d.learning.noteRtt(tab);
          jobs.markStreaming(msg.jobId);
          await this.d.leases.arm(msg.jobId, this.d.config.leaseMs);
        }
        return;
      case "job.delta":
        if (!jobs.appendDelta(msg.jobId, tab.tabId, msg.seq, msg.text)) {
          log("warn", "delta dropped (stale attempt, duplicate or out of order)", {
            jobId: msg.jobId,
            seq: msg.seq,
          });
          return;
        }
        if (msg.seq === 0) jobs.markFirstToken(msg.jobId, Date.now());
        readers.push(msg.jobId, { type: "delta", text: msg.text });
        await this.d.leases.extend(msg.jobId);
        return;
      case "job.done": {
        const current = this.isCurrent(tab, msg.jobId);
        const finished = current && msg.finishReason !== "abort";
        if (finished) this.d.learning.observe(tab, msg.jobId, msg.usage);
        if (tab.jobId === msg.jobId) {
          if (finished) tab.jobsServed += 1;
          placement.updateTab(tab, { jobId: null, state: msg.state ?? "idle" });
        }
        if (current && msg.finishReason === "abort") {
          // The tab stopped on its own (paused by its owner): another tab continues.
          await this.redispatch(msg.jobId, {
            code: "node_gone",
            message: "the serving tab stopped",
          });
        } else if (current) {
          // A quarantined identity's credit is withheld.
          const credit = trust?.reputation.isQuarantined(tab.tabId)
            ? null
            : this.d.learning.credit(tab, msg.jobId, msg.usage.completion_tokens);
          if (credit !== null)
            this.d.channel.send(tab, { type: "job.credit", jobId: msg.jobId, credit });
          jobs.finish(msg.jobId, msg.finishReason, msg.usage);
          readers.push(msg.jobId, {
            type: "done",
            finishReason: msg.finishReason,
            usage: msg.usage,
          });
          await this.settle(msg.jobId);
          trust?.audits.afterJob(tab, msg.jobId);
          if (trust?.canaries.afterJob(tab)) return;
        }
        await report.soon(false);
        await this.offerWaiting(tab);
        return this.afterTrust(tab);
      }
      case "job.error": {
        const current = this.isCurrent(tab, msg.jobId);
        if (tab.jobId === msg.jobId)
          placement.updateTab(tab, { jobId: null, state: msg.state ?? "idle" });
        if (current && RETRYABLE.has(msg.error.code)) {
          if (msg.error.code !== "no_capacity") placement.recordFailure(tab.tabId);
          await this.redispatch(msg.jobId, msg.error);
        } else if (current) {
          await this.endWithError(msg.jobId, msg.error);
        }
        await report.soon(false);
        return this.offerWaiting(tab);
      }
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }

  // ---- transitions -------------------------------------------------------------------------

  /** After verification news: quarantined tabs' jobs move on; the tab and verifiers get work. */
  private async afterTrust(tab: TabRecord): Promise<void> {
    const trust = this.d.trust;
    if (!trust) return;
    for (const tabId of trust.reputation.takeQuarantined()) {
      const bad = this.d.channel.tabs.get(tabId);
      if (!bad) continue;
      this.d.placement.syncTab(bad);
      if (bad.jobId && this.isCurrent(bad, bad.jobId)) {
        await this.redispatch(bad.jobId, {
          code: "node_gone",
          message: "the serving tab was quarantined",
        });
      }
    }
    if (!tab.jobId && tab.state === "idle") await this.offerWaiting(tab);
    trust.audits.dispatch();
  }

  private isCurrent(tab: TabRecord, jobId: string): boolean {
    const row = this.d.jobs.get(jobId);
    return !!row && row.node_id === tab.tabId && !TERMINAL_STATES.has(row.state);
  }

  private async offerWaiting(tab: TabRecord): Promise<void> {
    await this.placed(await this.d.placement.dispatchWaiting(tab));
  }

  /** Move a job whose tab failed to another tab, continuing after the text already delivered. */
  private async redispatch(jobId: string, cause: JobError): Promise<void> {
    const { jobs, timers, channel, config } = this.d;
    const row = jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    await this.d.leases.drop(jobId);
    const previous = row.node_id ? channel.tabs.get(row.node_id) : undefined;
    if (previous && previous.jobId === jobId) {
      channel.send(previous, { type: "job.cancel", jobId, reason: "job moved to another tab" });
    }
    jobs.requeue(jobId, cause);
    if (row.attempts >= config.maxAttempts) {
      await this.endWithError(jobId, {
        code: cause.code,
        message: `${cause.message}; gave up after ${row.attempts} attempts`,
      });
      return;
    }
    log("info", "job failing over", { jobId, cause: cause.message, delivered: row.text.length });
    const placed = await this.d.placement.tryDispatch(jobId);
    if (!placed && !timers.has(jobTimer("wait", jobId))) {
      await timers.set(jobTimer("wait", jobId), Date.now() + config.redispatchWaitMs);
    }
    await this.placed(placed);
  }

  private async endWithError(jobId: string, error: JobError): Promise<void> {
    if (!this.d.jobs.fail(jobId, error)) return;
    this.d.readers.push(jobId, { type: "error", error });
    await this.settle(jobId);
    log("info", "job failed", { jobId, code: error.code, message: error.message });
  }

  /** A job reached a terminal state: drop its timers and schedule its record's expiry. */
  private async settle(jobId: string): Promise<void> {
    const { timers } = this.d;
    await this.d.leases.drop(jobId);
    await timers.clear(jobTimer("wait", jobId));
    await timers.clear(jobTimer("detach", jobId));
    await timers.set(jobTimer("expire", jobId), Date.now() + this.d.config.jobTtlMs);
  }
}
