import { BoundHeap } from "./bound-heap.js";
import { CandidateIndex } from "./candidate-index.js";
import { idleFirst, linearBest, withBudget, type Match, type MatchResult } from "./linear-scan.js";
import { isEligible, scoreTab, type CandidateTab, type MatchRequest } from "./score.js";
import { SpeedTracker, type Observation } from "./speed-tracker.js";
import { TabLoad } from "./tab-load.js";
import { ReplyPace } from "./reply-pace.js";
import { RunLengths } from "./run-lengths.js";
import { SpareMix } from "./spare-mix.js";
import {
  DEFAULT_SCHEDULER_IDLE_PREFERENCE,
  DEFAULT_MAX_QUEUED,
  DEFAULT_HOLD_MS,
  DEFAULT_HOLD_WEIGHT,
  DEFAULT_MISS_WEIGHT,
  DEFAULT_OVERDUE_SHARE,
  DEFAULT_ANSWER_SHARE,
  DEFAULT_SPARE_FAST_FROM_PREFILL,
  DEFAULT_SPARE_BELOW_TOKENS,
  DEFAULT_SPARE_WITHIN_MS,
  DEFAULT_SPARE_IDLE_SHARE,
  DEFAULT_SPARE_LONG_SHARE,
  DEFAULT_SPARE_MIX_QUANTILE,
  DEFAULT_SPARE_MIX_WITHIN_MS,
  type SchedulerOptions,
} from "./scheduler-options.js";

/**
 * The scheduling policy, whole: which tabs may be offered a job, what each is expected to take
 * (benchmark speeds corrected by what finished jobs showed), the work already on each, and the
 * choice for a request. The Region object (edge/region/tab-matcher.ts) and the simulator
 * (scripts/sim/policies.ts) both drive this class, with the real clock and a simulated one, so
 * bench:geo measures the policy the coordinator serves with.
 */

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

/**
 * A follow-up turn of a conversation: the key of the history it extends (a hash, never the text;
 * see conversation.ts) and how many of its prompt tokens that history is.
 */
export interface Affinity {
  key: string;
  cachedTokens: number;
}

const IDLE = { jobsAhead: 0, freeAtMs: 0 };

export class Scheduler {
  readonly index: CandidateIndex;
  readonly maxQueued: number;
  private readonly tracker: SpeedTracker;
  /** Uncorrected records (benchmark speeds, no queue): the tracker learns against these. */
  private readonly raws = new Map<string, CandidateTab>();
  private readonly availability = new Map<string, TabAvailability>();
  private readonly loads = new Map<string, TabLoad>();
  /** The conversation each tab's engine holds (the last job it served), and the reverse. */
  private readonly holds = new Map<string, string>();
  private readonly holders = new Map<string, Set<string>>();
  /** Protected holds: the extra cost a request pays on that tab, and until when. */
  private readonly penalty = new Map<string, { ms: number; untilMs: number; jobId?: string }>();
  private readonly expiries = new BoundHeap<{ tabId: string; untilMs: number }>();
  private readonly holdMs: number;
  private readonly pace: ReplyPace | null;
  private readonly holdWeight: number;
  private readonly missWeight: number;
  private readonly overdueShare: number;
  private readonly answerShare: number;
  private readonly queueBehindUntimed: boolean;
  /** Jobs waiting behind another tab's running job, with their requests (queuedToTake). */
  private readonly queuedJobs = new Map<string, { tabId: string; req: MatchRequest }>();
  /** Queued chat turns (see `assigned`), protected once they start. */
  private readonly queuedTurns = new Map<string, JobSize>();
  /** Expected ends of running jobs, to notice the ones that run late. */
  private readonly ends = new BoundHeap<{ tabId: string; endMs: number }>();
  /** Run lengths of finished jobs ÷ their estimates (`learnRunLengths`), or null. */
  private readonly runLengths: RunLengths | null;
  /** The offered tabs slower than `spareFastFromPrefill` (null when sparing is off). */
  private readonly modest: CandidateIndex | null;
  private readonly spareFastFromPrefill: number;
  private readonly spareIdleShare: number;
  /** Which prompts are short now, from the recent mix (null when sparing is off). */
  private readonly mix: SpareMix | null;
  /** Open tabs at or above `spareFastFromPrefill`, and those of them idle. */
  private readonly fastTabs = new Set<string>();
  private readonly idleFastTabs = new Set<string>();

