import { CandidateIndex } from "./candidate-index.js";
import { idleFirst, linearBest, type MatchResult } from "./linear-scan.js";
import type { CandidateTab, MatchRequest } from "./score.js";
import { SpeedTracker, type Observation } from "./speed-tracker.js";
import { TabLoad } from "./tab-load.js";

/**
 * The scheduling policy, whole: which tabs may be offered a job, what each is expected to take
 * (benchmark speeds corrected by what finished jobs showed), the work already on each, and the
 * choice for a request. The Region object (edge/region/tab-matcher.ts) and the simulator
 * (scripts/sim/policies.ts) both drive this class, with the real clock and a simulated one, so
 * bench:geo measures the policy the coordinator serves with.
 */

export interface SchedulerOptions {
  /** Tabs whose last heartbeat is older than this are never chosen. */
  staleAfterMs?: number;
  /** See `idleFirst`: how much faster a busy tab must be to queue a job behind its running one. */
  idlePreference?: number;
  /**
   * Jobs a tab may hold behind its running one. 1: the tab starts the next job the moment the
   * current one ends (no round trip lost) and the estimate needs to see only one answer ahead.
   */
  maxQueued?: number;
}

/** What decides whether a tab is offered work at all, apart from the work on it. */
export interface TabAvailability {
  /** Connected, with a model loaded, not paused, resting or quarantined. */
  open: boolean;
  /** The tab says it is busy; busy with nothing the scheduler placed (an audit) means no offers. */
  busy: boolean;
  /** It can hold a job behind its running one (it speaks the protocol for it). */
  canQueue: boolean;
}

export interface JobSize {
  promptTokens: number;
  maxTokens: number;
}

export const DEFAULT_MAX_QUEUED = 1;

const IDLE = { jobsAhead: 0, freeAtMs: 0 };

export class Scheduler {
  readonly index: CandidateIndex;
  readonly maxQueued: number;
  private readonly tracker = new SpeedTracker();
  /** Uncorrected records (benchmark speeds, no queue): the tracker learns against these. */
  private readonly raws = new Map<string, CandidateTab>();
  private readonly availability = new Map<string, TabAvailability>();
  private readonly loads = new Map<string, TabLoad>();

  constructor(options: SchedulerOptions = {}) {
    this.index = new CandidateIndex({
      ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
      ...(options.idlePreference !== undefined ? { idlePreference: options.idlePreference } : {}),
    });
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
  }

  /** A tab (re)described: its record (the queue field is ignored; the scheduler keeps it). */
  put(tab: CandidateTab, availability: TabAvailability): void {
    this.raws.set(tab.id, tab);
    this.availability.set(tab.id, availability);
    this.reindex(tab.id);
  }

  /**
   * The tab is gone. `keepLearned`: keep what finished jobs taught about its speed, for an
   * identity that may come back (the Region keeps signed identities' observed speeds).
   */
  remove(tabId: string, opts: { keepLearned?: boolean } = {}): void {
    this.index.remove(tabId);
    this.raws.delete(tabId);
    this.availability.delete(tabId);
    this.loads.delete(tabId);
    if (!opts.keepLearned) this.tracker.forget(tabId);
  }

  /** Forget what was learned about a tab that is no longer here. */
  forgetLearned(tabId: string): void {
    if (!this.raws.has(tabId)) this.tracker.forget(tabId);
  }

  /** The tab's record as last put (its base speeds, before learning). */
  raw(tabId: string): CandidateTab | undefined {
    return this.raws.get(tabId);
  }

  /**
   * Replace the tab's base speeds (a claim no longer believed) and learn afresh against them, so
   * nothing learned so far scales the new base.
   */
  rebase(tabId: string, speeds: { decode: number; prefill: number }): void {
    const tab = this.raws.get(tabId);
    if (!tab) return;
    this.raws.set(tabId, {
      ...tab,
      decodeTokensPerSec: speeds.decode,
      prefillTokensPerSec: speeds.prefill,
    });
    this.tracker.forget(tabId);
    this.reindex(tabId);
  }

  /** The request's tab: the best idle one unless queueing behind a busy one is clearly faster. */
  choose(req: MatchRequest, nowMs: number): MatchResult {
    return this.index.match(req, nowMs);
  }

