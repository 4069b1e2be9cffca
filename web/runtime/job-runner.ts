import type {
  EmbeddingInput,
  JobErrorCode,
  JobSpec,
  TextJobInput,
} from "../../shared/protocol/job.js";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import { logprobsFrames, type TokenLogprob } from "../../shared/protocol/logprobs.js";
import { CheckpointBatcher, checkpointFrame } from "../direct/checkpoints.js";
import type { DirectSender } from "../direct/tab-sender.js";
import { EngineError, type InferenceEngine } from "../engine/inference-engine.js";
import { DeltaCoalescer, deltaPieces } from "./delta-coalescer.js";
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
  /**
   * A re-scoring the coordinator asked for (docs/trust.md), not a client's job: the GPU share
   * counts it (web/control), the page's ledger does not (start-contributing.ts).
   */
  audit?: true;
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
  /** An audit (re-scoring), not a job: nothing is queued behind it. */
  audit?: boolean;
}

/**
 * After a failover: the text the client already has (the engine continues after it; only new text
 * is sent) and, from a protocol-8 coordinator, the whole answer's max_tokens, so the engine's own
 * count of that text sets what is left.
 */
export interface Continuation {
  text: string;
  answerMaxTokens?: number;
}

/** A job the coordinator queued behind the running one (protocol 5). */
interface QueuedJob {
  job: JobSpec;
  continuation: Continuation | undefined;
}

/**
 * This attempt's answer as sent, kept until the next job so a coordinator that lost an unwritten
 * batch can ask for it again (`job.resend`, protocol 4); with the job.done to repeat once ended.
 */
interface SentAnswer {
  jobId: string;
  text: string;
  seq: number;
  done: TabMessage | null;
}

export class JobRunner {
  private job: RunningJob | null = null;
  /** At most one job held to start the moment the running one ends (no round trip lost). */
  private next: QueuedJob | null = null;
  /**
   * Send `job.progress` this often between accept and the first delta, so the coordinator's lease
   * knows a long prefill is alive; null for a coordinator older than PROGRESS_SINCE_PROTOCOL.
   */
  progressEveryMs: number | null = null;
  /** Deltas carry their offset and job.done its length (coordinator speaks RESEND_SINCE_PROTOCOL). */
  sendOffsets = false;
  /**
   * While a job's data channel is open, its text goes to the coordinator as `job.checkpoint`
   * batches (coordinator speaks CHECKPOINT_SINCE_PROTOCOL; web/direct/checkpoints.ts).
   */
  checkpoints = false;
  private sent: SentAnswer | null = null;

  constructor(private readonly opts: JobRunnerOptions) {}

  get busy(): boolean {
    return this.job !== null;
  }

  /**
   * A `job.assign`: serve it if this tab is idle with the job's model; with `queued`, hold it
   * behind the running job (one at most); refuse it otherwise.
   */
  assign(job: JobSpec, continuation: Continuation | undefined, queued = false): void {
    const view = this.opts.status.now;
    if (queued && this.job && !this.job.audit && !this.next && view.state === "busy") {
      if (job.model !== view.model) {
        return this.refuse(job.id, "model_not_served", `this tab serves ${view.model ?? "none"}`);
      }
      this.next = { job, continuation };
      return;
    }
    if (this.job || view.state !== "idle") {
      // Resting (paused, loading) is said, so the coordinator waits for this tab rather than
      // counting the refusal as a failure (e.g. a job queued behind one after which it rests).
      const resting = !this.job && (view.state === "paused" || view.state === "loading");
      return this.refuse(
        job.id,
        "no_capacity",
        `this tab is ${view.state}`,
        resting ? view.state : undefined,
      );
    }
    if (job.model !== view.model) {
      return this.refuse(job.id, "model_not_served", `this tab serves ${view.model ?? "none"}`);
    }
    const input = job.input;
    if (input.kind === "embedding") void this.embed(job, input);
    else void this.run({ ...job, input }, continuation);
  }