  constructor(options: SchedulerOptions = {}) {
    this.index = new CandidateIndex({
      ...(options.staleAfterMs !== undefined ? { staleAfterMs: options.staleAfterMs } : {}),
      idlePreference: options.idlePreference ?? DEFAULT_SCHEDULER_IDLE_PREFERENCE,
    });
    this.maxQueued = options.maxQueued ?? DEFAULT_MAX_QUEUED;
    this.holdMs = options.holdMs ?? DEFAULT_HOLD_MS;
    this.pace =
      (options.learnReplyPace ?? true) && this.holdMs > 0
        ? new ReplyPace({ maxMs: this.holdMs })
        : null;
    this.holdWeight = options.holdWeight ?? DEFAULT_HOLD_WEIGHT;
    this.missWeight = options.missWeight ?? DEFAULT_MISS_WEIGHT;
    this.overdueShare = options.overdueShare ?? DEFAULT_OVERDUE_SHARE;
    this.answerShare = options.answerShare ?? DEFAULT_ANSWER_SHARE;
    this.queueBehindUntimed = options.queueBehindUntimed ?? false;
    this.tracker = new SpeedTracker({
      fastStart: options.fastStart ?? true,
      fleetPrior: options.fleetPrior,
    });
    this.runLengths =
      (options.learnRunLengths ?? true)
        ? new RunLengths(
            options.runLengthQuantile !== undefined ? { quantile: options.runLengthQuantile } : {},
          )
        : null;
    const spareFast = options.spareFast ?? true;
    this.spareFastFromPrefill = spareFast
      ? (options.spareFastFromPrefill ?? DEFAULT_SPARE_FAST_FROM_PREFILL)
      : Number.POSITIVE_INFINITY;
    this.spareIdleShare = options.spareIdleShare ?? DEFAULT_SPARE_IDLE_SHARE;
    this.mix = spareFast
      ? new SpareMix({
          belowTokens: options.spareBelowTokens ?? DEFAULT_SPARE_BELOW_TOKENS,
          longShare: options.spareLongShare ?? DEFAULT_SPARE_LONG_SHARE,
          withinMs: options.spareWithinMs ?? DEFAULT_SPARE_WITHIN_MS,
          mixQuantile: options.spareMixQuantile ?? DEFAULT_SPARE_MIX_QUANTILE,
          mixWithinMs: options.spareMixWithinMs ?? DEFAULT_SPARE_MIX_WITHIN_MS,
        })
      : null;
    this.modest = spareFast
      ? new CandidateIndex({
          staleAfterMs: this.index.staleAfterMs,
          idlePreference: this.index.idlePreference,
        })
      : null;
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
    this.modest?.remove(tabId);
    this.fastTabs.delete(tabId);
    this.idleFastTabs.delete(tabId);
    this.raws.delete(tabId);
    this.availability.delete(tabId);
    for (const id of this.loads.get(tabId)?.ids() ?? []) this.queuedTurns.delete(id);
    this.loads.delete(tabId);
    for (const [jobId, q] of this.queuedJobs) if (q.tabId === tabId) this.queuedJobs.delete(jobId);
    if (!opts.keepLearned) this.tracker.forget(tabId);
    this.drop(tabId);
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

  /**
   * The request's tab: the best idle one unless queueing behind a busy one is clearly faster. A
   * follow-up turn also considers the tab that holds its history (only the new tokens to prefill
   * there) and takes it when its expected first token beats the choice — by `idlePreference` when
   * that means waiting behind a job while the choice is idle, as for any busy tab.
   */
  choose(req: MatchRequest, nowMs: number, affinity?: Affinity): MatchResult {
    this.expireHolds(nowMs);
    this.extendOverdue(nowMs);
    if (affinity) this.pace?.replied(affinity.key, nowMs);
    this.mix?.note(req.promptTokens);
    const result = this.spare(this.index.match(req, nowMs), req, nowMs);
    return affinity ? this.withAffinity(result, req, nowMs, affinity) : result;
  }

  /**
   * A short prompt on a fast tab while fast tabs are scarce and long prompts come that need them:
   * it should leave the tab free, at a cost of up to the returned ms; null when it need not.
   */
  private spareLoss(req: MatchRequest, tab: CandidateTab): number | null {
    const rule = this.mix?.rule();
    const spare =
      rule &&
      req.promptTokens < rule.shortBelow &&
      tab.prefillTokensPerSec >= this.spareFastFromPrefill &&
      this.idleFastTabs.size < this.spareIdleShare * this.fastTabs.size;
    return spare ? rule.withinMs : null;
  }

  /** See `spareFastFromPrefill`. */
  private spare(result: MatchResult, req: MatchRequest, nowMs: number): MatchResult {
    if (!this.modest || result.kind !== "match") return result;
    const chosen = result.match;
    const withinMs = this.spareLoss(req, chosen.tab);
    if (withinMs === null) return result;

    const alt = this.modest.match(req, nowMs);
    if (alt.kind !== "match") return result;
    return alt.match.estimate.objectiveMs <= chosen.estimate.objectiveMs + withinMs ? alt : result;
  }

  /**
   * A tab finished a job of a conversation: its engine now holds that conversation
   * (`heldTokens` of it), which is protected for `holdMs`.
   */
  served(tabId: string, conversationKey: string, heldTokens: number, nowMs: number): void {
    this.pace?.served(conversationKey, nowMs);
    // A job already waiting on the tab will replace the conversation before anyone can extend it.
    if ((this.loads.get(tabId)?.queuedCount ?? 0) > 0) return;
    this.drop(tabId);
    this.holds.set(tabId, conversationKey);
    let set = this.holders.get(conversationKey);
    if (!set) this.holders.set(conversationKey, (set = new Set()));
    set.add(tabId);
    const tab = this.corrected(tabId);
    if (tab && this.holdMs > 0 && heldTokens > 0) {
      const untilMs = nowMs + this.holdWindowMs();
      const ms = (this.holdWeight * heldTokens * 1000) / tab.prefillTokensPerSec;
      this.penalty.set(tabId, { ms, untilMs });
      this.expiries.push(untilMs, { tabId, untilMs });
    }
    this.reindex(tabId);
  }

  /** The conversation the tab's engine holds, if known. */
  holding(tabId: string): string | null {
    return this.holds.get(tabId) ?? null;
  }

  private withAffinity(
    result: MatchResult,
    req: MatchRequest,
    nowMs: number,
    affinity: Affinity,
  ): MatchResult {
    const cachedReq = {
      ...req,
      promptTokens: Math.max(0, req.promptTokens - affinity.cachedTokens),
    };
    let best: Match | null = null;
    for (const id of this.holders.get(affinity.key) ?? []) {
      const held = this.index.get(id);
      if (!held || !isEligible(held, req.model, nowMs, this.index.staleAfterMs)) continue;
      // The protection is against other requests, not against the conversation's own next turn.
      const ms = this.penalty.get(id)?.ms ?? 0;
      const tab = ms ? { ...held, accessDelayMs: held.accessDelayMs - ms } : held;
      const estimate = scoreTab(tab, cachedReq, nowMs);
      if (!best || estimate.objectiveMs < best.estimate.objectiveMs) best = { tab, estimate };
    }
    if (!best) return this.missed(result, req, nowMs);
    const chosen =
      result.kind === "no_tabs" ? null : result.kind === "match" ? result.match : result.best;
    if (chosen && chosen.tab.id !== best.tab.id) {
      const waits = best.tab.queue.jobsAhead > 0 && chosen.tab.queue.jobsAhead === 0;
      const factor = waits ? this.index.idlePreference : 1;
      if (best.estimate.objectiveMs * factor >= chosen.estimate.objectiveMs) return result;
    }
    return withBudget(best, req);
  }

  /** How long a served history is protected: as long as replies come, at most `holdMs`. */
  holdWindowMs(): number {
    return this.pace?.windowMs() ?? this.holdMs;
  }

  /**
   * A follow-up whose history is gone: if the choice is another conversation's protected holder,
   * choose again with protections weighed `missWeight` times (a scan, only in this case).
   */
  private missed(result: MatchResult, req: MatchRequest, nowMs: number): MatchResult {
    const chosen =
      result.kind === "no_tabs" ? null : result.kind === "match" ? result.match : result.best;
    if (this.missWeight <= 1 || !chosen || !this.penalty.has(chosen.tab.id)) return result;
    const extra = this.missWeight - 1;
    const tabs = [...this.index.tabs()].map((t) => {
      const ms = this.penalty.get(t.id)?.ms ?? 0;
      return ms ? { ...t, accessDelayMs: t.accessDelayMs + extra * ms } : t;
    });
    const stale = this.index.staleAfterMs;
    const again = idleFirst(
      (idleOnly) => linearBest(tabs, req, nowMs, stale, idleOnly),
      req,
      this.index.idlePreference,
    );
    // Report the tab as indexed (its estimate without the extra weight).
    const pick =
      again.kind === "no_tabs" ? null : again.kind === "match" ? again.match : again.best;
    const tab = pick ? this.index.get(pick.tab.id) : undefined;
    return tab ? withBudget({ tab, estimate: scoreTab(tab, req, nowMs) }, req) : result;
  }

  private expireHolds(nowMs: number): void {
    while (this.expiries.size > 0 && this.expiries.peekBound() <= nowMs) {
      const { tabId, untilMs } = this.expiries.pop()!;
      if (this.penalty.get(tabId)?.untilMs !== untilMs) continue;
      this.penalty.delete(tabId);
      this.reindex(tabId);
    }
  }

  /**
   * Running jobs past their expected end get a later one, so a late tab stops looking free. With
   * `learnRunLengths`, a running job is also re-timed as it runs (checkpoints closing in on its
   * expected end): how long it has run already says how long it will run.
   */
  private extendOverdue(nowMs: number): void {
    if (this.overdueShare <= 0 && !this.runLengths) return;
    while (this.ends.size > 0 && this.ends.peekBound() <= nowMs) {
      const { tabId, endMs } = this.ends.pop()!;
      const load = this.loads.get(tabId);
      if (!load || load.runningEndMs() !== endMs) continue; // finished, or already re-timed
      this.retime(load, nowMs);
      if (load.runningEndMs() <= nowMs && this.overdueShare > 0) {
        load.extendOverdue(nowMs, this.overdueShare);
      }
      // Past its end with nothing to extend it (overdueShare 0): nothing more to watch.
      if (load.runningEndMs() > nowMs) this.watchEnd(tabId, nowMs);
      this.reindex(tabId);
    }
  }

  /**
   * Watch the tab's running job for running late: at its expected end, and with
   * `learnRunLengths` at checkpoints before it, halving the time left (at least a 20th of its
   * estimate apart), so the expected end follows the job as it runs.
   */
  private watchEnd(tabId: string, nowMs: number): void {
    const load = this.loads.get(tabId);
    const endMs = load?.runningEndMs() ?? 0;
    if (!load || endMs <= 0) return;
    const job = this.runLengths ? load.runningJob(load.ids()[0] ?? "") : null;
    const atMs = job
      ? Math.min(endMs, nowMs + Math.max(job.estimateMs / 20, (endMs - nowMs) / 2))
      : endMs;
    this.ends.push(atMs, { tabId, endMs });
  }

  /** A job starts running on the tab (put on it idle, or the one ahead left): time it. */
  private started(tabId: string, nowMs: number): void {
    const load = this.loads.get(tabId);
    if (load) this.retime(load, nowMs);
    this.watchEnd(tabId, nowMs);
  }

  /** The running job's expected end from how long it has run (`learnRunLengths`). */
  private retime(load: TabLoad, nowMs: number): void {
    const lengths = this.runLengths;
    if (lengths) load.retime(nowMs, (share) => lengths.expectedShare(share));
  }

  private drop(tabId: string): void {
    this.penalty.delete(tabId);
    const key = this.holds.get(tabId);
    if (key === undefined) return;
    this.holds.delete(tabId);
    const set = this.holders.get(key);
    set?.delete(tabId);
    if (set?.size === 0) this.holders.delete(key);
  }

  /**
   * The same choice among the tabs `usable` allows (failover excludes tabs that already failed
   * the job; probation limits some). Rare, so a scan of the offered tabs is fine.
   */
  chooseAmong(req: MatchRequest, nowMs: number, usable: (id: string) => boolean): MatchResult {
    this.extendOverdue(nowMs);
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

  /**
   * A job was put on the tab: it runs now, or waits behind the running one. `turn`: the job is a
   * chat turn whose answer the engine will hold for a follow-up (served() records it when it
   * ends); while it runs, the history it is building is protected already (see `served`).
   */
  assigned(
    tabId: string,
    jobId: string,
    job: JobSize,
    nowMs: number,
    req?: MatchRequest,
    turn?: { chat: boolean },
  ): "run" | "queue" {
    const load = this.loadOf(tabId);
    if (load.has(jobId)) return load.startedAt(jobId) !== null ? "run" : "queue";
    // The job replaces whatever conversation the engine held (served() records a continuation).
    this.drop(tabId);
    const expected = { ...job, maxTokens: job.maxTokens * this.answerShare };
    const where = load.add(jobId, this.serviceMs(tabId, expected), nowMs);
    if (where === "run") this.started(tabId, nowMs);
    else if (req) this.queuedJobs.set(jobId, { tabId, req });
    if (turn?.chat) {
      if (where === "run") this.protectRunning(tabId, jobId, expected);
      else this.queuedTurns.set(jobId, expected);
    }
    this.reindex(tabId);
    return where;
  }

  /**
   * A job queued behind a running chat turn would evict the history that turn leaves before its
   * follow-up can come (bench:geo's conversations: a third of the misses at 70% load were jobs
   * queued behind the turn before). So the running turn's history — its prompt and the answer
   * expected — is protected from the start, as `served` protects it once it ends.
   */
  private protectRunning(tabId: string, jobId: string, expected: JobSize): void {
    const tab = this.corrected(tabId);
    const endMs = this.loads.get(tabId)?.runningEndMs() ?? 0;
    if (!tab || this.holdMs <= 0 || endMs <= 0) return;
    const tokens = expected.promptTokens + expected.maxTokens;
    const ms = (this.holdWeight * tokens * 1000) / tab.prefillTokensPerSec;
    const untilMs = endMs + this.holdWindowMs();
    this.penalty.set(tabId, { ms, untilMs, jobId });
    this.expiries.push(untilMs, { tabId, untilMs });
  }

  /**
   * A job left the tab; returns the queued job that starts now in its place, if any. `finished`:
   * it ran to the end of its answer (not failed, cancelled or moved), so its length is learned.
   */
  left(
    tabId: string,
    jobId: string,
    nowMs: number,
    opts: { finished?: boolean } = {},
  ): string | null {
    const load = this.loads.get(tabId);
    if (!load) return null;
    const ran = opts.finished ? load.runningJob(jobId) : null;
    if (ran) this.runLengths?.record(nowMs - ran.startedAtMs, ran.estimateMs);
    const next = load.remove(jobId, nowMs);
    this.queuedJobs.delete(jobId);
    // A running turn that left without served() (failed, cancelled, moved) leaves no history.
    if (this.penalty.get(tabId)?.jobId === jobId) this.penalty.delete(tabId);
    if (next) this.queuedJobs.delete(next);
    const nextTurn = next ? this.queuedTurns.get(next) : undefined;
    this.queuedTurns.delete(jobId);
    if (next) this.queuedTurns.delete(next);
    if (load.jobsAhead === 0) this.loads.delete(tabId);
    else if (next) this.started(tabId, nowMs);
    if (next && nextTurn) this.protectRunning(tabId, next, nextTurn);
    this.reindex(tabId);
    return next;
  }

  /**
   * For a tab that is idle now: the job waiting behind another tab's running job that it would
   * start answering soonest instead — the one with the most to gain, if any gains.
   */
  queuedToTake(tabId: string, nowMs: number): { jobId: string; fromTabId: string } | null {
    if (this.jobsAhead(tabId) > 0 || this.queuedJobs.size === 0) return null;
    this.extendOverdue(nowMs);
    const here = this.index.get(tabId);
    if (!here) return null;
    let best: { jobId: string; fromTabId: string } | null = null;
    let bestGain = 0;
    for (const [jobId, { tabId: from, req }] of this.queuedJobs) {
      if (!isEligible(here, req.model, nowMs, this.index.staleAfterMs)) continue;
      const there = this.corrected(from);
      const endMs = this.loads.get(from)?.runningEndMs() ?? 0;
      if (!there) continue;
      const waiting = { ...there, queue: { jobsAhead: 1, freeAtMs: endMs } };
      let gain = scoreTab(waiting, req, nowMs).objectiveMs - scoreTab(here, req, nowMs).objectiveMs;
      gain -= this.spareLoss(req, here) ?? 0;
      if (gain > bestGain) [best, bestGain] = [{ jobId, fromTabId: from }, gain];
    }
    return best;
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
    if (this.tracker.priorMoved()) {
      for (const id of this.raws.keys())
        if (this.tracker.correction(id).samples === 0) this.reindex(id);
    }
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

  /** Keeps `fastTabs` and `idleFastTabs` (for `spareIdleShare`). */
  private countFast(tabId: string, tab: CandidateTab, a: TabAvailability, ahead: number): void {
    const fast =
      a.open && this.tracker.correct(tab).prefillTokensPerSec >= this.spareFastFromPrefill;
    if (fast) this.fastTabs.add(tabId);
    else this.fastTabs.delete(tabId);
    if (fast && ahead === 0 && !a.busy) this.idleFastTabs.add(tabId);
    else this.idleFastTabs.delete(tabId);
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
    if (this.modest) this.countFast(tabId, tab, a, ahead);
    const offered =
      a.open &&
      (ahead === 0
        ? !a.busy
        : a.canQueue &&
          (load?.queuedCount ?? 0) < this.maxQueued &&
          this.maxQueued > 0 &&
          (this.queueBehindUntimed || this.tracker.correction(tabId).samples > 0));
    if (!offered) {
      this.index.remove(tabId);
      this.modest?.remove(tabId);
      return;
    }
    const corrected = this.tracker.correct({ ...tab, queue: load ? load.queue() : IDLE });
    const hold = this.penalty.get(tabId)?.ms ?? 0;
    // A protected history counts as extra delay on this tab for any other request.
    const record = hold
      ? { ...corrected, accessDelayMs: corrected.accessDelayMs + hold }
      : corrected;
    this.index.upsert(record);
    if (this.modest) {
      if (record.prefillTokensPerSec < this.spareFastFromPrefill) this.modest.upsert(record);
      else this.modest.remove(tabId);
    }
  }
}
