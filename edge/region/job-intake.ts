import { log, logRoutine } from "../http/log.js";
import type { RegionHint } from "../../shared/geo/regions.js";
import { followUpAffinity } from "../../shared/scheduling/conversation.js";
import { sha256Hex } from "./conversation-hash.js";
import { retryAfterSeconds } from "../../shared/scheduling/wait-queue.js";
import type { OpenJobResult } from "./job-events.js";
import type { JobMachine } from "./job-machine.js";
import type { JobReaders } from "./job-readers.js";
import { newJobId, specOf, type JobRequest } from "./job-request.js";
import type { JobStore } from "./job-store.js";
import type { Placement } from "./placement.js";
import type { RegionConfig } from "./region-config.js";
import type { RegionReport } from "./region-report.js";
import { jobTimer, type RegionTimer } from "./region-timers.js";
import type { TabRegistry } from "./tab-registry.js";
import type { TimerTable } from "./timer-table.js";
import type { StorageBudget } from "./storage-budget.js";
import { answerByteCap, utf8Bytes } from "./usage-bounds.js";
import type { WaitingMoves } from "./waiting-moves.js";

export interface JobIntakeDeps {
  region: RegionHint;
  /** How this object's job ids name it (the hint, or `wnam-3` for a shard: shard-name.ts). */
  jobIdName: string;
  jobs: JobStore;
  tabs: TabRegistry;
  readers: JobReaders;
  placement: Placement;
  machine: JobMachine;
  timers: TimerTable<RegionTimer>;
  report: RegionReport;
  config: RegionConfig;
  budget: StorageBudget;
  /** Moves waiting jobs to another object that would start them sooner (waiting-moves.ts). */
  moves?: WaitingMoves;
}

/**
 * A new request arriving from the Worker: mint its id, then run it on the idle tab expected to
 * answer soonest, queue it, or refuse it with the reason the Worker needs to try elsewhere. A job
 * is written before it is dispatched, and its first reader is attached before any event exists.
 */
export class JobIntake {
  constructor(private readonly d: JobIntakeDeps) {}

  /**
   * With `queue`, a request no idle tab can take waits in this region's bounded queue instead of
   * being refused; the Worker first tries other regions and the cloud fallback.
   */
  async open(request: JobRequest, queue: boolean): Promise<OpenJobResult> {
    if (request.continuation) return this.continueHere(request, request.continuation.text);
    const { jobs, placement, config } = this.d;
    const now = Date.now();
    const model = request.job.model;
    const req = placement.matchRequest(model, request.match);
    const input = request.job.input;
    const affinity =
      request.affinity !== undefined
        ? request.affinity
        : input.kind === "chat"
          ? await followUpAffinity(input.messages, sha256Hex)
          : null;
    const result = placement.matchNew(req, affinity);
    if (result.kind === "over_budget") {
      return {
        ok: false,
        error: {
          code: "over_budget",
          message: `No tab can answer within the latency budget of ${req.latencyBudgetMs} ms (best estimate ${Math.round(result.best.estimate.objectiveMs)} ms).`,
        },
      };
    }
    // A neighbour is expected to answer sooner (region-client/open-job.ts): decline, writing nothing.
    const offerMs = result.kind === "match" ? result.match.estimate.objectiveMs : null;
    if (offerMs !== null && request.acceptUpToMs !== undefined && offerMs > request.acceptUpToMs) {
      const message = `A neighbouring region is expected to answer sooner (offer here ${Math.round(offerMs)} ms).`;
      return { ok: false, error: { code: "no_capacity", message }, offerMs };
    }
    // Asked for an idle tab only, while another shard has one (job-request.ts idleOnly).
    if (request.idleOnly && result.kind === "match" && result.match.tab.queue.jobsAhead > 0) {
      const message = `Every tab serving '${model}' here is busy; another shard has an idle one.`;
      return { ok: false, error: { code: "no_capacity", message } };
    }
    // Every job is written below: first make room for it within the storage budget.
    const full = this.d.budget.makeRoom(request);
    if (full) return { ok: false, error: full };
    const tab = result.kind === "match" ? this.d.tabs.get(result.match.tab.id) : undefined;
    if (tab) {
      const spec = specOf(request, newJobId(this.d.jobIdName));
      jobs.create(spec, request);
      const { readerId, events } = this.d.readers.first(spec.id);
      await this.d.machine.placed(await placement.assign(spec.id, spec, tab, ""));
      if (result.kind === "match") placement.hedge(spec.id, spec, req, result.match);
      this.reportAfterReply();
      return { ok: true, jobId: spec.id, tab: tab.publicId, readerId, events };
    }
    if (!this.d.tabs.anyServes(model)) {
      return {
        ok: false,
        error: {
          code: "model_not_served",
          message: `No connected tab serves model '${model}'. GET /v1/models lists the models served now.`,
        },
      };
    }
    const retryAfterS = retryAfterSeconds(config.queueRetryAfterMs);
    if (!queue) {
      return {
        ok: false,
        error: {
          code: "no_capacity",
          message: `Every tab serving '${model}' is busy; retry shortly.`,
          retryAfterS,
        },
      };
    }
    if (jobs.waitingCount() >= config.queueCapacity) {
      return {
        ok: false,
        error: {
          code: "queue_full",
          message: `The queue for '${model}' is full; retry later.`,
          retryAfterS,
        },
      };
    }
    const spec = specOf(request, newJobId(this.d.jobIdName));
    jobs.create(spec, request);
    const { readerId, events } = this.d.readers.first(spec.id);
    await this.d.timers.set(jobTimer("wait", spec.id), now + config.queueWaitMs);
    await this.d.moves?.arm();
    this.reportAfterReply();
    logRoutine("job queued");
    return { ok: true, jobId: spec.id, tab: "queued", readerId, events };
  }

