import { StorageBudget, auditStorageBytes } from "./storage-budget.js";
import { REGION_CENTRES, type RegionHint } from "../../shared/geo/regions.js";
import { JobIntake } from "./job-intake.js";
import { JobLeases } from "./job-leases.js";
import { JobLogprobs } from "./job-logprobs.js";
import { JobMachine } from "./job-machine.js";
import { JobReaders } from "./job-readers.js";
import { JobStore, type JobRow } from "./job-store.js";
import { Placement } from "./placement.js";
import { regionAlarms } from "./region-alarms.js";
import type { RegionConfig } from "./region-config.js";
import { RegionReport } from "./region-report.js";
import { RegionStats } from "./region-stats.js";
import { regionTimerCodec, type RegionTimer } from "./region-timers.js";
import { withStatus, type RegionSummary } from "./region-views.js";
import { TabChannel } from "./tab-channel.js";
import { TabLearning } from "./tab-learning.js";
import { TabMatcher } from "./tab-matcher.js";
import { TabRegistry } from "./tab-registry.js";
import { TabTrust } from "./tab-trust.js";
import { TimerTable } from "./timer-table.js";
import { Audits } from "./audits.js";
import type { ConfirmedCount } from "./accusations.js";
import { Canaries } from "./canaries.js";
import { trustHealth } from "./trust-health.js";
import { Reputation, trustSettings, type TrustSettings } from "./reputation.js";
import { jobSeed } from "../../shared/trust/policy.js";
import { RegionCredits, type RegionLedger } from "../credits/region-credits.js";
import { EmbeddingAnswers } from "./embedding-answers.js";
import type { ContinuationPort } from "./continuation.js";
import type { SlotPort } from "../auth/client-slots.js";
import { RemoteAttempts } from "./remote-attempts.js";
import { WaitingMoves } from "./waiting-moves.js";

/**
 * The parts of one Region object, built in dependency order. Each part is handed the parts it
 * uses and never the ones that use it, so calls flow one way, top to bottom:
 *
 *   5  region-do        transport: Durable Object entry points, forwards only
 *   4  job-intake       new request → mint id, match now, queue or refuse
 *      region-alarms    timer kind → handler
 *   3  job-machine      every job state change (frames, tab left, cancel, timers, redispatch);
 *                       builds its own parts, which change a job only through its transitions
 *                       (job-transitions): text-delivery (an attempt's text on its way in),
 *                       embedding-frames (an embedding job's vectors), remote-following (an
 *                       attempt run as a job on another Region object); job-causes (error → cause)
 *   2  placement        matching, assignment, waiting jobs, circuit breaker
 *      audits canaries  answer verification: re-scoring by a second tab, canary jobs
 *   1  tab-channel      sockets: upgrade, hello, registration, send, close, liveness
 *      tab-learning     RTT, speed, credit      job-readers   readers, resume, detach
 *      job-leases       accept/stream leases    region-report summary for the Directory
 *      embedding-answers  vectors of embedding jobs, checked on arrival
 *      remote-attempts  attempts running as jobs on other Region objects (continuation.ts)
 *   0  job-store  tab-registry  tab-matcher  timer-table (+ region-timers)  job-relay
 *      tab-trust        per-identity credit, jobs, faults, probation/quarantine (over tab-registry)
 *      reputation       audit/canary evidence per identity; its verdict quarantines via tab-trust
 *
 * The tab channel answers with TabEvents instead of calling job code; region-do forwards them.
 */
export interface RegionParts {
  tabs: TabRegistry;
  jobs: JobStore;
  timers: TimerTable<RegionTimer>;
  trust: TabTrust;
  channel: TabChannel;
  readers: JobReaders;
  report: RegionReport;
  /** Which tab holds which conversation: shards report it (shard-figures.ts). */
  matcher: TabMatcher;
  machine: JobMachine;
  intake: JobIntake;
  onTimer: (timer: RegionTimer) => Promise<void>;
  reputation: Reputation;
  budget: StorageBudget;
  /** The Region's side of the credit ledger (absent when built without one). */
  credits?: RegionCredits;
  embeddings: EmbeddingAnswers;
  /** Attempts of this object's jobs running on other Region objects (absent without a port). */
  remote?: RemoteAttempts;
}

