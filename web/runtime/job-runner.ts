import type {
  EmbeddingInput,
  JobErrorCode,
  JobSpec,
  TextJobInput,
} from "../../shared/protocol/job.js";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import type { DirectSender } from "../direct/tab-sender.js";
import { EngineError, type InferenceEngine } from "../engine/inference-engine.js";
import { DeltaCoalescer } from "./delta-coalescer.js";
import { serveEmbedding } from "./embedding-job.js";
import { needsReload } from "./recovery.js";
import type { TabStatus } from "./tab-status.js";
import type { Timers } from "./timers.js";

/**
 * Serves one job at a time (WebLLM runs one request per loaded model). For each `job.assign` it
 * sends `job.accept`, streams coalesced `job.delta` frames (and, when the caller asked for the
 * direct path, every piece over the data channel) and ends with `job.done` or `job.error`;
 * `job.cancel` interrupts the engine and the job ends with finishReason "abort". Owns the running
 * job.
 */

/** How a job ended, for the local ledger and the speed/throttling watch (web/control, web/ledger). */
export interface JobEnd {
  jobId: string;
  model: string;
  startedAt: number;
  durationMs: number;
  outcome: "done" | "aborted" | "failed";
  completionTokens: number;
  promptTokens: number;
  decodeTokensPerSecond: number | null;
  errorCode?: string;
}

export interface JobRunnerOptions {
  engine: InferenceEngine;
  status: TabStatus;
  send(msg: TabMessage): void;
  timers: Timers;
  direct?: DirectSender | undefined;
  /**
   * Called when a job ends, before the tab turns idle again: pausing here (duty cycle, throttling)
   * takes effect before the coordinator can assign another job.
   */
  onJobEnd?: ((end: JobEnd) => void) | undefined;
  /** The engine lost the model while serving (see needsReload): reload it. */
  onModelLost(e: EngineError): void;
}

interface RunningJob {
  id: string;
  cancelled: boolean;
}

export class JobRunner {
  private job: RunningJob | null = null;
  /**
   * Send `job.progress` this often between accept and the first delta, so the coordinator's lease
   * knows a long prefill is alive; null for a coordinator older than PROGRESS_SINCE_PROTOCOL.
   */
  progressEveryMs: number | null = null;

  constructor(private readonly opts: JobRunnerOptions) {}

  get busy(): boolean {
    return this.job !== null;
  }

  /** A `job.assign`: serve it if this tab is idle with the job's model, refuse it otherwise. */
  assign(job: JobSpec, continueFrom: string | undefined): void {
    const view = this.opts.status.now;
    if (this.job || view.state !== "idle") {
      return this.refuse(job.id, "no_capacity", `this tab is ${view.state}`);
    }
    if (job.model !== view.model) {
      return this.refuse(job.id, "model_not_served", `this tab serves ${view.model ?? "none"}`);
    }
    const input = job.input;
    if (input.kind === "embedding") void this.embed(job, input);
    else void this.run({ ...job, input }, continueFrom);
  }

  /** A `job.cancel` for the running job. */
  /**
   * Re-score another tab's answer (docs/trust.md): one engine call, no text produced, busy while
   * it runs like a job. Refused (as an audit.result with an error) when not idle.
   */
  audit(audit: AuditAssign): void {
    const { engine, status, send } = this.opts;
    const view = status.now;
    const fail = (code: JobErrorCode, message: string) =>
      send({
        type: "audit.result",
        auditId: audit.auditId,
        tokenLogprobs: [],
        stopLogprob: null,
        error: { code, message: message.slice(0, 2000) },
        state: status.resting,
      });
    if (this.job || view.state !== "idle") return fail("no_capacity", `this tab is ${view.state}`);
    if (audit.model !== view.model)
      return fail("model_not_served", `serves ${view.model ?? "none"}`);
    this.job = { id: audit.auditId, cancelled: false };
    status.setState("busy", { serving: null });
    void engine
      .score({
        input: audit.input,
        sampling: audit.sampling,
        answer: audit.answer,
        seed: audit.seed,
        scoreStop: audit.scoreStop,
        maxTokens: audit.maxTokens,
      })
      .then(
        (r) =>
          send({
            type: "audit.result",
            auditId: audit.auditId,
            tokenLogprobs: r.tokenLogprobs.map((lp) => Math.max(-1e4, Math.min(0, lp))),
            stopLogprob: r.stopLogprob === null ? null : Math.max(-1e4, Math.min(0, r.stopLogprob)),
            state: status.resting,
          }),
        (err: unknown) => fail("engine_error", err instanceof Error ? err.message : String(err)),
      )
      .finally(() => {
        this.job = null;
        if (status.now.state === "busy") status.setState(status.resting, { serving: null });
      });
  }

  cancel(jobId: string): void {
    if (this.job?.id === jobId) this.cancelRunning();
  }

  /** Interrupt the engine; the running job then ends with finishReason "abort". */
  cancelRunning(): void {
    if (!this.job || this.job.cancelled) return;
    this.job.cancelled = true;
    void this.opts.engine.abort().catch(() => {});
  }

