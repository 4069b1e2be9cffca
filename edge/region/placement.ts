import { log, logRoutine } from "../http/log.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { QUEUE_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import type { Match, MatchResult } from "../../shared/scheduling/linear-scan.js";
import type { Affinity } from "../../shared/scheduling/scheduler.js";
import type { MatchRequest } from "../../shared/scheduling/score.js";
import { budgetForAttempt, mayContinueOn } from "./answer-budget.js";
import { CircuitBreaker } from "./circuit-breaker.js";
import { Hedging } from "./hedging.js";
import type { JobLeases } from "./job-leases.js";
import { TERMINAL_STATES, type JobRow, type JobStore, type MatchFacts } from "./job-store.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionStats } from "./region-stats.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabMatcher } from "./tab-matcher.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";

/** A job put on a tab; `sent: false` means the tab's socket was gone (the caller drops the tab). */
export type Placed = { tab: TabRecord; sent: boolean } | null;

export interface PlacementDeps {
  jobs: JobStore;
  tabs: TabRegistry;
  channel: TabChannel;
  matcher: TabMatcher;
  leases: JobLeases;
  timers: TimerTable<RegionTimer>;
  config: RegionConfig;
  region: RegionHint;
  trust: TabTrust;
  /** Where hedging's starts, wins and cost are counted for the region's report. */
  stats: RegionStats;
  /** The coordinator's seed for a job the client gave none (verification; docs/trust.md). */
  seedFor?: (jobId: string) => number;
}

/** New requests remembered for the probation share (whether a tab on probation took each). */
const PROBATION_WINDOW = 50;

/**
 * Which tab runs a job: matching a request against the index of available tabs, putting a job on a
 * tab (with its accept lease), giving waiting jobs to tabs as they free up, and resting tabs that
 * keep failing (circuit breaker). Keeps the matching index in step with every change to a tab.
 * Never changes a job's state beyond the assignment itself; the job state machine decides when.
 */
export class Placement {
  private readonly breaker = new CircuitBreaker();
  /** Of the last new requests placed, which went to a tab on probation. */
  private readonly recent: boolean[] = [];
  /** Jobs racing on a second tab for their first token (hedging.ts). */
  readonly hedging: Hedging;

  constructor(private readonly d: PlacementDeps) {
    this.hedging = new Hedging({
      jobs: d.jobs,
      tabs: d.tabs,
      channel: d.channel,
      matcher: d.matcher,
      leases: d.leases,
      stats: d.stats,
      updateTab: (tab, patch) => this.updateTab(tab, patch),
    });
  }

  /** Apply a change to a tab and keep the matching index in step with it. */
  updateTab(tab: TabRecord, patch: Parameters<TabRegistry["update"]>[1]): void {
    this.d.tabs.update(tab, patch);
    this.syncTab(tab);
  }

  syncTab(tab: TabRecord): void {
    const state = this.d.trust.state(tab.tabId);
    this.d.matcher.sync(
      tab,
      this.breaker.isResting(tab.tabId) || state === "quarantined",
      state === "trusted",
    );
  }

  forgetTab(tabId: string): void {
    this.d.matcher.remove(tabId);
  }

  matchRequest(model: string, facts: MatchFacts): MatchRequest {
    return {
      clientLocation: facts.clientLocation ?? REGION_CENTRES[this.d.region],
      model,
      promptTokens: facts.promptTokens,
      maxTokens: facts.maxTokens,
      stream: facts.stream,
      ...(facts.latencyBudgetMs !== undefined ? { latencyBudgetMs: facts.latencyBudgetMs } : {}),
    };
  }

  /**
   * The tab expected to answer a new request soonest, within its latency budget: an idle one, or
   * a busy one to queue the job behind, or — for a follow-up turn — the tab holding the
   * conversation (shared/scheduling/scheduler.ts). Tabs on probation take at
   * most `probationShare` of new requests while a trusted tab could take them.
   */
  matchNew(req: MatchRequest, affinity: Affinity | null = null): MatchResult {
    const now = Date.now();
    let result = this.d.matcher.match(req, now, affinity);
    if (result.kind !== "match") return result;
    let probation = this.d.trust.state(result.match.tab.id) !== "trusted";
    if (probation && this.probationShare() >= this.d.config.probationShare) {
      const trusted = this.d.matcher.matchAmong(
        req,
        now,
        (id) => !this.breaker.isResting(id) && this.d.trust.state(id) === "trusted",
      );
      if (trusted.kind === "match") {
        result = trusted;
        probation = false;
      }
    }
    this.recent.push(probation);
    if (this.recent.length > PROBATION_WINDOW) this.recent.shift();
    return result;
  }