export function regionParts(
  ctx: DurableObjectState,
  config: RegionConfig,
  region: RegionHint,
  /** Sends this region's summary to the Directory (models, idle tabs, queue). */
  sendReport: (summary: RegionSummary) => Promise<void>,
  /** Verification settings (reputation.ts; `TRUST=off` turns it off). */
  verification: TrustSettings = trustSettings({}),
  /** The credit ledger, the tiers' price table, the models that earn (edge/credits); without, credit stays local. */
  ledger?: RegionLedger,
  /** How job ids name this object (`wnam`, or `wnam-3` for shard 3: region/shard-name.ts). */
  jobIdName: string = region,
  /** Other Region objects, to continue a job there when no tab here can (continuation.ts). */
  elsewhere?: ContinuationPort,
  /** Client objects, to let go of a job's concurrency slot when it ends (job-readers.ts). */
  slots?: SlotPort,
  /** Is a model in the coordinator's catalog (its reports always list those: region-views.ts)? */
  catalog?: (model: string) => boolean,
  /** A model's context window in tokens, as the operator's catalog says (length-claim.ts). */
  contextTokens?: (model: string) => number | undefined,
): RegionParts {
  const sql = ctx.storage.sql;
  const tabs = new TabRegistry(sql);
  const jobs = new JobStore(sql);
  const timers = new TimerTable(ctx.storage, regionTimerCodec);
  // A tab unheard of for three status intervals is not offered work even before the sweep.
  const matcher = new TabMatcher(region, 3 * config.statusIntervalMs);
  const trust = new TabTrust(sql, tabs, {
    probationJobs: config.probationJobs,
    probationShare: config.probationShare,
  });
  const channel = new TabChannel(ctx, tabs, timers, config, trust);
  const readers = new JobReaders(jobs, timers, slots);
  const stats = new RegionStats(sql);
  const status = withStatus(
    tabs,
    stats,
    REGION_CENTRES[region],
    () => (reputation.settings.enabled ? trustHealth(sql, tabs, trust) : null),
    () => credits?.waiting ?? null,
  );
  const report = new RegionReport(
    tabs,
    jobs,
    timers,
    (summary) => sendReport(status(summary)),
    trust,
    // The catalog's models are offered first: made-up names may not push them out of spillover.
    (serving, waiting) =>
      matcher.offers(serving, waiting, REGION_CENTRES[region], Date.now(), (model) =>
        catalog?.(model) ? 1 : 0,
      ),
    catalog,
  );
  const leases = new JobLeases(timers, config);
  const credits = ledger
    ? new RegionCredits(
        ledger,
        { sql, retryAt: (at) => timers.set({ kind: "ledger" }, at) },
        (tab, msg) => channel.send(tab, msg),
        (identity) => tabs.get(identity),
        (identity, credit) => trust.takeCredit(identity, credit),
      )
    : undefined;
  if (credits) trust.onQuarantine((identity) => credits.quarantined(identity));
  const learning = new TabLearning(jobs, trust, matcher, region, credits);
  const reputation = new Reputation(sql, trust, verification);
  const placement = new Placement({
    jobs,
    tabs,
    channel,
    matcher,
    leases,
    timers,
    config,
    region,
    trust,
    stats,
    seedFor: (jobId) => jobSeed(reputation.settings.config, jobId),
  });
  const embeddings = new EmbeddingAnswers(sql, jobs);
  const logprobs = new JobLogprobs(sql);
  const audits = new Audits({
    sql,
    jobs,
    logprobs,
    tabs,
    channel,
    placement,
    reputation,
    trust,
    timers,
    maxBytes: auditStorageBytes(config.storageMaxBytes),
    region: jobIdName,
    embeddings,
    ...(credits ? { countConfirmed: (c: ConfirmedCount) => credits.countConfirmed(c) } : {}),
  });
  const canaries = new Canaries({
    sql,
    region: jobIdName,
    jobs,
    channel,
    placement,
    reputation,
    trust,
  });
  const remote = elsewhere ? new RemoteAttempts(elsewhere) : undefined;
  const machine = new JobMachine({
    jobs,
    logprobs,
    readers,
    channel,
    placement,
    learning,
    leases,
    timers,
    report,
    stats,
    config,
    trust,
    verify: { reputation, audits, canaries },
    embeddings,
    ...(remote ? { remote } : {}),
    ...(contextTokens ? { contextTokens } : {}),
  });
  const budget = new StorageBudget(
    sql,
    { maxBytes: config.storageMaxBytes, maxJobs: config.storageMaxJobs },
    region,
  );
  const moves = remote
    ? new WaitingMoves({
        jobs,
        timers,
        machine,
        remote,
        offersAt: (waiting) => report.offersAt(waiting),
        matchOf: (row) => placement.matchRequest(row.model, jobs.match(row)),
        intervalMs: config.waitingMoveMs,
      })
    : undefined;
  const intake = new JobIntake({
    region,
    jobIdName,
    budget,
    jobs,
    tabs,
    readers,
    placement,
    machine,
    timers,
    report,
    config,
    ...(moves ? { moves } : {}),
  });
  const onTimer = regionAlarms({
    machine,
    channel,
    report,
    audits,
    ...(moves ? { moves } : {}),
    ...(credits ? { credits } : {}),
  });
  return {
    tabs,
    jobs,
    timers,
    trust,
    channel,
    readers,
    report,
    matcher,
    machine,
    intake,
    onTimer,
    reputation,
    budget,
    ...(credits ? { credits } : {}),
    embeddings,
    ...(remote ? { remote } : {}),
  };
}

/** After eviction: rebind surviving sockets to their tabs and jobs, then move orphaned jobs on. */
export async function restoreParts(parts: RegionParts, sockets: WebSocket[]): Promise<void> {
  // A tab may also hold a job queued behind its running one (protocol 5). The running one is the
  // one streaming, else the one sent first: a job is queued only behind one the tab already has.
  const bound = new Map<string, JobRow[]>();
  for (const r of parts.jobs.active()) {
    if (r.node_id && r.state !== "queued")
      bound.set(r.node_id, [...(bound.get(r.node_id) ?? []), r]);
  }
  const first = (a: JobRow, b: JobRow) =>
    Number(b.state === "streaming") - Number(a.state === "streaming") ||
    (a.dispatched_at ?? 0) - (b.dispatched_at ?? 0);
  await parts.channel.restore(sockets, (tabId) => {
    const [running, queued] = (bound.get(tabId) ?? []).sort(first);
    return { jobId: running?.id ?? null, queuedJobId: queued?.id ?? null };
  });
  parts.trust.pruneAnonymous();
  parts.credits?.resume();
  await parts.machine.restore();
}