  /**
   * Re-score another tab's answer (docs/trust.md): one engine call, no text produced, busy while
   * it runs like a job. Refused (as an audit.result with an error) when not idle.
   */
  audit(audit: AuditAssign): void {
    const view = this.opts.status.now;
    if (this.job || view.state !== "idle")
      return this.auditFailed(audit.auditId, "no_capacity", `this tab is ${view.state}`);
    if (audit.model !== view.model)
      return this.auditFailed(audit.auditId, "model_not_served", `serves ${view.model ?? "none"}`);
    this.job = { id: audit.auditId, cancelled: false, audit: true };
    this.opts.status.setState("busy", { serving: null });
    void this.score(audit);
  }

  private auditFailed(
    auditId: string,
    code: JobErrorCode,
    message: string,
    state: "idle" | "paused" | "loading" = this.opts.status.resting,
  ): void {
    this.opts.send({
      type: "audit.result",
      auditId,
      tokenLogprobs: [],
      stopLogprob: null,
      error: { code, message: message.slice(0, 2000) },
      state,
    });
  }

  /**
   * An audit is teacher-forced decoding (up to MAX_AUDIT_TOKENS steps): GPU work like a job's, so
   * its end goes to `onJobEnd` too and the GPU share's rest follows it. It carries no tokens/s
   * figure (re-scoring is not decoding; the throttling watch compares decode speeds), and it comes
   * before audit.result, so the rest it decides is said there as on job.done.
   */
  private async score(audit: AuditAssign): Promise<void> {
    const { engine, status, send, timers } = this.opts;
    const startedAt = Date.now();
    const t0 = timers.now();
    const ended = (outcome: "done" | "failed", errorCode?: string) =>
      this.opts.onJobEnd?.({
        jobId: audit.auditId,
        model: audit.model,
        startedAt,
        durationMs: Math.max(0, timers.now() - t0),
        outcome,
        completionTokens: 0,
        promptTokens: 0,
        decodeTokensPerSecond: null,
        audit: true,
        ...(errorCode !== undefined ? { errorCode } : {}),
      });
    try {
      const r = await engine.score({
        input: audit.input,
        sampling: audit.sampling,
        answer: audit.answer,
        ...(audit.prefix ? { prefix: audit.prefix } : {}),
        seed: audit.seed,
        scoreStop: audit.scoreStop,
        maxTokens: audit.maxTokens,
      });
      ended("done");
      send({
        type: "audit.result",
        auditId: audit.auditId,
        tokenLogprobs: r.tokenLogprobs.map((lp) => Math.max(-1e4, Math.min(0, lp))),
        stopLogprob: r.stopLogprob === null ? null : Math.max(-1e4, Math.min(0, r.stopLogprob)),
        // The protocol's bound (a count past it says nothing a coordinator could use).
        ...(r.answerTokens !== undefined && Number.isInteger(r.answerTokens) && r.answerTokens >= 0
          ? { answerTokens: Math.min(1e7, r.answerTokens) }
          : {}),
        // One entry per scored token or none: the coordinator pairs them with the claimed ones.
        ...(r.reported && r.reported.length === r.tokenLogprobs.length
          ? { reported: r.reported }
          : {}),
        state: status.resting,
      });
    } catch (err) {
      const e = err instanceof EngineError ? err : new EngineError("engine_error", String(err));
      ended("failed", e.code);
      // A lost model is reloaded next, as after a job: the engine's crash listener leaves a busy
      // tab to its own call (Contributor.engineFailed), so without this the tab turned idle with
      // no model and failed the next client job instead.
      const reload = needsReload(e);
      const code = e.code === "device_lost" ? "device_lost" : "engine_error";
      this.auditFailed(audit.auditId, code, e.message, reload ? "loading" : undefined);
      if (reload) this.opts.onModelLost(e);
    } finally {
      this.job = null;
      if (status.now.state === "busy") status.setState(status.resting, { serving: null });
    }
  }

  /** A `job.cancel`: for the running job, or for the one queued behind it (simply dropped). */
  cancel(jobId: string): void {
    if (this.next?.job.id === jobId) this.next = null;
    else if (this.job?.id === jobId) this.abortRunning();
  }