  private refuse(jobId: string, code: JobErrorCode, message: string): void {
    this.opts.send({ type: "job.error", jobId, error: { code, message } });
  }

  /** An embedding job (embedding-job.ts): vectors instead of text, one at a time like a job. */
  private async embed(job: JobSpec, input: EmbeddingInput): Promise<void> {
    const running: RunningJob = { id: job.id, cancelled: false };
    this.job = running;
    const startedAt = Date.now();
    const t0 = this.opts.timers.now();
    try {
      await serveEmbedding(
        {
          ...this.opts,
          progressEveryMs: this.progressEveryMs,
          ended: (end) =>
            this.opts.onJobEnd?.({
              jobId: job.id,
              model: job.model,
              startedAt,
              durationMs: Math.max(0, this.opts.timers.now() - t0),
              completionTokens: 0,
              decodeTokensPerSecond: null,
              ...end,
            }),
        },
        job,
        input,
        () => running.cancelled,
      );
    } finally {
      this.job = null;
      const { status } = this.opts;
      const state = status.now.state;
      status.setState(state === "busy" ? status.resting : state, { serving: null });
    }
  }

  /** `continueFrom`: after a failover, the text the client already has; only new text is sent. */
  private async run(
    job: JobSpec & { input: TextJobInput },
    continueFrom: string | undefined,
  ): Promise<void> {
    const { engine, status, send, timers } = this.opts;
    const running: RunningJob = { id: job.id, cancelled: false };
    this.job = running;
    send({ type: "job.accept", jobId: job.id });
    status.setState("busy", {
      serving: { model: job.model, clientPlace: job.clientPlace ?? null },
    });
    const deltas = new DeltaCoalescer(
      (text, seq) => send({ type: "job.delta", jobId: job.id, seq, text }),
      { timers },
    );
    // The direct path gets every piece at once; the relay stays the record of the job.
    const direct = job.direct
      ? (this.opts.direct?.open(job.id, job.direct.peerId, continueFrom?.length ?? 0) ?? null)
      : null;
    const every = this.progressEveryMs;
    let progress: number | null =
      every === null
        ? null
        : timers.setInterval(
            () => send({ type: "job.progress", jobId: job.id, phase: "prefill" }),
            every,
          );
    const prefilled = () => {
      if (progress !== null) timers.clearInterval(progress);
      progress = null;
    };
    const onDelta = (text: string) => {
      prefilled();
      direct?.delta(text);
      deltas.push(text);
    };
    const startedAt = Date.now();
    const t0 = timers.now();
    const ended = (end: Omit<JobEnd, "jobId" | "model" | "startedAt" | "durationMs">) =>
      this.opts.onJobEnd?.({
        jobId: job.id,
        model: job.model,
        startedAt,
        durationMs: Math.max(0, timers.now() - t0),
        ...end,
      });
    try {
      const result =
        job.input.kind === "chat"
          ? await engine.chat(
              { messages: job.input.messages, sampling: job.sampling, continueFrom },
              onDelta,
            )
          : await engine.complete(
              { prompt: job.input.prompt, sampling: job.sampling, continueFrom },
              onDelta,
            );
      deltas.flush();
      const finishReason = running.cancelled ? "abort" : result.finishReason;
      direct?.done(finishReason, result.usage);
      // onJobEnd first: a pause it decides (GPU share, throttling) is announced in job.done, so
      // the coordinator never offers this tab a job it would refuse.
      ended({
        outcome: finishReason === "abort" ? "aborted" : "done",
        completionTokens: result.usage.completion_tokens,
        promptTokens: result.usage.prompt_tokens,
        decodeTokensPerSecond: result.decodeTokensPerSecond ?? null,
      });
      send({
        type: "job.done",
        jobId: job.id,
        finishReason,
        usage: result.usage,
        ...(result.decodeTokensPerSecond !== undefined
          ? { decodeTokensPerSecond: result.decodeTokensPerSecond }
          : {}),
        state: status.resting,
      });
      status.update({
        jobsServed: status.now.jobsServed + (finishReason === "abort" ? 0 : 1),
        lastTokensPerSecond: result.decodeTokensPerSecond ?? status.now.lastTokensPerSecond,
      });
    } catch (err) {
      deltas.flush();
      const e = err instanceof EngineError ? err : new EngineError("engine_error", String(err));
      ended({
        outcome: "failed",
        completionTokens: 0,
        promptTokens: 0,
        decodeTokensPerSecond: null,
        errorCode: e.code,
      });
      const reload = needsReload(e);
      // A lost model means reloading it next (the onModelLost recovery); say so up front.
      send({
        type: "job.error",
        jobId: job.id,
        error: {
          code: e.code === "device_lost" ? "device_lost" : "engine_error",
          message: e.message.slice(0, 2000),
        },
        state: reload ? "loading" : status.resting,
      });
      if (reload) this.opts.onModelLost(e);
    } finally {
      prefilled();
      direct?.close();
      this.job = null;
      const state = status.now.state;
      status.setState(state === "busy" ? status.resting : state, { serving: null });
    }
  }
}