  private probationShare(): number {
    if (this.recent.length === 0) return 0;
    return this.recent.filter(Boolean).length / this.recent.length;
  }

  /**
   * Bind a job to a tab for one attempt and send it; the tab must accept within `acceptMs`. A tab
   * busy with a job the region put on it holds this one behind it (protocol 5): its lease then
   * covers the expected wait too, and is renewed while the job ahead runs.
   */
  async assign(
    jobId: string,
    spec: JobSpec,
    tab: TabRecord,
    continueFrom: string,
  ): Promise<Placed> {
    const { jobs, matcher } = this.d;
    // One instant for the dispatch and the scheduler's start, or a clock tick between the two
    // reads would make the job look as if it had waited and never be timed (tab-learning.ts).
    const now = Date.now();
    jobs.assign(jobId, tab.tabId, now);
    const row = jobs.get(jobId) as JobRow;
    tab.lastAssignedAt = now;
    const facts = jobs.match(row);
    const size = {
      promptTokens: (facts.promptTokens ?? 0) + Math.ceil(continueFrom.length / 4),
      // Expected finish, for queue estimates: the longest answer the request allows.
      maxTokens: facts.maxTokens ?? spec.sampling.max_tokens,
    };
    const queued = tab.jobId !== null && tab.protocol >= QUEUE_SINCE_PROTOCOL;
    if (queued) this.updateTab(tab, { queuedJobId: jobId });
    else this.updateTab(tab, { jobId, state: "busy" });
    // A chat turn written whole by this tab leaves a history to protect (tab-learning.ts remember).
    const turn = { chat: spec.input.kind === "chat" && continueFrom === "" };
    matcher.assigned(tab.tabId, jobId, size, now, this.matchRequest(row.model, facts), turn);
    tab.busyUntil = matcher.freeAtMs(tab.tabId);
    const leaseMs = this.queuedLeaseMs(tab, now);
    // The job goes to its tab before its lease timer is armed: arming points the object's one
    // alarm at the earliest timer (two storage round trips), which must not stand between a
    // request and its first token. The lease is in force before the tab can answer: arm() writes
    // it (memory and timer row) before its first await, and a frame from the tab is handled as a
    // later event.
    const sent = this.d.channel.send(tab, {
      type: "job.assign",
      // A replacement gets what is left of max_tokens after the text already delivered.
      ...budgetForAttempt(this.seeded(jobId, spec), continueFrom, tab.protocol),
      attempt: row.attempts,
      ...(continueFrom ? { continueFrom } : {}),
      ...(queued ? { queued: true } : {}),
    });
    await this.d.leases.arm(jobId, leaseMs);
    const msg = queued ? "job queued on a busy tab" : "job assigned";
    // A first placement is routine (counted into a summary); a reassignment traces a failover.
    if (row.attempts <= 1) logRoutine(msg);
    else log("info", msg, { jobId, tab: tab.publicId, attempt: row.attempts });
    return { tab, sent };
  }

  /** The spec with the coordinator's seed when the client gave none (verification). */
  private seeded(jobId: string, spec: JobSpec): JobSpec {
    const seed = spec.sampling.seed ?? this.d.seedFor?.(jobId);
    return seed === undefined ? spec : { ...spec, sampling: { ...spec.sampling, seed } };
  }

  /**
   * A new job just put on `chosen`'s tab: race it on a second tab too when its latency budget and
   * an untimed chosen tab make that worth it (hedging.ts).
   */
  hedge(jobId: string, spec: JobSpec, req: MatchRequest, chosen: Match): void {
    const row = this.d.jobs.get(jobId);
    if (!row || row.state !== "assigned" || chosen.tab.queue.jobsAhead > 0) return;
    const promptTokens = this.d.jobs.match(row).promptTokens ?? 0;
    this.hedging.start(jobId, this.seeded(jobId, spec), req, chosen, promptTokens);
  }

