import { log } from "../http/log.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import type { JobError, JobSpec } from "../../shared/protocol/job.js";
import type { CoordinatorMessage } from "../../shared/protocol/node-messages.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
import type { AlarmScheduler } from "./alarm-scheduler.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import type { JobRelay } from "./job-relay.js";
import { TERMINAL_STATES, type JobRow, type JobStore, type MatchFacts } from "./job-store.js";
import type { NodeRecord, NodeRegistry } from "./node-registry.js";
import type { RegionConfig } from "./region-config.js";
import { summarise, type RegionSummary } from "./region-views.js";
import type { TabScheduler } from "./tab-scheduler.js";

export interface JobDispatchDeps {
  jobs: JobStore;
  relay: JobRelay;
  scheduler: TabScheduler;
  nodes: NodeRegistry;
  timers: AlarmScheduler;
  config: RegionConfig;
  region: RegionHint;
  /** Sends this region's summary to the Directory (models, idle tabs, queue). */
  report: (summary: RegionSummary) => Promise<void>;
  /** A frame could not be sent: the tab is gone. */
  onSendFailed: (node: NodeRecord) => Promise<void>;
}

/**
 * Putting jobs on tabs and taking them off again: assignment with a lease, failover to the next
 * best tab (continuing after the delivered text), the queue draining as tabs free up, the end of a
 * job (error, expiry), and what the region learns and pays for on the way (speeds, round trips,
 * failures, credit). JobLifecycle decides *when*; this decides *where* and keeps the records.
 */
export class JobDispatch {
  readonly breaker = new CircuitBreaker();
  /**
   * Last sign of life (accept or delta) per job. The lease alarm is not moved on every delta;
   * when it fires, a job that was active since gets the rest of its lease instead.
   */
  readonly activeAt = new Map<string, number>();
  private readonly jobs: JobStore;
  private readonly relay: JobRelay;
  private readonly scheduler: TabScheduler;
  private readonly nodes: NodeRegistry;
  private readonly timers: AlarmScheduler;
  private readonly config: RegionConfig;
  private readonly region: RegionHint;
  private readonly report: JobDispatchDeps["report"];
  private readonly onSendFailed: JobDispatchDeps["onSendFailed"];

  constructor(deps: JobDispatchDeps) {
    this.jobs = deps.jobs;
    this.relay = deps.relay;
    this.scheduler = deps.scheduler;
    this.nodes = deps.nodes;
    this.timers = deps.timers;
    this.config = deps.config;
    this.region = deps.region;
    this.report = deps.report;
    this.onSendFailed = deps.onSendFailed;
  }

  /** The Directory's view of this region, now. */
  summary(): RegionSummary {
    return { ...summarise(this.nodes.all()), queued: this.jobs.waitingCount() };
  }

  /** Report membership changes at once; idle/busy flips at most once a second (timer `report`). */
  async reportSoon(now: boolean): Promise<void> {
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
  updateNode(node: NodeRecord, patch: Parameters<NodeRegistry["update"]>[1]): void {
    this.nodes.update(node, patch);
    this.scheduler.sync(node, this.breaker.isResting(node.nodeId));
  }

  matchRequest(model: string, facts: MatchFacts): MatchRequest {
    return {
      clientLocation: facts.clientLocation ?? REGION_CENTRES[this.region],
      model,
      promptTokens: facts.promptTokens,
      maxTokens: facts.maxTokens,
      stream: facts.stream,
      ...(facts.latencyBudgetMs !== undefined ? { latencyBudgetMs: facts.latencyBudgetMs } : {}),
    };
  }

  send(node: NodeRecord, msg: CoordinatorMessage): boolean {
    try {
      node.ws.send(JSON.stringify(msg));
      return true;
    } catch {
      return false;
    }
  }

  isCurrent(node: NodeRecord, jobId: string): boolean {
    const row = this.jobs.get(jobId);
    return !!row && row.node_id === node.nodeId && !TERMINAL_STATES.has(row.state);
  }

  async assign(
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
    if (!sent) await this.onSendFailed(node);
  }

  /** Move a job whose tab failed to another tab, continuing after the text already delivered. */
  async redispatch(jobId: string, cause: JobError): Promise<void> {
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
  async tryDispatch(jobId: string): Promise<boolean> {
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
  async dispatchWaiting(node: NodeRecord): Promise<void> {
    if (node.jobId || node.state !== "idle" || this.breaker.isResting(node.nodeId)) return;
    for (const row of this.jobs.queued()) {
      if (!node.models.includes(row.model) || this.jobs.tried(row).includes(node.nodeId)) continue;
      await this.timers.clear(`wait:${row.id}`);
      await this.assign(row.id, this.jobs.spec(row), node, row.text);
      return;
    }
  }

  recordFailure(nodeId: string): void {
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
  credit(node: NodeRecord, jobId: string, completionTokens: number): void {
    const row = this.jobs.get(jobId);
    if (!row) return;
    const total = row.text.length;
    const own = total - row.attempt_start_chars;
    const credit = total > 0 ? Math.round((completionTokens * own) / total) : completionTokens;
    this.nodes.addCredit(node, credit);
    this.send(node, { type: "job.credit", jobId, credit });
  }

  /** RTT sample: job.assign → job.accept, smoothed. */
  noteRtt(node: NodeRecord): void {
    const row = node.jobId ? this.jobs.get(node.jobId) : undefined;
    if (!row?.dispatched_at) return;
    const sample = Date.now() - row.dispatched_at;
    node.rttMs = node.rttMs === null ? sample : node.rttMs * 0.7 + sample * 0.3;
  }

  /** Learn the tab's real speed from a finished job (time to first token, decode rate). */
  observe(
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

  async endWithError(jobId: string, error: JobError): Promise<void> {
    if (!this.jobs.fail(jobId, error)) return;
    this.relay.push(jobId, { type: "error", error });
    await this.settle(jobId);
    log("info", "job failed", { jobId, code: error.code, message: error.message });
  }

  /** A job reached a terminal state: drop its timers and schedule its record's expiry. */
  async settle(jobId: string): Promise<void> {
    this.activeAt.delete(jobId);
    for (const kind of ["lease", "wait", "detach"]) await this.timers.clear(`${kind}:${jobId}`);
    await this.timers.set(`expire:${jobId}`, Date.now() + this.config.jobTtlMs);
  }

  async armLease(jobId: string, ms: number): Promise<void> {
    this.activeAt.set(jobId, Date.now());
    await this.timers.set(`lease:${jobId}`, Date.now() + ms);
  }

  /** A delta arrived: the lease runs from now (kept in memory; the alarm catches up lazily). */
  async extendLease(jobId: string): Promise<void> {
    if (!this.activeAt.has(jobId)) await this.armLease(jobId, this.config.leaseMs);
    else this.activeAt.set(jobId, Date.now());
  }
}