  /**
   * The same choice among the tabs `usable` allows (failover excludes tabs that already failed
   * the job; probation limits some). Rare, so a scan of the offered tabs is fine.
   */
  chooseAmong(req: MatchRequest, nowMs: number, usable: (id: string) => boolean): MatchResult {
    const tabs = [...this.index.tabs()].filter((t) => usable(t.id));
    const stale = this.index.staleAfterMs;
    return idleFirst(
      (idleOnly) => linearBest(tabs, req, nowMs, stale, idleOnly),
      req,
      this.index.idlePreference,
    );
  }

  /** Expected prefill + decode time of a job on the tab, decoding to max_tokens. */
  serviceMs(tabId: string, job: JobSize): number {
    const tab = this.corrected(tabId);
    if (!tab) return 0;
    return (
      (job.promptTokens * 1000) / tab.prefillTokensPerSec +
      (job.maxTokens * 1000) / tab.decodeTokensPerSec
    );
  }

  /** A job was put on the tab: it runs now, or waits behind the running one. */
  assigned(tabId: string, jobId: string, job: JobSize, nowMs: number): "run" | "queue" {
    const load = this.loadOf(tabId);
    if (load.has(jobId)) return load.startedAt(jobId) !== null ? "run" : "queue";
    const where = load.add(jobId, this.serviceMs(tabId, job), nowMs);
    this.reindex(tabId);
    return where;
  }

  /** A job left the tab; returns the queued job that starts now in its place, if any. */
  left(tabId: string, jobId: string, nowMs: number): string | null {
    const load = this.loads.get(tabId);
    if (!load) return null;
    const next = load.remove(jobId, nowMs);
    if (load.jobsAhead === 0) this.loads.delete(tabId);
    this.reindex(tabId);
    return next;
  }

  /** Jobs the scheduler believes are on the tab (running first). */
  jobsAhead(tabId: string): number {
    return this.loads.get(tabId)?.jobsAhead ?? 0;
  }

  /** The jobs on the tab, running first. */
  jobIds(tabId: string): string[] {
    return this.loads.get(tabId)?.ids() ?? [];
  }

  has(tabId: string, jobId: string): boolean {
    return this.loads.get(tabId)?.has(jobId) ?? false;
  }

  /** When the tab's running job started (its dispatch, or when the job ahead of it left). */
  startedAt(tabId: string, jobId: string): number | null {
    return this.loads.get(tabId)?.startedAt(jobId) ?? null;
  }

  /** When the work on the tab is expected to be done (0 when idle). */
  freeAtMs(tabId: string): number {
    return this.loads.get(tabId)?.queue().freeAtMs ?? 0;
  }

  /** Learn from a job the tab finished. */
  observe(tabId: string, obs: Observation): void {
    const tab = this.raws.get(tabId);
    if (!tab) return;
    this.tracker.observe(tab, obs);
    this.reindex(tabId);
  }

  /** The tab as matching currently believes it (learned speeds), without its queue. */
  corrected(tabId: string): CandidateTab | undefined {
    const tab = this.raws.get(tabId);
    return tab ? this.tracker.correct(tab) : undefined;
  }

  /** Finished jobs the tracker learned from for this tab. */
  samples(tabId: string): number {
    return this.tracker.correction(tabId).samples;
  }

  private loadOf(tabId: string): TabLoad {
    let load = this.loads.get(tabId);
    if (!load) this.loads.set(tabId, (load = new TabLoad()));
    return load;
  }

  /**
   * Offered work: open tabs that are idle, or busy with a job the scheduler placed and room to
   * hold one more behind it. A tab busy with something else (an audit) or full is not offered.
   */
  private reindex(tabId: string): void {
    const tab = this.raws.get(tabId);
    const a = this.availability.get(tabId);
    if (!tab || !a) return;
    const load = this.loads.get(tabId);
    const ahead = load?.jobsAhead ?? 0;
    const offered =
      a.open &&
      (ahead === 0
        ? !a.busy
        : a.canQueue && (load?.queuedCount ?? 0) < this.maxQueued && this.maxQueued > 0);
    if (!offered) {
      this.index.remove(tabId);
      return;
    }
    this.index.upsert(this.tracker.correct({ ...tab, queue: load ? load.queue() : IDLE }));
  }
}