  /**
   * The accept lease of a job on the tab: `acceptMs`, plus, while the job waits behind another,
   * the time the work ahead is expected to take.
   */
  private queuedLeaseMs(tab: TabRecord, now: number): number {
    const ahead = tab.queuedJobId ? Math.max(0, this.d.matcher.freeAtMs(tab.tabId) - now) : 0;
    return ahead + this.d.config.acceptMs;
  }

  /**
   * The lease of a job held behind another ran out: while the job ahead is still running (its own
   * lease guards it), the wait goes on and the lease is renewed (true); else it has run out.
   */
  async renewQueued(jobId: string): Promise<boolean> {
    const row = this.d.jobs.get(jobId);
    const tab = row?.node_id ? this.d.tabs.get(row.node_id) : undefined;
    if (!tab || tab.queuedJobId !== jobId || !tab.jobId) return false;
    // A job ahead that was moved or cancelled is stopping: the queued one should be starting. A
    // tab still racing the job ahead as its hedge (hedging.ts) runs it, though it is bound elsewhere.
    const ahead = this.d.jobs.get(tab.jobId);
    const runs = ahead?.node_id === tab.tabId || this.hedging.isHedge(tab, tab.jobId);
    if (!ahead || !runs || TERMINAL_STATES.has(ahead.state)) return false;
    await this.d.leases.arm(jobId, this.queuedLeaseMs(tab, Date.now()));
    return true;
  }

  /**
   * The tab's running job is off its hands (done — `finished` when it wrote its whole answer —
   * failed, or confirmed stopped): the job queued
   * behind it, if still the tab's, starts now — the tab starts it without waiting to be told —
   * and must be accepted within `acceptMs`; else the tab is free.
   */
  async release(tab: TabRecord, state: TabRecord["state"], finished = false): Promise<void> {
    const now = Date.now();
    // `finished`: the job ran to its end, so its length is learned (Scheduler.learnRunLengths).
    if (tab.jobId) this.d.matcher.left(tab.tabId, tab.jobId, now, { finished });
    const next = tab.queuedJobId;
    const row = next ? this.d.jobs.get(next) : undefined;
    if (next && row?.node_id === tab.tabId && row.state === "assigned") {
      this.updateTab(tab, { jobId: next, queuedJobId: null, state: "busy" });
      tab.busyUntil = this.d.matcher.freeAtMs(tab.tabId);
      await this.d.leases.arm(next, this.d.config.acceptMs);
    } else {
      this.updateTab(tab, { jobId: null, queuedJobId: null, state });
    }
  }

  /**
   * A job held behind another leaves the tab (cancelled, moved): the tab is told to drop it and no
   * longer counts it. Returns whether the job was queued on this tab.
   */
  unqueue(tab: TabRecord, jobId: string, reason: string): boolean {
    if (tab.queuedJobId !== jobId) return false;
    this.d.channel.send(tab, { type: "job.cancel", jobId, reason });
    this.updateTab(tab, { queuedJobId: null });
    return true;
  }

  /** When the job started on the tab (after the job ahead of it, if it waited); null if unknown. */
  startedAt(tab: TabRecord, jobId: string): number | null {
    return this.d.matcher.startedAt(tab.tabId, jobId);
  }

  /**
   * How long the tab may take to prefill the job's prompt (and the text it continues from): from
   * the prefill speed the region observed for it (three times the estimate), or at the
   * conservative default rate for a tab it never saw finish a job (its benchmark is its claim).
   */
  expectedPrefillMs(tab: TabRecord, jobId: string): number {
    const row = this.d.jobs.get(jobId);
    if (!row) return 0;
    const tokens = (this.d.jobs.match(row).promptTokens ?? 0) + Math.ceil(row.text.length / 4);
    const observed = this.d.matcher.observedPrefillSpeed(tab.tabId);
    return observed !== null
      ? (3 * tokens * 1000) / observed
      : (tokens * 1000) / this.d.config.prefillUnseenTps;
  }

