import { log } from "../http/log.js";
import type { JobError, JobErrorCode, JobSpec } from "../../shared/protocol/job.js";
import type { CoordinatorMessage, TabMessage } from "../../shared/protocol/node-messages.js";
import type { AlarmScheduler } from "./alarm-scheduler.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import type { JobEvent, OpenJobResult, SubscribeResult } from "./job-events.js";
import { JobRelay } from "./job-relay.js";
import { JobStore, TERMINAL_STATES, type JobMeta, type JobRow } from "./job-store.js";
import type { NodeRecord, NodeRegistry } from "./node-registry.js";
import type { RegionConfig } from "./region-config.js";

/** Failures another tab may fix; the rest end the job at once. */
const RETRYABLE: ReadonlySet<JobErrorCode> = new Set([
  "engine_error",
  "device_lost",
  "node_gone",
  "model_not_served",
  "internal",
]);

/**
 * Everything that happens to a job after it is written: assignment with a lease, deltas, the end,
 * failover to another tab (continuing from the text already delivered, at most
 * `maxAttempts` tabs), cancellation, a grace period for readers that dropped, and expiry. Timers
 * are named logical alarms: `lease:<job>`, `wait:<job>`, `detach:<job>`, `expire:<job>`, and one
 * `liveness` sweep of the tabs.
 */