  /**
   * The tab stops serving (frozen, stopped, disconnected): the queued job is dropped — the
   * coordinator moves it when the tab leaves — and the running one interrupted.
   */
  cancelRunning(): void {
    this.next = null;
    this.abortRunning();
  }

  /**
   * `job.resend`: the coordinator holds this job's answer up to `offset`; send the rest again in
   * deltas the coalescer's size (one delta may carry at most 64 Ki characters, and a long answer
   * lost whole is more), and the job.done again if the job has ended.
   */
  resend(jobId: string, offset: number): void {
    const sent = this.sent;
    if (!sent || sent.jobId !== jobId) return;
    let at = offset;
    for (const text of deltaPieces(sent.text.slice(offset))) {
      this.opts.send({ type: "job.delta", jobId, seq: sent.seq++, text, offset: at });
      at += text.length;
    }
    if (sent.done) this.opts.send(sent.done);
  }

  /** Interrupt the engine; the running job then ends with finishReason "abort". */
  private abortRunning(): void {
    if (!this.job || this.job.cancelled) return;
    this.job.cancelled = true;
    void this.opts.engine.abort().catch(() => {});
  }

  private refuse(
    jobId: string,
    code: JobErrorCode,
    message: string,
    state?: "idle" | "paused" | "loading",
  ): void {
    this.opts.send({
      type: "job.error",
      jobId,
      error: { code, message },
      ...(state ? { state } : {}),
    });
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
      // A job queued behind this one starts now (or is refused if the tab is no longer idle).
      const next = this.next;
      this.next = null;
      if (next) this.assign(next.job, next.continuation);
    }
  }

  /** `continuation`: after a failover, the text the client already has; only new text is sent. */
  private async run(
    job: JobSpec & { input: TextJobInput },
    continuation: Continuation | undefined,
  ): Promise<void> {
    const continueFrom = continuation?.text;
    const answerMaxTokens = continuation?.answerMaxTokens;
    const { engine, status, send, timers } = this.opts;
    const running: RunningJob = { id: job.id, cancelled: false };
    this.job = running;
    send({ type: "job.accept", jobId: job.id });
    status.setState("busy", {
      serving: { model: job.model, clientPlace: job.clientPlace ?? null },
    });
    const sent: SentAnswer = { jobId: job.id, text: "", seq: 0, done: null };
    this.sent = sent;
    const withOffsets = this.sendOffsets;
    // Asked-for log-probabilities follow the text they belong to: each job.delta is followed by
    // the entries of its tokens, so the coordinator can stream each chunk with its own (and check
    // them against the text it has). Those the engine gave with no piece go at the end.
    const entries = { waiting: [] as TokenLogprob[], sent: 0 };
    const deltas = new DeltaCoalescer(
      (text) => {
        const offset = sent.text.length;
        sent.text += text;
        send({
          type: "job.delta",
          jobId: job.id,
          seq: sent.seq++,
          text,
          ...(withOffsets ? { offset } : {}),
        });
        for (const frame of logprobsFrames(job.id, entries.waiting)) send(frame);
        entries.sent += entries.waiting.length;
        entries.waiting = [];
      },
      { timers },
    );
    // The direct path gets every piece at once; the relay stays the record of the job.
    const direct = job.direct
      ? (this.opts.direct?.open(job.id, job.direct.peerId, continueFrom?.length ?? 0) ?? null)
      : null;
    // Relay-light: while the caller's channel is open the coordinator gets checkpoints, with the
    // same offsets, so job.resend and failover work on them as on deltas.
    const checkpoints =
      direct && withOffsets && this.checkpoints
        ? new CheckpointBatcher(
            (text) => {
              const offset = sent.text.length;
              sent.text += text;
              send(checkpointFrame(job.id, offset, text));
            },
            { timers },
          )
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
    const onDelta = (text: string, logprobs?: TokenLogprob[]) => {
      firstTokenAt ??= timers.now();
      prefilled();
      direct?.delta(text);
      // Logprobs follow the next delta batch; on a checkpointed (direct) job they go at the end.
      if (logprobs) entries.waiting.push(...logprobs);
      // Whatever the other path holds goes first, so the coordinator sees the text in order.
      if (checkpoints && direct?.connected) {
        deltas.flush();
        checkpoints.push(text);
      } else {
        checkpoints?.flush();
        deltas.push(text);
      }
    };
    const startedAt = Date.now();
    const t0 = timers.now();
    let firstTokenAt: number | null = null;
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
              {
                messages: job.input.messages,
                sampling: job.sampling,
                continueFrom,
                answerMaxTokens,
              },
              onDelta,
            )
          : await engine.complete(
              { prompt: job.input.prompt, sampling: job.sampling, continueFrom, answerMaxTokens },
              onDelta,
            );
      deltas.flush();
      checkpoints?.flush();
      const finishReason = running.cancelled ? "abort" : result.finishReason;
      // Asked-for log-probabilities go before job.done, which delivers them to the client.
      if (result.logprobs && finishReason !== "abort")
        for (const frame of logprobsFrames(job.id, result.logprobs.slice(entries.sent)))
          send(frame);
      // Only a finished answer ends the caller's direct stream. An aborted attempt (the hedge the
      // other tab won, a dropped socket, a frozen page, the contributor's Stop) stops short: the
      // coordinator continues it elsewhere, and a `done` here would end the caller's answer at
      // this attempt's text. Without it the caller reads the rest from the relay.
      if (finishReason !== "abort") direct?.done(finishReason, result.usage);
      // onJobEnd first: a pause it decides (GPU share, throttling) is announced in job.done, so
      // the coordinator never offers this tab a job it would refuse.
      ended({
        outcome: finishReason === "abort" ? "aborted" : "done",
        completionTokens: result.usage.completion_tokens,
        promptTokens: result.usage.prompt_tokens,
        decodeTokensPerSecond: result.decodeTokensPerSecond ?? null,
      });
      const done: TabMessage = {
        type: "job.done",
        jobId: job.id,
        finishReason,
        usage: result.usage,
        ...(result.decodeTokensPerSecond !== undefined
          ? { decodeTokensPerSecond: result.decodeTokensPerSecond }
          : {}),
        ...(continueFrom && result.continuedTokens !== undefined
          ? { continuedTokens: result.continuedTokens }
          : {}),
        ...(firstTokenAt !== null ? { prefillMs: Math.max(0, firstTokenAt - t0) } : {}),
        ...(withOffsets ? { chars: sent.text.length } : {}),
        state: this.next && status.resting === "idle" ? "busy" : status.resting,
      };
      sent.done = done;
      send(done);
      status.update({
        jobsServed: status.now.jobsServed + (finishReason === "abort" ? 0 : 1),
        lastTokensPerSecond: result.decodeTokensPerSecond ?? status.now.lastTokensPerSecond,
      });
    } catch (err) {
      deltas.flush();
      checkpoints?.flush();
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
          code: e.code === "device_lost" || e.code === "bad_request" ? e.code : "engine_error",
          message: e.message.slice(0, 2000),
        },
        state: reload ? "loading" : status.resting,
      });
      if (reload && this.next) {
        this.refuse(this.next.job.id, "no_capacity", "this tab is reloading its model", "loading");
        this.next = null;
      }
      if (reload) this.opts.onModelLost(e);
    } finally {
      prefilled();
      direct?.close();
      this.job = null;
      const state = status.now.state;
      const next = this.next;
      this.next = null;
      if (next && state === "busy" && status.resting === "idle") {
        // The queued job starts at once; the tab never shows idle in between.
        const input = next.job.input;
        if (input.kind === "embedding") void this.embed(next.job, input);
        else void this.run({ ...next.job, input }, next.continuation);
      } else {
        status.setState(state === "busy" ? status.resting : state, { serving: null });
        if (next) {
          const now = status.now.state;
          const resting = now === "paused" || now === "loading" ? now : "idle";
          this.refuse(next.job.id, "no_capacity", `this tab is ${now}`, resting);
        }
      }
    }
  }
}
