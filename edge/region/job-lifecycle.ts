import { log } from "../http/log.js";
import type { JobErrorCode, JobSpec } from "../../shared/protocol/job.js";
import type { CoordinatorMessage, TabMessage } from "../../shared/protocol/node-messages.js";
import type { AlarmScheduler } from "./alarm-scheduler.js";
import type { JobEvent, OpenJobResult, SubscribeResult } from "./job-events.js";
import { JobRelay } from "./job-relay.js";
import { JobDispatch } from "./job-dispatch.js";
import { JobStore, TERMINAL_STATES, type JobMeta, type JobRow } from "./job-store.js";
import type { NodeRecord, NodeRegistry } from "./node-registry.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionSummary } from "./region-views.js";
import { TabScheduler } from "./tab-scheduler.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import { retryAfterSeconds } from "../../shared/scheduling/wait-queue.js";

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

/**
 * The events in a job's life, as they reach the Region object: a request (match it now or queue
 * it), frames from tabs (accept, deltas, the end, errors), readers coming and going, tabs joining
 * and leaving, and timers — named logical alarms `lease:<job>`, `wait:<job>`, `detach:<job>`,
 * `expire:<job>`, `report` and one `liveness` sweep of the tabs. Where a job goes and what the
 * region records on the way is JobDispatch's part (job-dispatch.ts).
 */