export class JobLifecycle {
  private readonly jobs: JobStore;
  private readonly relay: JobRelay;
  private readonly breaker = new CircuitBreaker();
  /** Lease deadlines cached in memory so a delta re-arms the alarm only when half is used. */
  private readonly leaseAt = new Map<string, number>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly nodes: NodeRegistry,
    private readonly timers: AlarmScheduler,
    private readonly config: RegionConfig,
  ) {
    this.jobs = new JobStore(ctx.storage.sql);
    this.relay = new JobRelay((jobId) => void this.onDetached(jobId));
  }

  /** After eviction: rebind tabs to their jobs; jobs whose tab vanished move on. */
  async restore(sockets: WebSocket[]): Promise<void> {
    const active = this.jobs.active();
    const byNode = new Map(active.filter((r) => r.node_id).map((r) => [r.node_id as string, r.id]));
    this.nodes.restore(sockets, (nodeId) => byNode.get(nodeId) ?? null);
    for (const row of active) {
      // No reader survives eviction; the Worker re-subscribes at once, a client may resume.
      if (!this.timers.has(`detach:${row.id}`)) {
        await this.timers.set(`detach:${row.id}`, Date.now() + Math.max(row.detach_grace_ms, 2000));
      }
      if (row.node_id && !this.nodes.get(row.node_id)) {
        await this.redispatch(row.id, { code: "node_gone", message: "the serving tab left" });
      }
    }
    await this.ensureLiveness();
  }

  send(node: NodeRecord, msg: CoordinatorMessage): boolean {
    try {
      node.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  visibleJob(jobId: string, owner: string | null): JobRow | undefined {
    const row = this.jobs.get(jobId);
    return row && (row.owner === null || row.owner === owner) ? row : undefined;
  }

  counts(): Record<string, number> {
    return this.jobs.countByState();
  }

  // ---- requests ----------------------------------------------------------------------------

  async open(spec: JobSpec, meta: JobMeta): Promise<OpenJobResult> {
    const choice = this.nodes.pick(spec.model, (n) => !this.breaker.isResting(n.nodeId));
    if ("none" in choice) {
      const error: JobError =
        choice.none === "model_not_served"
          ? {
              code: "model_not_served",
              message: `No connected tab serves model '${spec.model}'. GET /v1/models lists the models served now.`,
            }
          : {
              code: "no_capacity",
              message: `Every tab serving '${spec.model}' is busy; retry shortly.`,
            };
      return { ok: false, error };
    }
    this.jobs.create(spec, meta);
    const { readerId, events } = this.relay.subscribe(spec.id, "");
    await this.assign(spec.id, spec, choice.node, "");
    return { ok: true, jobId: spec.id, nodeId: choice.node.publicId, readerId, events };
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
    if (node && node.jobId === jobId) this.send(node, { type: "job.cancel", jobId, reason });
    await this.settle(jobId);
    log("info", "job cancelled", { jobId, reason });
  }

  // ---- tabs --------------------------------------------------------------------------------

  async nodeJoined(_node: NodeRecord): Promise<void> {
    await this.ensureLiveness();
    await this.dispatchWaiting();
  }

  async nodeLeft(node: NodeRecord, why: string): Promise<void> {
    this.nodes.remove(node.nodeId);
    log("info", "node left", { node: node.publicId, why });
    const row = node.jobId ? this.jobs.get(node.jobId) : undefined;
    if (row && row.node_id === node.nodeId && !TERMINAL_STATES.has(row.state)) {
      await this.redispatch(row.id, {
        code: "node_gone",
        message: `the serving tab left (${why})`,
      });
    }
  }

  async onTabMessage(node: NodeRecord, msg: Exclude<TabMessage, { type: "hello" }>): Promise<void> {
    node.lastSeen = Date.now();
    switch (msg.type) {
      case "status": {
        // A tab reporting idle is done with a job that was taken from it (moved or cancelled).
        const free = msg.state === "idle" && node.jobId && !this.isCurrent(node, node.jobId);
        this.nodes.update(node, {
          state: msg.state,
          models: msg.models,
          jobId: free ? null : node.jobId,
        });
        if (!node.jobId && node.state === "idle") await this.dispatchWaiting();
        return;
      }
      case "job.accept":
        if (this.isCurrent(node, msg.jobId)) {
          this.jobs.markStreaming(msg.jobId);
          await this.armLease(msg.jobId, this.config.leaseMs);
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
        this.relay.push(msg.jobId, { type: "delta", text: msg.text });
        await this.extendLease(msg.jobId);
        return;
      case "job.done": {
        const current = this.isCurrent(node, msg.jobId);
        if (node.jobId === msg.jobId) {
          if (current && msg.finishReason !== "abort") node.jobsServed += 1;
          this.nodes.update(node, { jobId: null, state: "idle" });
        }
        if (current && msg.finishReason === "abort") {
          // The tab stopped on its own (paused by its owner): another tab continues.
          await this.redispatch(msg.jobId, {
            code: "node_gone",
            message: "the serving tab stopped",
          });
        } else if (current) {
          this.jobs.finish(msg.jobId, msg.finishReason, msg.usage);
          this.relay.push(msg.jobId, {
            type: "done",
            finishReason: msg.finishReason,
            usage: msg.usage,
          });
          await this.settle(msg.jobId);
        }
        await this.dispatchWaiting();
        return;
      }
      case "job.error": {
        const current = this.isCurrent(node, msg.jobId);
        if (node.jobId === msg.jobId) this.nodes.update(node, { jobId: null, state: "idle" });
        if (current && RETRYABLE.has(msg.error.code)) {
          this.breaker.recordFailure(node.nodeId);
          await this.redispatch(msg.jobId, msg.error);
        } else if (current) {
          await this.endWithError(msg.jobId, msg.error);
        }
        await this.dispatchWaiting();
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
        this.breaker.recordFailure(row.node_id);
        const message =
          row.state === "assigned"
            ? "the tab did not accept the job in time"
            : "the tab stopped sending tokens";
        await this.redispatch(jobId, { code: "node_gone", message });
        return [];
      }
      case "detach":
        if (this.relay.readerCount(jobId) === 0) await this.cancel(jobId, "client went away");
        return [];
      case "wait": {
        const row = this.jobs.get(jobId);
        if (row?.state === "queued") {
          await this.endWithError(jobId, {
            code: (row.error_code ?? "node_gone") as JobErrorCode,
            message: `${row.error_message ?? "the serving tab left"}; no other tab could take over in time`,
          });
        }
        return [];
      }
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

  private isCurrent(node: NodeRecord, jobId: string): boolean {
    const row = this.jobs.get(jobId);
    return !!row && row.node_id === node.nodeId && !TERMINAL_STATES.has(row.state);
  }

  private async assign(
    jobId: string,
    spec: JobSpec,
    node: NodeRecord,
    continueFrom: string,
  ): Promise<void> {
    this.jobs.assign(jobId, node.nodeId);
    const attempt = this.jobs.get(jobId)?.attempts ?? 1;
    node.lastAssignedAt = Date.now();
    this.nodes.update(node, { jobId, state: "busy" });
    await this.armLease(jobId, this.config.acceptMs);
    const sent = this.send(node, {
      type: "job.assign",
      job: spec,
      attempt,
      ...(continueFrom ? { continueFrom } : {}),
    });
    log("info", "job assigned", { jobId, node: node.publicId, attempt });
    if (!sent) await this.nodeLeft(node, "socket closed");
  }

  /** Move a job whose tab failed to another tab, continuing after the text already delivered. */
  private async redispatch(jobId: string, cause: JobError): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    this.leaseAt.delete(jobId);
    await this.timers.clear(`lease:${jobId}`);
    const previous = row.node_id ? this.nodes.get(row.node_id) : undefined;
    if (previous && previous.jobId === jobId) {
      this.send(previous, { type: "job.cancel", jobId, reason: "job moved to another tab" });
    }
    this.jobs.requeue(jobId, cause);
    if (row.attempts >= this.config.maxAttempts) {
      await this.endWithError(jobId, {
        code: cause.code,
        message: `${cause.message}; gave up after ${row.attempts} attempts`,
      });
      return;
    }
    log("info", "job failing over", { jobId, cause: cause.message, delivered: row.text.length });
    if (!(await this.tryDispatch(jobId)) && !this.timers.has(`wait:${jobId}`)) {
      await this.timers.set(`wait:${jobId}`, Date.now() + this.config.redispatchWaitMs);
    }
  }

  /** Give a queued job to a tab that has not tried it yet. */
  private async tryDispatch(jobId: string): Promise<boolean> {
    const row = this.jobs.get(jobId);
    if (!row || row.state !== "queued") return false;
    const tried = new Set(this.jobs.tried(row));
    const choice = this.nodes.pick(
      row.model,
      (n) => !tried.has(n.nodeId) && !this.breaker.isResting(n.nodeId),
    );
    if ("none" in choice) return false;
    await this.timers.clear(`wait:${jobId}`);
    await this.assign(jobId, this.jobs.spec(row), choice.node, row.text);
    return true;
  }

  private async dispatchWaiting(): Promise<void> {
    for (const row of this.jobs.queued()) await this.tryDispatch(row.id);
  }

  private async endWithError(jobId: string, error: JobError): Promise<void> {
    if (!this.jobs.fail(jobId, error)) return;
    this.relay.push(jobId, { type: "error", error });
    await this.settle(jobId);
    log("info", "job failed", { jobId, code: error.code, message: error.message });
  }

  /** A job reached a terminal state: drop its timers and schedule its record's expiry. */
  private async settle(jobId: string): Promise<void> {
    this.leaseAt.delete(jobId);
    for (const kind of ["lease", "wait", "detach"]) await this.timers.clear(`${kind}:${jobId}`);
    await this.timers.set(`expire:${jobId}`, Date.now() + this.config.jobTtlMs);
  }

  private async onDetached(jobId: string): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    await this.timers.set(`detach:${jobId}`, Date.now() + row.detach_grace_ms);
  }

  private async armLease(jobId: string, ms: number): Promise<void> {
    const at = Date.now() + ms;
    this.leaseAt.set(jobId, at);
    await this.timers.set(`lease:${jobId}`, at);
  }

  private async extendLease(jobId: string): Promise<void> {
    const at = this.leaseAt.get(jobId);
    if (at === undefined || at - Date.now() < this.config.leaseMs / 2)
      await this.armLease(jobId, this.config.leaseMs);
  }

  private async ensureLiveness(): Promise<void> {
    if (!this.timers.has("liveness") && this.nodes.size() > 0) {
      await this.timers.set("liveness", Date.now() + this.config.statusIntervalMs);
    }
  }

  /** Tabs silent (no frame, no auto-answered ping) for two status intervals are presumed gone. */
  private async sweep(): Promise<NodeRecord[]> {
    const now = Date.now();
    const stale: NodeRecord[] = [];
    for (const node of this.nodes.all()) {
      const pinged = this.ctx.getWebSocketAutoResponseTimestamp(node.ws)?.getTime() ?? 0;
      if (now - Math.max(node.lastSeen, pinged) > 2 * this.config.statusIntervalMs)
        stale.push(node);
    }
    if (this.nodes.size() > stale.length) {
      await this.timers.set("liveness", now + this.config.statusIntervalMs);
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
