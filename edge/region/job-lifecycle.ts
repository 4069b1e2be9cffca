import { log } from "../http/log.js";
import type { JobError, JobErrorCode, JobSpec } from "../../shared/protocol/job.js";
import type { CoordinatorMessage, TabMessage } from "../../shared/protocol/node-messages.js";
import type { AlarmScheduler } from "./alarm-scheduler.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import type { JobEvent, OpenJobResult, SubscribeResult } from "./job-events.js";
import { JobRelay } from "./job-relay.js";
import {
  JobStore,
  TERMINAL_STATES,
  type JobMeta,
  type JobRow,
  type MatchFacts,
} from "./job-store.js";
import type { NodeRecord, NodeRegistry } from "./node-registry.js";
import type { RegionConfig } from "./region-config.js";
import { summarise, type RegionSummary } from "./region-views.js";
import { TabScheduler } from "./tab-scheduler.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
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
  private readonly scheduler: TabScheduler;
  /**
   * Last sign of life (accept or delta) per job. The lease alarm is not moved on every delta;
   * when it fires, a job that was active since gets the rest of its lease instead.
   */
  private readonly activeAt = new Map<string, number>();

  constructor(
    private readonly ctx: DurableObjectState,
    private readonly nodes: NodeRegistry,
    private readonly timers: AlarmScheduler,
    private readonly config: RegionConfig,
    private readonly region: RegionHint,
    /** Sends this region's summary to the Directory (models, idle tabs, queue). */
    private readonly report: (summary: RegionSummary) => Promise<void>,
  ) {
    this.jobs = new JobStore(ctx.storage.sql);
    this.relay = new JobRelay((jobId) => void this.onDetached(jobId));
    this.scheduler = new TabScheduler(region, 3 * config.statusIntervalMs);
  }

  /** The Directory's view of this region, now. */
  summary(): RegionSummary {
    return { ...summarise(this.nodes.all()), queued: this.jobs.waitingCount() };
  }

  /** Report membership changes at once; idle/busy flips at most once a second (timer `report`). */
  private async reportSoon(now: boolean): Promise<void> {
    if (now) {
      await this.timers.clear("report");
      await this.report(this.summary()).catch((e: unknown) =>
        log("warn", "directory report failed", { error: String(e) }),
      );
    } else if (!this.timers.has("report")) {
      await this.timers.set("report", Date.now() + 1000);
    }
  }

  /** Apply a change to a tab and keep the matching index in step with it. */
  private updateNode(node: NodeRecord, patch: Parameters<NodeRegistry["update"]>[1]): void {
    this.nodes.update(node, patch);
    this.scheduler.sync(node, this.breaker.isResting(node.nodeId));
  }

  private matchRequest(model: string, facts: MatchFacts): MatchRequest {
    return {
      clientLocation: facts.clientLocation ?? REGION_CENTRES[this.region],
      model,
      promptTokens: facts.promptTokens,
      maxTokens: facts.maxTokens,
      stream: facts.stream,
      ...(facts.latencyBudgetMs !== undefined ? { latencyBudgetMs: facts.latencyBudgetMs } : {}),
    };
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
        await this.redispatch(row.id, { code: "node_gone", message: "the serving tab left" });
      } else if (row.state === "queued" && !this.timers.has(`wait:${row.id}`)) {
        await this.timers.set(`wait:${row.id}`, Date.now() + this.config.queueWaitMs);
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

  /**
   * Match a new request to the idle tab expected to answer soonest (within its latency budget).
   * With `queue`, a request no idle tab can take waits in this region's bounded queue instead of
   * being refused; the Worker first tries other regions and the cloud fallback.
   */
  async open(spec: JobSpec, meta: JobMeta, queue: boolean): Promise<OpenJobResult> {
    const now = Date.now();
    const req = this.matchRequest(spec.model, meta.match);
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
      await this.assign(spec.id, spec, node, "");
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
    await this.reportSoon(false);
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
    if (node && node.jobId === jobId) this.send(node, { type: "job.cancel", jobId, reason });
    await this.settle(jobId);
    log("info", "job cancelled", { jobId, reason });
  }

  // ---- tabs --------------------------------------------------------------------------------

  async nodeJoined(node: NodeRecord): Promise<void> {
    this.scheduler.sync(node, false);
    await this.reportSoon(true);
    await this.ensureLiveness();
    await this.dispatchWaiting(node);
  }

  async nodeLeft(node: NodeRecord, why: string): Promise<void> {
    this.nodes.remove(node.nodeId);
    this.scheduler.remove(node.nodeId);
    log("info", "node left", { node: node.publicId, why });
    const row = node.jobId ? this.jobs.get(node.jobId) : undefined;
    if (row && row.node_id === node.nodeId && !TERMINAL_STATES.has(row.state)) {
      await this.redispatch(row.id, {
        code: "node_gone",
        message: `the serving tab left (${why})`,
      });
    }
    await this.reportSoon(true);
  }

  async onTabMessage(node: NodeRecord, msg: Exclude<TabMessage, { type: "hello" }>): Promise<void> {
    node.lastSeen = Date.now();
    switch (msg.type) {
      case "status": {
        // A tab reporting idle is done with a job that was taken from it (moved or cancelled).
        const free = msg.state === "idle" && node.jobId && !this.isCurrent(node, node.jobId);
        const modelsChanged = msg.models.join() !== node.models.join();
        this.updateNode(node, {
          state: msg.state,
          models: msg.models,
          jobId: free ? null : node.jobId,
        });
        await this.reportSoon(modelsChanged);
        if (!node.jobId && node.state === "idle") await this.dispatchWaiting(node);
        return;
      }
      case "job.accept":
        if (this.isCurrent(node, msg.jobId)) {
          this.noteRtt(node);
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
        if (msg.seq === 0) this.jobs.markFirstToken(msg.jobId, Date.now());
        this.relay.push(msg.jobId, { type: "delta", text: msg.text });
        await this.extendLease(msg.jobId);
        return;
      case "job.done": {
        const current = this.isCurrent(node, msg.jobId);
        if (current && msg.finishReason !== "abort") this.observe(node, msg.jobId, msg);
        if (node.jobId === msg.jobId) {
          if (current && msg.finishReason !== "abort") node.jobsServed += 1;
          this.updateNode(node, { jobId: null, state: msg.state ?? "idle" });
        }
        if (current && msg.finishReason === "abort") {
          // The tab stopped on its own (paused by its owner): another tab continues.
          await this.redispatch(msg.jobId, {
            code: "node_gone",
            message: "the serving tab stopped",
          });
        } else if (current) {
          this.credit(node, msg.jobId, msg.usage.completion_tokens);
          this.jobs.finish(msg.jobId, msg.finishReason, msg.usage);
          this.relay.push(msg.jobId, {
            type: "done",
            finishReason: msg.finishReason,
            usage: msg.usage,
          });
          await this.settle(msg.jobId);
        }
        await this.reportSoon(false);
        await this.dispatchWaiting(node);
        return;
      }
      case "job.error": {
        const current = this.isCurrent(node, msg.jobId);
        if (node.jobId === msg.jobId)
          this.updateNode(node, { jobId: null, state: msg.state ?? "idle" });
        if (current && RETRYABLE.has(msg.error.code)) {
          if (msg.error.code !== "no_capacity") this.recordFailure(node.nodeId);
          await this.redispatch(msg.jobId, msg.error);
        } else if (current) {
          await this.endWithError(msg.jobId, msg.error);
        }
        await this.reportSoon(false);
        await this.dispatchWaiting(node);
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
        const active = this.activeAt.get(jobId);
        if (
          row.state === "streaming" &&
          active !== undefined &&
          Date.now() - active < this.config.leaseMs
        ) {
          await this.timers.set(`lease:${jobId}`, active + this.config.leaseMs);
          return [];
        }
        this.recordFailure(row.node_id);
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
        if (row?.state === "queued" && row.attempts === 0) {
          await this.endWithError(jobId, {
            code: "no_capacity",
            message: `No tab serving '${row.model}' became free in time; retry later.`,
            retryAfterS: retryAfterSeconds(this.config.queueRetryAfterMs),
          });
        } else if (row?.state === "queued") {
          await this.endWithError(jobId, {
            code: (row.error_code ?? "node_gone") as JobErrorCode,
            message: `${row.error_message ?? "the serving tab left"}; no other tab could take over in time`,
          });
        }
        return [];
      }
      case "report":
        await this.reportSoon(true);
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
    const facts = this.jobs.match(this.jobs.get(jobId) as JobRow);
    // Expected finish, for queue estimates of this tab: the longest answer the request allows.
    const speed = this.scheduler.decodeSpeed(node.nodeId);
    node.busyUntil = Date.now() + ((facts.maxTokens ?? spec.sampling.max_tokens) / speed) * 1000;
    this.updateNode(node, { jobId, state: "busy" });
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
    this.activeAt.delete(jobId);
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
    log("info", "job failing over", {
      jobId,
      cause: cause.message,
      delivered: row.text.length,
    });
    if (!(await this.tryDispatch(jobId)) && !this.timers.has(`wait:${jobId}`)) {
      await this.timers.set(`wait:${jobId}`, Date.now() + this.config.redispatchWaitMs);
    }
  }

  /** Give a queued job to the best idle tab that has not tried it yet. */
  private async tryDispatch(jobId: string): Promise<boolean> {
    const row = this.jobs.get(jobId);
    if (!row || row.state !== "queued") return false;
    const tried = new Set(this.jobs.tried(row));
    const req = { ...this.matchRequest(row.model, this.jobs.match(row)) };
    delete req.latencyBudgetMs;
    const result = this.scheduler.matchIdleAmong(
      req,
      Date.now(),
      (id) => !tried.has(id) && !this.breaker.isResting(id),
    );
    const node = result.kind === "match" ? this.nodes.get(result.match.tab.id) : undefined;
    if (!node) return false;
    await this.timers.clear(`wait:${jobId}`);
    await this.assign(jobId, this.jobs.spec(row), node, row.text);
    return true;
  }

  /**
   * A tab became free (or joined): give it the first waiting job it can serve — failovers first,
   * then by priority class, then arrival — so the queue drains in order without a scan of tabs.
   */
  private async dispatchWaiting(node: NodeRecord): Promise<void> {
    if (node.jobId || node.state !== "idle" || this.breaker.isResting(node.nodeId)) return;
    for (const row of this.jobs.queued()) {
      if (!node.models.includes(row.model) || this.jobs.tried(row).includes(node.nodeId)) continue;
      await this.timers.clear(`wait:${row.id}`);
      await this.assign(row.id, this.jobs.spec(row), node, row.text);
      return;
    }
  }

  private recordFailure(nodeId: string): void {
    if (this.breaker.recordFailure(nodeId)) {
      const node = this.nodes.get(nodeId);
      if (node) this.scheduler.sync(node, true);
      log("warn", "tab rested after repeated failures", { node: node?.publicId });
    }
  }

  /**
   * Credit the finishing tab with the completion tokens it generated: its share of the answer's
   * characters when it took over from another tab mid-stream.
   */
  private credit(node: NodeRecord, jobId: string, completionTokens: number): void {
    const row = this.jobs.get(jobId);
    if (!row) return;
    const total = row.text.length;
    const own = total - row.attempt_start_chars;
    const credit = total > 0 ? Math.round((completionTokens * own) / total) : completionTokens;
    this.nodes.addCredit(node, credit);
    this.send(node, { type: "job.credit", jobId, credit });
  }

  /** RTT sample: job.assign → job.accept, smoothed. */
  private noteRtt(node: NodeRecord): void {
    const row = node.jobId ? this.jobs.get(node.jobId) : undefined;
    if (!row?.dispatched_at) return;
    const sample = Date.now() - row.dispatched_at;
    node.rttMs = node.rttMs === null ? sample : node.rttMs * 0.7 + sample * 0.3;
  }

  /** Learn the tab's real speed from a finished job (time to first token, decode rate). */
  private observe(
    node: NodeRecord,
    jobId: string,
    done: { usage: { prompt_tokens: number; completion_tokens: number } },
  ): void {
    const row = this.jobs.get(jobId);
    if (!row?.dispatched_at || !row.first_token_at) return;
    const facts = this.jobs.match(row);
    this.scheduler.observe(node.nodeId, {
      clientLocation: facts.clientLocation ?? REGION_CENTRES[this.region],
      promptTokens: done.usage.prompt_tokens,
      ttftMs: row.first_token_at - row.dispatched_at,
      completionTokens: done.usage.completion_tokens,
      decodeMs: Date.now() - row.first_token_at,
    });
  }

  private async endWithError(jobId: string, error: JobError): Promise<void> {
    if (!this.jobs.fail(jobId, error)) return;
    this.relay.push(jobId, { type: "error", error });
    await this.settle(jobId);
    log("info", "job failed", { jobId, code: error.code, message: error.message });
  }

  /** A job reached a terminal state: drop its timers and schedule its record's expiry. */
  private async settle(jobId: string): Promise<void> {
    this.activeAt.delete(jobId);
    for (const kind of ["lease", "wait", "detach"]) await this.timers.clear(`${kind}:${jobId}`);
    await this.timers.set(`expire:${jobId}`, Date.now() + this.config.jobTtlMs);
  }

  private async onDetached(jobId: string): Promise<void> {
    const row = this.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    await this.timers.set(`detach:${jobId}`, Date.now() + row.detach_grace_ms);
  }

  private async armLease(jobId: string, ms: number): Promise<void> {
    this.activeAt.set(jobId, Date.now());
    await this.timers.set(`lease:${jobId}`, Date.now() + ms);
  }

  /** A delta arrived: the lease runs from now (kept in memory; the alarm catches up lazily). */
  private async extendLease(jobId: string): Promise<void> {
    if (!this.activeAt.has(jobId)) await this.armLease(jobId, this.config.leaseMs);
    else this.activeAt.set(jobId, Date.now());
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