export class JobLifecycle {
  private readonly jobs: JobStore;
  private readonly relay: JobRelay;
  private readonly scheduler: TabScheduler;
  private readonly dispatch: JobDispatch;

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly nodes: NodeRegistry,
    private readonly timers: AlarmScheduler,
    private readonly config: RegionConfig,
    region: RegionHint,
    /** Sends this region's summary to the Directory (models, idle tabs, queue). */
    report: (summary: RegionSummary) => Promise<void>,
  ) {
    this.jobs = new JobStore(ctx.storage.sql);
    this.relay = new JobRelay((jobId) => void this.onDetached(jobId));
    this.scheduler = new TabScheduler(region, 3 * config.statusIntervalMs);
    this.dispatch = new JobDispatch({
      jobs: this.jobs,
      relay: this.relay,
      scheduler: this.scheduler,
      nodes,
      timers,
      config,
      region,
      report,
      onSendFailed: (node) => this.nodeLeft(node, "socket closed"),
    });
  }

  /** The Directory's view of this region, now. */
  summary(): RegionSummary {
    return this.dispatch.summary();
  }

  send(node: NodeRecord, msg: CoordinatorMessage): boolean {
    return this.dispatch.send(node, msg);
  }

  /** After eviction: rebind tabs to their jobs; jobs whose tab vanished move on. */
  async restore(sockets: WebSocket[]): Promise<void> {
    const active = this.jobs.active();
    const byNode = new Map(active.filter((r) => r.node_id).map((r) => [r.node_id as string, r.id]));
    this.nodes.restore(sockets, (nodeId) => byNode.get(nodeId) ?? null);
    for (const node of this.nodes.all()) this.scheduler.sync(node, false);
    for (const row of active) {
      // No reader survives eviction; the Worker re-subscribes at once, a client may resume.
      if (!this.timers.has(`detach:${row.id}`)) {
        await this.timers.set(`detach:${row.id}`, Date.now() + Math.max(row.detach_grace_ms, 2000));
      }
      if (row.node_id && !this.nodes.get(row.node_id)) {
        await this.dispatch.redispatch(row.id, {
          code: "node_gone",
          message: "the serving tab left",
        });
      } else if (row.state === "queued" && !this.timers.has(`wait:${row.id}`)) {
        await this.timers.set(`wait:${row.id}`, Date.now() + this.config.queueWaitMs);
      }
    }
    await this.ensureLiveness();
  }

  visibleJob(jobId: string, owner: string | null): JobRow | undefined {
    const row = this.jobs.get(jobId);
    return row && (row.owner === null || row.owner === owner) ? row : undefined;
  }

  counts(): Record<string, number> {
    return this.jobs.countByState();
  }

  // ---- requests ----------------------------------------------------------------------------

  /**
   * Match a new request to the idle tab expected to answer soonest (within its latency budget).
   * With `queue`, a request no idle tab can take waits in this region's bounded queue instead of
   * being refused; the Worker first tries other regions and the cloud fallback.
   */
  async open(spec: JobSpec, meta: JobMeta, queue: boolean): Promise<OpenJobResult> {
    const now = Date.now();
    const req = this.dispatch.matchRequest(spec.model, meta.match);
    const result = this.scheduler.matchIdle(req, now);
    if (result.kind === "over_budget") {
      return {
        ok: false,
        error: {
          code: "over_budget",
          message: `No tab can answer within the latency budget of ${req.latencyBudgetMs} ms (best estimate ${Math.round(result.best.estimate.objectiveMs)} ms).`,
        },
      };
    }
    const node = result.kind === "match" ? this.nodes.get(result.match.tab.id) : undefined;
    if (node) {
      this.jobs.create(spec, meta);
      const { readerId, events } = this.relay.subscribe(spec.id, "");
      await this.dispatch.assign(spec.id, spec, node, "");
      return { ok: true, jobId: spec.id, nodeId: node.publicId, readerId, events };
    }
    if (!this.nodes.anyServes(spec.model)) {
      return {
        ok: false,
        error: {
          code: "model_not_served",
          message: `No connected tab serves model '${spec.model}'. GET /v1/models lists the models served now.`,
        },
      };
    }
    const retryAfterS = retryAfterSeconds(this.config.queueRetryAfterMs);
    if (!queue) {
      return {
        ok: false,
        error: {
          code: "no_capacity",
          message: `Every tab serving '${spec.model}' is busy; retry shortly.`,
          retryAfterS,
        },
      };
    }
    if (this.jobs.waitingCount() >= this.config.queueCapacity) {
      return {
        ok: false,
        error: {
          code: "queue_full",
          message: `The queue for '${spec.model}' is full; retry later.`,
          retryAfterS,
        },
      };
    }
    this.jobs.create(spec, meta);
    const { readerId, events } = this.relay.subscribe(spec.id, "");
    await this.timers.set(`wait:${spec.id}`, now + this.config.queueWaitMs);
    await this.dispatch.reportSoon(false);
    log("info", "job queued", { jobId: spec.id, waiting: this.jobs.waitingCount() });
    return { ok: true, jobId: spec.id, nodeId: "queued", readerId, events };
  }

  async subscribe(jobId: string, after: number, owner: string | null): Promise<SubscribeResult> {
    const row = this.visibleJob(jobId, owner);
    if (!row) return { ok: false, error: { code: "job_not_found", message: `No job '${jobId}'.` } };
    const sub = this.relay.subscribe(jobId, row.text.slice(Math.max(0, after)), terminalEvent(row));
    if (!TERMINAL_STATES.has(row.state)) await this.timers.clear(`detach:${jobId}`);
    return { ok: true, ...sub };
  }

  release(jobId: string, readerId: string): void {
    this.relay.release(jobId, readerId);
  }

  async cancel(jobId: string, reason: string): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || !this.jobs.cancel(jobId)) return;
    this.relay.push(jobId, { type: "error", error: { code: "cancelled", message: reason } });
    const node = row.node_id ? this.nodes.get(row.node_id) : undefined;
    // The tab stays bound until it confirms with job.done(abort), so it gets no new job while its
    // engine is still stopping.
    if (node && node.jobId === jobId)
      this.dispatch.send(node, { type: "job.cancel", jobId, reason });
    await this.dispatch.settle(jobId);
    log("info", "job cancelled", { jobId, reason });
  }

  // ---- tabs --------------------------------------------------------------------------------

  async nodeJoined(node: NodeRecord): Promise<void> {
    this.scheduler.sync(node, false);
    await this.dispatch.reportSoon(true);
    await this.ensureLiveness();
    await this.dispatch.dispatchWaiting(node);
  }

  async nodeLeft(node: NodeRecord, why: string): Promise<void> {
    this.nodes.remove(node.nodeId);
    this.scheduler.remove(node.nodeId);
    log("info", "node left", { node: node.publicId, why });
    const row = node.jobId ? this.jobs.get(node.jobId) : undefined;
    if (row && row.node_id === node.nodeId && !TERMINAL_STATES.has(row.state)) {
      await this.dispatch.redispatch(row.id, {
        code: "node_gone",
        message: `the serving tab left (${why})`,
      });
    }
    await this.dispatch.reportSoon(true);
  }

  async onTabMessage(node: NodeRecord, msg: Exclude<TabMessage, { type: "hello" }>): Promise<void> {
    node.lastSeen = Date.now();
    switch (msg.type) {
      case "status": {
        // A tab reporting idle is done with a job that was taken from it (moved or cancelled).
        const free =
          msg.state === "idle" && node.jobId && !this.dispatch.isCurrent(node, node.jobId);
        const modelsChanged = msg.models.join() !== node.models.join();
        this.dispatch.updateNode(node, {
          state: msg.state,
          models: msg.models,
          jobId: free ? null : node.jobId,
        });
        await this.dispatch.reportSoon(modelsChanged);
        if (!node.jobId && node.state === "idle") await this.dispatch.dispatchWaiting(node);
        return;
      }
      case "job.accept":
        if (this.dispatch.isCurrent(node, msg.jobId)) {
          this.dispatch.noteRtt(node);
          this.jobs.markStreaming(msg.jobId);
          await this.dispatch.armLease(msg.jobId, this.config.leaseMs);
        }
        return;
      case "job.delta":
        if (!this.jobs.appendDelta(msg.jobId, node.nodeId, msg.seq, msg.text)) {
          log("warn", "delta dropped (stale attempt, duplicate or out of order)", {
            jobId: msg.jobId,
            seq: msg.seq,
          });
          return;
        }
        if (msg.seq === 0) this.jobs.markFirstToken(msg.jobId, Date.now());
        this.relay.push(msg.jobId, { type: "delta", text: msg.text });
        await this.dispatch.extendLease(msg.jobId);
        return;
      case "job.done": {
        const current = this.dispatch.isCurrent(node, msg.jobId);
        if (current && msg.finishReason !== "abort") this.dispatch.observe(node, msg.jobId, msg);
        if (node.jobId === msg.jobId) {
          if (current && msg.finishReason !== "abort") node.jobsServed += 1;
          this.dispatch.updateNode(node, { jobId: null, state: msg.state ?? "idle" });
        }
        if (current && msg.finishReason === "abort") {
          // The tab stopped on its own (paused by its owner): another tab continues.
          await this.dispatch.redispatch(msg.jobId, {
            code: "node_gone",
            message: "the serving tab stopped",
          });
        } else if (current) {
          this.dispatch.credit(node, msg.jobId, msg.usage.completion_tokens);
          this.jobs.finish(msg.jobId, msg.finishReason, msg.usage);
          this.relay.push(msg.jobId, {
            type: "done",
            finishReason: msg.finishReason,
            usage: msg.usage,
          });
          await this.dispatch.settle(msg.jobId);
        }
        await this.dispatch.reportSoon(false);
        await this.dispatch.dispatchWaiting(node);
        return;
      }
      case "job.error": {
        const current = this.dispatch.isCurrent(node, msg.jobId);
        if (node.jobId === msg.jobId)
          this.dispatch.updateNode(node, { jobId: null, state: msg.state ?? "idle" });
        if (current && RETRYABLE.has(msg.error.code)) {
          if (msg.error.code !== "no_capacity") this.dispatch.recordFailure(node.nodeId);
          await this.dispatch.redispatch(msg.jobId, msg.error);
        } else if (current) {
          await this.dispatch.endWithError(msg.jobId, msg.error);
        }
        await this.dispatch.reportSoon(false);
        await this.dispatch.dispatchWaiting(node);
        return;
      }
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }

  /** Handle one due timer. Returns tabs found stale by the liveness sweep (the caller closes them). */
  async onTimer(name: string): Promise<NodeRecord[]> {
    const colon = name.indexOf(":");
    const kind = colon < 0 ? name : name.slice(0, colon);
    const jobId = name.slice(colon + 1);
    switch (kind) {
      case "lease": {
        const row = this.jobs.get(jobId);
        if (!row || TERMINAL_STATES.has(row.state) || !row.node_id) return [];
        const active = this.dispatch.activeAt.get(jobId);
        if (
          row.state === "streaming" &&
          active !== undefined &&
          Date.now() - active < this.config.leaseMs
        ) {
          await this.timers.set(`lease:${jobId}`, active + this.config.leaseMs);
          return [];
        }
        this.dispatch.recordFailure(row.node_id);
        const message =
          row.state === "assigned"
            ? "the tab did not accept the job in time"
            : "the tab stopped sending tokens";
        await this.dispatch.redispatch(jobId, { code: "node_gone", message });
        return [];
      }
      case "detach":
        if (this.relay.readerCount(jobId) === 0) await this.cancel(jobId, "client went away");
        return [];
      case "wait": {
        const row = this.jobs.get(jobId);
        if (row?.state === "queued" && row.attempts === 0) {
          await this.dispatch.endWithError(jobId, {
            code: "no_capacity",
            message: `No tab serving '${row.model}' became free in time; retry later.`,
            retryAfterS: retryAfterSeconds(this.config.queueRetryAfterMs),
          });
        } else if (row?.state === "queued") {
          await this.dispatch.endWithError(jobId, {
            code: (row.error_code ?? "node_gone") as JobErrorCode,
            message: `${row.error_message ?? "the serving tab left"}; no other tab could take over in time`,
          });
        }
        return [];
      }
      case "report":
        await this.dispatch.reportSoon(true);
        return [];
      case "expire":
        this.jobs.delete(jobId);
        return [];
      case "liveness":
        return this.sweep();
      default:
        log("warn", "unknown timer", { name });
        return [];
    }
  }

  // ---- internals ---------------------------------------------------------------------------

  private async onDetached(jobId: string): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    await this.timers.set(`detach:${jobId}`, Date.now() + row.detach_grace_ms);
  }

  private async ensureLiveness(): Promise<void> {
    if (!this.timers.has("liveness") && this.nodes.size() > 0) {
      await this.timers.set("liveness", Date.now() + this.config.statusIntervalMs / 4);
    }
  }

  /**
   * Tabs silent (no frame, no auto-answered ping) for 1.5 status intervals — three missed pings,
   * as tabs ping every half interval — are presumed gone. Sweeping every quarter interval finds
   * one at most 1.75 intervals after it fell silent: within the 2-interval detection target.
   */
  private async sweep(): Promise<NodeRecord[]> {
    const now = Date.now();
    const stale: NodeRecord[] = [];
    for (const node of this.nodes.all()) {
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(node.ws)?.getTime() ?? 0;
      const silentMs = now - Math.max(node.lastSeen, pinged);
      if (silentMs > 1.5 * this.config.statusIntervalMs) stale.push(node);
    }
    if (this.nodes.size() > stale.length) {
      await this.timers.set("liveness", now + this.config.statusIntervalMs / 4);
    }
    return stale;
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