  /** Give a queued job to the best tab (idle, or busy with room) that has not tried it yet. */
  async tryDispatch(jobId: string): Promise<Placed> {
    const { jobs } = this.d;
    const row = jobs.get(jobId);
    if (!row || row.state !== "queued") return null;
    const tried = new Set(jobs.tried(row));
    // A failover has already spent its budget; any tab beats none.
    const req = { ...this.matchRequest(row.model, jobs.match(row)) };
    delete req.latencyBudgetMs;
    const spec = jobs.spec(row);
    const result = this.d.matcher.matchAmong(
      req,
      Date.now(),
      (id) => !tried.has(id) && !this.breaker.isResting(id) && this.mayContinue(id, spec, row.text),
    );
    const tab = result.kind === "match" ? this.d.tabs.get(result.match.tab.id) : undefined;
    if (!tab) return null;
    await this.d.timers.clear(jobTimer("wait", jobId));
    return this.assign(jobId, spec, tab, row.text);
  }

  /**
   * The best tab to continue another object's job on now (job-intake.ts continueHere), chosen as a
   * failover here chooses one (tryDispatch): among the tabs that can take what is left of its
   * budget, with no probation share (it is no new request).
   */
  matchContinuation(
    req: MatchRequest,
    spec: Pick<JobSpec, "sampling">,
    delivered: string,
  ): MatchResult {
    return this.d.matcher.matchAmong(
      req,
      Date.now(),
      (id) => !this.breaker.isResting(id) && this.mayContinue(id, spec, delivered),
    );
  }

  /** Whether the tab may take a job's next attempt after `delivered` (answer-budget.ts). */
  mayContinue(tabId: string, spec: Pick<JobSpec, "sampling">, delivered: string): boolean {
    const tab = this.d.tabs.get(tabId);
    return !!tab && mayContinueOn(tab.protocol, spec, delivered);
  }

  /**
   * A tab became free (or joined): give it the first waiting job it can serve — failovers first,
   * then by priority class, then arrival — so the queue drains in order without a scan of tabs.
   */
  async dispatchWaiting(tab: TabRecord): Promise<Placed> {
    if (tab.jobId || tab.state !== "idle" || this.breaker.isResting(tab.tabId)) return null;
    if (this.d.trust.state(tab.tabId) === "quarantined") return null;
    for (const row of this.d.jobs.queued()) {
      if (!tab.models.includes(row.model) || this.d.jobs.tried(row).includes(tab.tabId)) continue;
      const spec = this.d.jobs.spec(row);
      if (!mayContinueOn(tab.protocol, spec, row.text)) continue;
      await this.d.timers.clear(jobTimer("wait", row.id));
      return this.assign(row.id, spec, tab, row.text);
    }
    return this.takeQueued(tab);
  }

  /**
   * Nothing waits: the free tab takes a job queued behind another tab's running job when it would
   * start it sooner (Scheduler.queuedToTake). Queueing commits before the job ahead's length is
   * known; this undoes the commitment when a tab frees up first (docs/routing.md).
   */
  private async takeQueued(tab: TabRecord): Promise<Placed> {
    const move = this.d.matcher.queuedToTake(tab.tabId, Date.now());
    const from = move ? this.d.tabs.get(move.fromTabId) : undefined;
    const row = move ? this.d.jobs.get(move.jobId) : undefined;
    if (!from || !row || row.state !== "assigned" || row.node_id !== from.tabId) return null;
    if (!tab.models.includes(row.model)) return null;
    const spec = this.d.jobs.spec(row);
    if (!mayContinueOn(tab.protocol, spec, row.text)) return null;
    if (!this.unqueue(from, row.id, "moved to a tab that is free")) return null;
    return this.assign(row.id, spec, tab, row.text);
  }

  /** Rested by the circuit breaker: no work (audits included) until the rest is over. */
  isResting(tabId: string): boolean {
    return this.breaker.isResting(tabId);
  }

  /** A failure the tab is to blame for (job error, missed lease); enough of them rest the tab. */
  recordFailure(tabId: string): void {
    if (this.breaker.recordFailure(tabId)) {
      const tab = this.d.tabs.get(tabId);
      if (tab) this.d.matcher.sync(tab, true);
      log("warn", "tab rested after repeated failures", { tab: tab?.publicId });
    }
  }
}
