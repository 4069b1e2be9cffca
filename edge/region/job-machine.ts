import { log } from "../http/log.js";
import type { FinishReason, JobError, JobErrorCode } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";
import { COUNTED_CONTINUATION_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { retryAfterSeconds } from "../../shared/scheduling/wait-queue.js";
import { answerIsFull, onlyACountCanSay } from "./answer-budget.js";
import { JobCheckpoints } from "./job-checkpoints.js";
import type { JobLeases } from "./job-leases.js";
import { logprobsProblem, type JobLogprobs } from "./job-logprobs.js";
import type { JobReaders } from "./job-readers.js";
import { restartsOnFailover } from "./job-reading.js";
import {
  causeAfterRest,
  independentReports,
  invalidRequest,
  reporterOf,
  resting,
  tabCause,
} from "./job-causes.js";
import { TERMINAL_STATES, type JobRow, type JobStore } from "./job-store.js";
import type { TextPosition } from "./job-text.js";
import type { JobDone, JobTransitions, RedispatchOptions } from "./job-transitions.js";
import type { Placed, Placement } from "./placement.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionReport } from "./region-report.js";
import type { RegionStats } from "./region-stats.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TabChannel, TabEvent, TabFrame } from "./tab-channel.js";
import type { TabLearning } from "./tab-learning.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";
import { boundUsage, chargedTokens } from "./usage-bounds.js";
import { impossibleLength } from "./length-claim.js";
import { publicNodeId } from "./public-id.js";
import { brokenStructure } from "./structure-check.js";
import type { Audits } from "./audits.js";
import type { Canaries } from "./canaries.js";
import type { Reputation } from "./reputation.js";
import { TrustNotices } from "./trust-notices.js";
import type { EmbeddingAnswers } from "./embedding-answers.js";
import { EmbeddingFrames } from "./embedding-frames.js";
import { remoteJobOf, type RemoteJob } from "./continuation.js";
import type { RemoteAttempts } from "./remote-attempts.js";
import { RemoteFollowing } from "./remote-following.js";
import { TextDelivery } from "./text-delivery.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";

export interface JobMachineDeps {
  jobs: JobStore;
  /** Token log-probabilities of jobs that asked for them. */
  logprobs: JobLogprobs;
  readers: JobReaders;
  channel: TabChannel;
  placement: Placement;
  learning: TabLearning;
  leases: JobLeases;
  timers: TimerTable<RegionTimer>;
  report: RegionReport;
  stats: RegionStats;
  /** A model's context window as the operator's catalog says (length-claim.ts). */
  contextTokens?: (model: string) => number | undefined;
  config: RegionConfig;
  trust: TabTrust;
  /** Verification (docs/trust.md): audits, canaries and the evidence per identity. */
  verify?: { reputation: Reputation; audits: Audits; canaries: Canaries };
  /** Vectors of embedding jobs (embedding-answers.ts). */
  embeddings: EmbeddingAnswers;
  /**
   * Attempts running as continuation jobs on other Region objects (continuation.ts); absent, a job
   * whose tab left waits for a tab of this object only.
   */
  remote?: RemoteAttempts;
}

/**
 * Every change of a job's state after it was written: accepted, streaming, done, failed, cancelled,
 * moved to another tab (redispatch) and settled (timers dropped, expiry armed) — whether the cause
 * is a tab's frame, a tab leaving, a client cancelling or a timer running out. Where a job goes is
 * Placement's part; this decides when it moves and what the client is told. Its own parts read
 * what an attempt sends (text-delivery.ts, embedding-frames.ts, remote-following.ts) and change the
 * job only through its transitions (job-transitions.ts).
 */
export class JobMachine {
  /** Each tab hears its own trust state when it changes (trust-notices.ts). */
  private readonly notices: TrustNotices;
  /** Checks `job.checkpoint` frames (the relay-light direct path). */
  private readonly checkpoints: JobCheckpoints;
  /** The text of each job's current attempt on its way in (text-delivery.ts). */
  private readonly text: TextDelivery;
  /** Frames of embedding jobs, whose answer is vectors (embedding-frames.ts). */
  private readonly embedding: EmbeddingFrames;
  /** Attempts running as jobs on other Region objects (remote-following.ts). */
  private readonly following: RemoteFollowing;

  constructor(private readonly d: JobMachineDeps) {
    this.notices = new TrustNotices(d.channel, d.trust, d.verify?.reputation);
    this.checkpoints = new JobCheckpoints((jobId) => {
      const row = d.jobs.get(jobId);
      return row ? d.jobs.spec(row).direct !== undefined : undefined;
    });
    d.trust.onQuarantine((tabId) => this.quarantined(tabId));
    d.trust.onRelease((tabId) => this.released(tabId));
    d.verify?.reputation.onJudged((tabId) => this.notices.tell(tabId));
    // The parts that read an attempt's frames or events change the job through these only.
    const transitions: JobTransitions = {
      isCurrent: (tab, jobId) => this.isCurrent(tab, jobId),
      redispatch: (jobId, cause, options) => this.redispatch(jobId, cause, options),
      finishHere: (jobId, reason, why) => this.finishHere(jobId, reason, why),
      finish: (jobId, done) => this.finish(jobId, done),
      offerWork: (tab) => this.offerWork(tab),
      falseInvalidReports: (row, answeredBy) => this.falseInvalidReports(row, answeredBy, null),
    };
    this.text = new TextDelivery(d);
    this.embedding = new EmbeddingFrames({ ...d, machine: transitions });
    this.following = new RemoteFollowing({ ...d, text: this.text, machine: transitions });
  }

  /** A quarantined tab gets no more work; the job it is running moves to another tab. */
  private async quarantined(tabId: string): Promise<void> {
    const tab = this.d.channel.tabs.get(tabId);
    if (!tab) return;
    this.notices.tell(tabId);
    this.d.placement.syncTab(tab);
    await this.d.report.membership();
    if (tab.jobId && this.isCurrent(tab, tab.jobId)) {
      await this.redispatch(tab.jobId, {
        code: "node_gone",
        message: "the serving tab was quarantined",
      });
    }
  }

  /** Released from quarantine: the tab is told, and may take work again at once. */
  private async released(tabId: string): Promise<void> {
    this.notices.tell(tabId);
    const tab = this.d.channel.tabs.get(tabId);
    if (!tab) return;
    this.d.placement.syncTab(tab);
    await this.d.report.membership();
    if (!tab.jobId && tab.state === "idle") await this.offerWaiting(tab);
  }

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
      if (row.node_id && remoteJobOf(row.node_id) && this.d.remote) {
        // The attempt runs on another object: read it again after the text held here (a batch
        // this object lost before writing it is read again from there).
        this.d.remote.resume(row.id, row.node_id, row.text.length, row.owner);
      } else if (row.node_id && !channel.tabs.get(row.node_id)) {
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
        this.notices.forget(event.tab.tabId);
        this.notices.tell(event.tab.tabId);
        this.d.learning.joined(event.tab);
        this.d.placement.syncTab(event.tab);
        await this.d.report.membership();
        await this.offerWaiting(event.tab);
        return this.d.verify?.audits.dispatch();
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
    const replaced = this.d.channel.tabs.get(tab.tabId) !== tab;
    this.d.channel.forget(tab);
    this.d.placement.forgetTab(tab.tabId);
    if (!replaced) this.d.trust.left(tab.tabId);
    if (!replaced) this.notices.forget(tab.tabId);
    this.d.verify?.audits.tabLeft(tab);
    log("info", "tab left", { tab: tab.publicId, why });
    for (const jobId of [tab.jobId, tab.queuedJobId]) {
      const row = jobId ? this.d.jobs.get(jobId) : undefined;
      if (row && row.node_id === tab.tabId && !TERMINAL_STATES.has(row.state)) {
        await this.redispatch(row.id, {
          code: "node_gone",
          message: `the serving tab left (${why})`,
        });
      }
    }
    await this.d.report.membership();
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
    else if (tab) this.d.placement.unqueue(tab, jobId, reason);
    else if (remoteJobOf(row.node_id)) await this.following.cancelRemote(row, reason);
    await this.settle(jobId);
    log("info", "job cancelled", { jobId, reason });
  }

  /** A waiting job was opened on another Region object (remote-following.ts `movedWaiting`). */
  async movedWaiting(jobId: string, opened: RemoteJob, owner: string | null): Promise<boolean> {
    return this.following.movedWaiting(jobId, opened, owner);
  }

  // ---- timers (one handler per kind; region-alarms.ts routes them here) ----------------------

  async onLeaseDue(jobId: string): Promise<void> {
    const row = this.d.jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state) || !row.node_id) return;
    if (row.state === "assigned" && (await this.d.placement.renewQueued(jobId))) return;
    // A tab writing a character a lease keeps its lease, never its job for ever (job-leases.ts).
    const late = this.d.leases.pastDeadline(
      row.first_token_at,
      this.d.jobs.spec(row).sampling.max_tokens,
    );
    if (!late && !(await this.d.leases.expired(jobId, row.state === "streaming"))) return;
    this.d.placement.recordFailure(row.node_id);
    const message =
      row.state === "assigned"
        ? "the tab did not accept the job in time"
        : late
          ? "the tab wrote too slowly (less than a token per lease)"
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
    } else if (await this.following.continueElsewhere(jobId)) {
      return;
    } else if (onlyACountCanSay(this.d.jobs.spec(row), row.text)) {
      // It waited for a tab that counts the delivered text's tokens and none came: by the
      // coordinator's own bound the answer may be full, so it ends as it would have at the failover.
      await this.finishHere(jobId, "length", "max_tokens");
    } else {
      // The cause was stored in the coordinator's words (job-causes.ts tabCause), never a tab's.
      const cause = row.error_message ?? "the serving tab left";
      await this.endWithError(jobId, {
        code: (row.error_code ?? "node_gone") as JobErrorCode,
        message: `${cause}; no other tab could take over in time`,
      });
    }
  }

  async onDetachDue(jobId: string): Promise<void> {
    if (this.d.readers.count(jobId) === 0) await this.cancel(jobId, "client went away");
  }

  onExpireDue(jobId: string): void {
    this.d.jobs.delete(jobId);
    this.d.logprobs.delete(jobId);
    this.d.embeddings.forget(jobId);
  }

  // ---- frames from the serving tab -----------------------------------------------------------

  private async onFrame(tab: TabRecord, msg: TabFrame): Promise<void> {
    const { jobs, placement, readers, report } = this.d;
    const verify = this.d.verify;
    if (msg.type === "job.checkpoint") return this.onCheckpoint(tab, msg);
    if (verify && "jobId" in msg && verify.canaries.owns(msg.jobId)) {
      await verify.canaries.onFrame(tab, msg);
      return this.offerWork(tab);
    }
    // An embedding audit's job on its verifier (audits.ts), kept from every client job. A verifier
    // holds no job of its own, so frames of a tab's own jobs never cost the look-up.
    if (
      verify &&
      "jobId" in msg &&
      msg.jobId !== tab.jobId &&
      msg.jobId !== tab.queuedJobId &&
      verify.audits.ownsJob(msg.jobId)
    ) {
      await verify.audits.onJobFrame(tab, msg);
      if (msg.type === "job.done" || msg.type === "job.error") return this.offerWork(tab);
      return;
    }
    switch (msg.type) {
      case "audit.result":
        await verify?.audits.onResult(tab, msg);
        return this.offerWork(tab);
      case "status": {
        // A tab reporting idle is done with a job that was taken from it (moved or cancelled).
        const free = msg.state === "idle" && tab.jobId && !this.isCurrent(tab, tab.jobId);
        const modelsChanged = msg.models.join() !== tab.models.join();
        placement.updateTab(tab, { state: msg.state, models: msg.models });
        if (free) await placement.release(tab, msg.state);
        await report.soon(modelsChanged);
        // Idle now — a model loaded, a rest ended, a job taken from it — it may take a waiting job
        // or, with none, a waiting audit: nothing else would offer it one until some job ended or
        // a tab joined (audit-starvation.test.ts).
        if (!tab.jobId && tab.state === "idle") await this.offerWork(tab);
        return;
      }
      case "job.accept":
        // Once, for a job not started yet: each accept restarts the prefill allowance.
        if (this.isCurrent(tab, msg.jobId) && jobs.get(msg.jobId)?.state === "assigned") {
          this.d.learning.noteRtt(tab);
          jobs.markStreaming(msg.jobId);
          const prefillMs = this.d.placement.expectedPrefillMs(tab, msg.jobId);
          await this.d.leases.accepted(msg.jobId, prefillMs);
        }
        return;
      case "job.progress":
        if (this.isCurrent(tab, msg.jobId)) await this.d.leases.progress(msg.jobId);
        return;
      case "job.vectors":
        return this.embedding.onVectors(tab, msg);
      case "job.delta": {
        if (this.d.embeddings.isEmbedding(msg.jobId))
          return this.embedding.embeddingFault(tab, msg.jobId, "text for an embedding job");
        // The per-delta path: constant work whatever the answer's length (memory, one encode
        // for all readers, a SQLite write per batch; docs/performance.md).
        // A hedge tab's first text may win the race for the job (hedging.ts); an empty delta cannot.
        if (msg.text && placement.hedging.isHedge(tab, msg.jobId))
          await placement.hedging.hedgeDelta(tab, msg.jobId);
        const at = this.position(tab, msg.jobId);
        if (!at) {
          // Late frames of a moved or finished attempt are normal; logged, bounded.
          this.d.trust.rejections.note(tab.publicId, "delta for a job not running on this tab", {
            jobId: msg.jobId,
            seq: msg.seq,
          });
          return;
        }
        const incoming = this.text.newText(tab, msg, at);
        if (incoming === null) return;
        const ended = this.text.takeText(msg.jobId, tab.tabId, at, incoming);
        if (ended === "over") return this.overran(tab, msg.jobId);
        if (ended === "stop") return this.finishHere(msg.jobId, "stop", "a stop sequence");
        // Text is the sign of life: an empty delta took its seq and nothing more.
        if (incoming) await this.d.leases.extend(msg.jobId);
        return;
      }
      case "job.done": {
        if (this.d.embeddings.isEmbedding(msg.jobId)) return this.embedding.embeddingDone(tab, msg);
        const current = this.isCurrent(tab, msg.jobId);
        // A tab that says it sent more than the coordinator holds sends it again first.
        if (current && msg.chars !== undefined && this.text.missing(tab, msg.jobId, msg.chars))
          return;
        const said = current && msg.finishReason !== "abort" ? jobs.get(msg.jobId) : undefined;
        // An answer said to be cut at max_tokens where no honest tab could have cut it is not
        // finished: the tab stopped early, as with `abort` (length-claim.ts).
        const cutShort =
          said && msg.finishReason === "length"
            ? impossibleLength(jobs.spec(said), said.text, this.d.contextTokens?.(said.model))
            : null;
        const finished = current && msg.finishReason !== "abort" && !cutShort;
        // Usage is the coordinator's: the tab's report of its own part clamped to what it sent,
        // plus what earlier attempts delivered at their bound (usage-bounds.ts).
        const row = finished ? said : undefined;
        const bounded = row
          ? boundUsage(
              { ...msg.usage, continuedTokens: msg.continuedTokens },
              jobs.spec(row),
              row.text,
              row.attempt_start_chars,
              tab.protocol >= COUNTED_CONTINUATION_SINCE_PROTOCOL,
            )
          : null;
        // A structured answer outside its schema is no finished job: the tab's fault (below).
        const broken = row && msg.finishReason === "stop" ? brokenStructure(row) : null;
        if (bounded) {
          // An empty answer (no tokens of its own) does not count toward leaving probation.
          if (bounded.ownTokens > 0 && !broken) this.d.trust.jobDone(tab.tabId);
          this.d.learning.observe(
            tab,
            msg.jobId,
            { prompt_tokens: bounded.usage.prompt_tokens, completion_tokens: bounded.ownTokens },
            msg.prefillMs,
          );
          if (!broken) await this.d.learning.remember(tab, msg.jobId);
        }
        if (tab.jobId === msg.jobId) {
          if (finished) tab.jobsServed += 1;
          await placement.release(tab, msg.state ?? "idle", finished);
        }
        if (current && msg.finishReason === "abort") {
          // The tab stopped on its own (paused by its owner): another tab continues.
          this.d.trust.fault(tab, "stopped a job on its own", { jobId: msg.jobId });
          await this.redispatch(msg.jobId, {
            code: "node_gone",
            message: "the serving tab stopped",
          });
        } else if (current && cutShort) {
          // No credit, no finished job; another tab continues from the text delivered, as after
          // `abort`, so the client gets an answer that really reached max_tokens or ended.
          this.d.trust.fault(tab, "said an answer reached max_tokens when it could not have", {
            jobId: msg.jobId,
            problem: cutShort,
          });
          placement.recordFailure(tab.tabId);
          await this.redispatch(msg.jobId, {
            code: "engine_error",
            message: "the serving tab stopped the answer early",
          });
        } else if (current && bounded && broken) {
          // The tab's grammar holds an honest answer to its schema: this one is a wrong answer,
          // not a job done. No credit; it counts against the tab; a job no client has seen any of
          // starts again on another tab (the client gets the answer, not a 502), a streamed JSON
          // answer ends and its client gets the Worker's error (structure-check.ts).
          this.d.trust.fault(tab, "structured answer outside the request's schema", {
            jobId: msg.jobId,
            problem: broken.problem,
          });
          placement.recordFailure(tab.tabId);
          if (broken.restart)
            await this.redispatch(msg.jobId, {
              code: "invalid_structured_output",
              message: broken.problem,
            });
          else
            await this.finish(msg.jobId, { finishReason: msg.finishReason, usage: bounded.usage });
        } else if (current && bounded) {
          if (bounded.inflated) {
            this.d.trust.fault(tab, "usage outside what the coordinator observed", {
              jobId: msg.jobId,
              reported: msg.usage,
              counted: bounded.usage,
            });
          }
          await this.falseInvalidReports(row!, tab, bounded.ownTokens);
          const credit = this.d.learning.credit(tab, msg.jobId, bounded.ownTokens);
          if (credit !== null)
            this.d.channel.send(tab, { type: "job.credit", jobId: msg.jobId, credit });
          await this.finish(msg.jobId, {
            finishReason: msg.finishReason,
            usage: bounded.usage,
            ...(row ? this.logprobsAtDone(tab, row, bounded.usage.completion_tokens) : {}),
          });
          this.notices.tell(tab.tabId);
          verify?.audits.afterJob(tab, msg.jobId);
          if (verify?.canaries.afterJob(tab)) return;
        }
        await report.soon(false);
        return this.offerWork(tab);
      }
      case "job.logprobs": {
        // The in-memory position (not the whole row): a tab sends these after each piece of text.
        const at = this.position(tab, msg.jobId);
        const sampling = at ? jobs.sampling(msg.jobId) : undefined;
        if (!at || !sampling) {
          // Late frames of a moved or finished attempt are normal; logged, bounded.
          this.d.trust.rejections.note(tab.publicId, "logprobs for a job not running on this tab", {
            jobId: msg.jobId,
          });
          return;
        }
        const stored = this.d.logprobs.count(msg.jobId, tab.tabId);
        // Bounded by this attempt's own text: the tab wrote none of what earlier attempts did.
        const own = at.bytes - at.attemptStartBytes;
        const problem = logprobsProblem(sampling, stored, msg.entries, own);
        if (problem) {
          // Wrong logprobs never reach the client: the tab is at fault and the job moves on.
          this.d.trust.fault(tab, `wrong logprobs: ${problem}`, { jobId: msg.jobId });
          placement.recordFailure(tab.tabId);
          return this.redispatch(msg.jobId, {
            code: "engine_error",
            message: "the serving tab sent wrong logprobs",
          });
        }
        this.d.logprobs.append(msg.jobId, tab.tabId, msg.entries);
        readers.push(msg.jobId, { type: "logprobs", entries: msg.entries });
        return;
      }
      case "job.error": {
        // A tab may refuse the job queued behind its running one, too.
        const current = this.isBound(tab, msg.jobId);
        const row = current ? jobs.get(msg.jobId) : undefined;
        if (tab.jobId === msg.jobId) await placement.release(tab, msg.state ?? "idle");
        else if (tab.queuedJobId === msg.jobId) placement.unqueue(tab, msg.jobId, "refused");
        if (row && resting(row, msg)) {
          // The tab could not start a job it never accepted because it is resting (its GPU
          // share, its owner's pause, a model load): most often one queued behind the job it just
          // finished. Pausing is the contributor's right, so this is no fault, and it spends none
          // of the job's attempts: else one tab refusing three times (a tab's word about its own
          // state cannot be checked) would end a client's job. The job waits as a new request
          // does, this tab included — once: after its second refusal of the job it stays tried,
          // so no tab holds a job by refusing it over and over. A job nobody takes still ends at
          // the queue's wait bound (onWaitDue).
          jobs.rested(msg.jobId, tab.tabId);
          await this.redispatch(msg.jobId, causeAfterRest(row), {
            waitMs: this.d.config.queueWaitMs,
            failedOver: false,
          });
        } else if (row && msg.error.code === "bad_request" && this.confirmsInvalid(tab, row)) {
          // A second, independent tab agrees that the request is one this model cannot take
          // (e.g. longer than its context window): that reaches the client, in the coordinator's
          // words (job-causes.ts independentReports, invalidRequest).
          log("info", "two tabs found a request invalid", {
            jobId: msg.jobId,
            tab: tab.publicId,
            message: msg.error.message.slice(0, 200),
          });
          await this.endWithError(msg.jobId, invalidRequest(msg.error.message));
        } else if (row && msg.error.code === "bad_request") {
          // May well be true: a prompt longer than the model's context window is the request's
          // fault, and every honest tab says so (the reference tab since session 14). So the word
          // of one tab neither ends the client's job nor counts against the tab yet: the job moves
          // on, and if another tab then answers it the report was false and counts against its
          // tab then (`falseInvalidReports`). Before, each honest tab that met such a request took
          // a fault and a circuit-breaker failure — three per request, and a client sending a few
          // a minute could rest every tab of a model.
          jobs.reportedInvalid(msg.jobId, tab.tabId);
          this.d.trust.rejections.note(
            tab.publicId,
            "job.error bad_request (held until the job ends)",
            {
              jobId: msg.jobId,
              message: msg.error.message.slice(0, 200),
            },
          );
          await this.redispatch(msg.jobId, tabCause(msg.error));
        } else if (row) {
          // A tab's error never ends a client's job on its word: it counts against the tab and
          // the job moves on. Its message goes to the log only (bounded), never to the client.
          this.d.trust.fault(tab, `job.error ${msg.error.code}`, {
            jobId: msg.jobId,
            message: msg.error.message.slice(0, 200),
          });
          placement.recordFailure(tab.tabId);
          await this.redispatch(msg.jobId, tabCause(msg.error));
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

  /**
   * A `job.checkpoint` (protocol 7, job-checkpoints.ts): a batch the caller already has over the
   * direct path. Accepted, it is the same text as a delta at its offset (same storage, relay,
   * bounds and resend); refused, it counts against the tab and the job moves on from the text the
   * coordinator holds.
   */
  private async onCheckpoint(tab: TabRecord, msg: CheckpointFrame): Promise<void> {
    const problem = this.checkpoints.problem(msg);
    if (!problem) {
      const { jobId, offset, text } = msg;
      return this.onFrame(tab, { type: "job.delta", jobId, seq: 0, text, offset });
    }
    if (!this.position(tab, msg.jobId)) {
      this.d.trust.rejections.note(tab.publicId, problem, { jobId: msg.jobId });
      return;
    }
    this.d.trust.fault(tab, problem, { jobId: msg.jobId, offset: msg.offset });
    this.d.placement.recordFailure(tab.tabId);
    await this.redispatch(msg.jobId, {
      code: "engine_error",
      message: `the serving tab's checkpoint was refused (${problem})`,
    });
  }

  // ---- transitions -------------------------------------------------------------------------

  /**
   * The `logprobs` of a finished job's done event: absent when it did not ask; the finishing
   * tab's entries when that tab wrote the whole answer and sent no more entries than the tokens
   * the coordinator counted; otherwise null (after a failover the earlier tab's entries are gone
   * with it; too many entries are that tab's fault).
   */
  private logprobsAtDone(
    tab: TabRecord,
    row: JobRow,
    completionTokens: number,
  ): { logprobs?: TokenLogprob[] | null } {
    if (!this.d.jobs.spec(row).sampling.logprobs) return {};
    if (row.attempt_start_chars > 0) return { logprobs: null };
    const entries = this.d.logprobs.read(row.id, tab.tabId);
    if (entries.length > completionTokens) {
      this.d.trust.fault(tab, "more logprobs entries than tokens", {
        jobId: row.id,
        entries: entries.length,
        tokens: completionTokens,
      });
      return { logprobs: null };
    }
    return { logprobs: entries };
  }

  /**
   * `answeredBy` finished the job: any tab that said its request was invalid (`bad_request`, held
   * until now) was wrong, and that counts against it as any tab error does — a fault, and a
   * circuit-breaker failure if it is still here. Only on the word of an answer that shows it: one
   * with tokens of its own, from a signed identity that is trusted (audited work to earn, lost to
   * quarantine). Else anyone's anonymous socket "answering" with nothing would make an honest
   * report a fault, and a client with one such socket could rest honest tabs again (review,
   * session 14). `ownTokens` is null for an embedding answer, which has vectors, not tokens.
   */
  private async falseInvalidReports(
    row: JobRow,
    answeredBy: TabRecord,
    ownTokens: number | null,
  ): Promise<void> {
    if (ownTokens === 0) return;
    const witness = reporterOf(answeredBy, this.d.trust);
    if (isAnonymous(witness.tabId) || !witness.trusted) return;
    for (const id of this.d.jobs.invalidReporters(row)) {
      if (id === answeredBy.tabId) continue;
      const reporter = this.d.channel.tabs.get(id);
      const who = { tabId: id, publicId: reporter?.publicId ?? (await publicNodeId(id)) };
      this.d.trust.fault(who, "job.error bad_request for a request another tab answered", {
        jobId: row.id,
      });
      if (reporter) this.d.placement.recordFailure(id);
    }
  }

  /**
   * Whether `tab`'s report that the job's request is invalid is confirmed by an earlier report of
   * an independent tab still connected here (job-causes.ts independentReports).
   */
  private confirmsInvalid(tab: TabRecord, row: JobRow): boolean {
    const { channel, jobs, trust } = this.d;
    const me = reporterOf(tab, trust);
    return jobs.invalidReporters(row).some((id) => {
      const earlier = channel.tabs.get(id);
      return !!earlier && independentReports(reporterOf(earlier, trust), me);
    });
  }

  /** The tab takes a waiting job if it is free; idle verifiers get waiting audits. */
  private async offerWork(tab: TabRecord): Promise<void> {
    await this.offerWaiting(tab);
    await this.d.verify?.audits.dispatch();
  }

  /**
   * Whether `jobId` is the job `tab` runs now. A job queued behind it (protocol 5) is bound to the
   * tab too but not started: its frames are those of a job not running on the tab until the tab's
   * running job ends and it starts (placement.ts `release`), or the tab would run two at once.
   */
  private isCurrent(tab: TabRecord, jobId: string): boolean {
    return tab.jobId === jobId && this.isBound(tab, jobId);
  }

  /** Whether the job is the tab's, running or queued behind its running one, and not ended. */
  private isBound(tab: TabRecord, jobId: string): boolean {
    const row = this.d.jobs.get(jobId);
    return !!row && row.node_id === tab.tabId && !TERMINAL_STATES.has(row.state);
  }

  /** Where the tab's running job stands, when `jobId` is it (isCurrent, from memory). */
  private position(tab: TabRecord, jobId: string): TextPosition | undefined {
    return tab.jobId === jobId ? this.d.jobs.position(jobId, tab.tabId) : undefined;
  }

  private async offerWaiting(tab: TabRecord): Promise<void> {
    await this.placed(await this.d.placement.dispatchWaiting(tab));
  }

  /** Move a job whose tab failed to another tab, continuing after the text already delivered. */
  /**
   * Move a job on: to another tab at once, or back to waiting for `waitMs` (REDISPATCH_WAIT_MS
   * after a failure; QUEUE_WAIT_MS for a job its tab could not start, which is no failover).
   */
  private async redispatch(
    jobId: string,
    cause: JobError,
    {
      waitMs = this.d.config.redispatchWaitMs,
      failedOver = true,
      orFail = false,
    }: RedispatchOptions = {},
  ): Promise<void> {
    const { jobs, timers, channel, config } = this.d;
    const row = jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    this.d.placement.hedging.drop(jobId, "job moved to another tab");
    await this.d.leases.drop(jobId);
    const previous = row.node_id ? channel.tabs.get(row.node_id) : undefined;
    if (remoteJobOf(row.node_id)) this.d.remote?.stop(jobId);
    const restart = restartsOnFailover(row);
    const spec = jobs.spec(row);
    // max_tokens holds for the whole answer: a job whose delivered text spent it ends here (when
    // only a tab's count can tell, a tab that counts takes it: answer-budget.ts).
    if (!restart && answerIsFull(spec, row.text)) {
      return this.finishHere(jobId, "length", "max_tokens");
    }
    // Out of tabs to try, an answer that may be whole by the coordinator's bound ends as it stands.
    const mayBeWhole = !restart && onlyACountCanSay(spec, row.text);
    if (previous && previous.jobId === jobId) {
      channel.send(previous, { type: "job.cancel", jobId, reason: "job moved to another tab" });
    } else if (previous) {
      this.d.placement.unqueue(previous, jobId, "job moved to another tab");
    }
    jobs.requeue(jobId, cause);
    if (restart) {
      jobs.clearText(jobId);
      this.d.readers.push(jobId, { type: "restart" });
    }
    if (row.attempts >= config.maxAttempts) {
      if (mayBeWhole) return this.finishHere(jobId, "length", "max_tokens");
      await this.endWithError(jobId, {
        code: cause.code,
        message: `${cause.message}; gave up after ${row.attempts} attempts`,
      });
      return;
    }
    if (failedOver) {
      this.d.stats.failedOver(row);
      log("info", "job failing over", { jobId, cause: cause.message, delivered: row.text.length });
    } else log("info", "job waiting again", { jobId, cause: cause.message });
    const placed = await this.d.placement.tryDispatch(jobId);
    // No tab here can take it now: a sibling shard's (or another hint's) may, at once, rather
    // than the client's stream stalling for the whole wait.
    if (!placed && failedOver && (await this.following.continueElsewhere(jobId))) return;
    if (!placed && orFail) {
      if (mayBeWhole) return this.finishHere(jobId, "length", "max_tokens");
      return this.endWithError(jobId, cause);
    }
    if (!placed && !timers.has(jobTimer("wait", jobId))) {
      await timers.set(jobTimer("wait", jobId), Date.now() + waitMs);
    }
    await this.placed(placed);
  }

  /**
   * The coordinator ends the answer itself (its budget is spent, or a stop string straddled two
   * attempts): the tab, if still on it, is told to stop, and usage is the coordinator's bound. A
   * job waiting for its next attempt ends as it stands.
   */
  private async finishHere(jobId: string, reason: FinishReason, why: string): Promise<void> {
    const { jobs, channel } = this.d;
    const row = jobs.get(jobId);
    if (!row || TERMINAL_STATES.has(row.state)) return;
    const waiting = row.state === "queued";
    const tab = row.node_id ? channel.tabs.get(row.node_id) : undefined;
    if (tab && tab.jobId === jobId) channel.send(tab, { type: "job.cancel", jobId, reason: why });
    const prompt = jobs.match(row).promptTokens ?? 0;
    // The attempt that was cut never reported its count: all text at the bound, ≤ max_tokens.
    const completion = chargedTokens(jobs.spec(row), row.text);
    const usage = {
      prompt_tokens: prompt,
      completion_tokens: completion,
      total_tokens: prompt + completion,
    };
    await this.finish(jobId, { finishReason: reason, usage }, waiting);
    // An attempt on another object is stopped there, as a tab here is told to stop.
    if (remoteJobOf(row.node_id)) await this.following.cancelRemote(row, why);
    log("info", "job finished by the coordinator", { jobId, reason, why });
  }

  private async endWithError(jobId: string, error: JobError): Promise<void> {
    if (!this.d.jobs.fail(jobId, error)) return;
    this.d.readers.push(jobId, { type: "error", error });
    await this.settle(jobId);
    log("info", "job failed", { jobId, code: error.code, message: error.message });
  }

  /**
   * The tab sent more than max_tokens allows: the answer ends there with finish_reason "length"
   * (the excess was never stored or sent), the tab is told to stop, earns nothing for the job, and
   * it counts as a fault. It stays bound until it confirms, like a cancelled tab.
   */
  private async overran(tab: TabRecord, jobId: string): Promise<void> {
    const { jobs } = this.d;
    const row = jobs.get(jobId);
    if (!row) return;
    const spec = jobs.spec(row);
    this.d.trust.fault(tab, "answer longer than max_tokens allows", {
      jobId,
      maxTokens: spec.sampling.max_tokens,
    });
    this.d.placement.recordFailure(tab.tabId);
    this.d.channel.send(tab, {
      type: "job.cancel",
      jobId,
      reason: "answer longer than max_tokens",
    });
    const { usage } = boundUsage(null, spec, row.text, row.attempt_start_chars);
    await this.finish(jobId, { finishReason: "length", usage });
  }

  /**
   * The job ends with its answer: written as finished (`waiting`: while it waited for its next
   * attempt), its readers get the done event, and it is settled.
   */
  private async finish(jobId: string, done: JobDone, waiting = false): Promise<void> {
    this.d.jobs.finish(jobId, done.finishReason, done.usage, waiting);
    this.d.readers.push(jobId, { type: "done", ...done });
    await this.settle(jobId);
  }

  /** A job reached a terminal state: drop its timers and schedule its record's expiry. */
  private async settle(jobId: string): Promise<void> {
    const { timers } = this.d;
    this.d.placement.hedging.drop(jobId, "the job ended");
    this.d.remote?.stop(jobId);
    this.d.stats.settled(this.d.jobs.get(jobId));
    this.d.learning.settled(jobId);
    await this.d.leases.drop(jobId);
    await timers.clear(jobTimer("wait", jobId));
    await timers.clear(jobTimer("detach", jobId));
    await timers.set(jobTimer("expire", jobId), Date.now() + this.d.config.jobTtlMs);
  }
}

type CheckpointFrame = Extract<TabFrame, { type: "job.checkpoint" }>;