  /**
   * Another Region object's running job, continued here after its tab left (continuation.ts): taken
   * only by a tab that can run it now (idle, or busy with room to queue it), never queued in this
   * object's line, and never declined for a neighbour. The job starts with the text delivered so
   * far, so its tab continues from it and its budget, usage and failover among this object's tabs
   * are those of any failover; its request id names the job it continues, so it moves no further.
   */
  private async continueHere(request: JobRequest, text: string): Promise<OpenJobResult> {
    const { jobs, placement } = this.d;
    const model = request.job.model;
    if (utf8Bytes(text) > answerByteCap(request.job.sampling.max_tokens)) {
      return { ok: false, error: { code: "bad_request", message: "continuation over max_tokens" } };
    }
    // As for any failover, the request's latency budget is spent already: any tab beats none.
    const req = { ...placement.matchRequest(model, request.match) };
    delete req.latencyBudgetMs;
    // Only a tab that can take what is left of the budget (one that counts the delivered text's
    // tokens, once the coordinator's bound leaves none: answer-budget.ts).
    const result = placement.matchContinuation(req, request.job, text);
    const tab = result.kind === "match" ? this.d.tabs.get(result.match.tab.id) : undefined;
    if (!tab) {
      const code = this.d.tabs.anyServes(model) ? "no_capacity" : "model_not_served";
      return { ok: false, error: { code, message: `No tab here can continue '${model}' now.` } };
    }
    // A job moved from another object's line (waiting-moves.ts) comes only if it starts sooner
    // here than there; the mover's view may be stale, so decline, writing nothing, when it does not.
    const offerMs = result.kind === "match" ? result.match.estimate.objectiveMs : null;
    if (offerMs !== null && request.acceptUpToMs !== undefined && offerMs > request.acceptUpToMs) {
      const message = `Not sooner here (offer ${Math.round(offerMs)} ms).`;
      return { ok: false, error: { code: "no_capacity", message }, offerMs };
    }
    const full = this.d.budget.makeRoom(request);
    if (full) return { ok: false, error: full };
    const spec = specOf(request, newJobId(this.d.jobIdName));
    jobs.create(spec, request);
    jobs.seedText(spec.id, text);
    const { readerId, events } = this.d.readers.first(spec.id);
    await this.d.machine.placed(await placement.assign(spec.id, spec, tab, text));
    this.reportAfterReply();
    log("info", "job continues here", { jobId: spec.id, continues: request.requestId });
    return { ok: true, jobId: spec.id, tab: tab.publicId, readerId, events };
  }

  /**
   * A shard whose last idle tab for a model was just taken (or whose queue grew) tells routing at
   * once — but after its reply to the Worker, not before: the report is a round trip to the
   * Directory object, and the client's response (its headers, then its first token) must not
   * wait for it. Nothing the reply promises depends on it: the job is written, its first reader
   * attached and its assignment sent before this runs.
   */
  private reportAfterReply(): void {
    void this.d.report
      .soon(false)
      .catch((e: unknown) => log("warn", "directory report failed", { error: String(e) }));
  }
}
