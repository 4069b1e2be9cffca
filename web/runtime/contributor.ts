import type { ModelRecord } from "../../shared/models/catalog.js";
import type { JobErrorCode, JobSpec } from "../../shared/protocol/job.js";
import type {
  AdapterInfo,
  CoordinatorMessage,
  HelloGpu,
  NodeState,
  TabMessage,
  Hello,
} from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { EngineError, type InferenceEngine, type OnProgress } from "../engine/inference-engine.js";
import type { DirectSender } from "../direct/tab-sender.js";
import { DeltaCoalescer } from "./delta-coalescer.js";
import { TabSocket, type Connection, type SocketLike } from "./tab-socket.js";
import { browserTimers, type Timers } from "./timers.js";

/**
 * A contributor tab: loads one model into the engine, registers with the coordinator and serves one
 * job at a time (WebLLM runs one request per loaded model). For each `job.assign` it sends
 * `job.accept`, streams coalesced `job.delta` frames and ends with `job.done` or `job.error`;
 * `job.cancel` interrupts the engine and the job ends with finishReason "abort".
 */

export interface ContributorView {
  state: NodeState;
  connection: Connection | "not started";
  connectionDetail: string | null;
  model: string | null;
  nodeId: string | null;
  jobsServed: number;
  lastTokensPerSecond: number | null;
  /** A problem the contributor must act on (e.g. the GPU device was lost). */
  error: string | null;
  /** Why the tab is paused or loading, in plain words (also sent in `status`). */
  reason: string | null;
  /** The job being served now: its model and roughly where its client is, when known. */
  serving: ServingJob | null;
}

export interface ServingJob {
  model: string;
  /** City level ("Frankfurt, DE"), from the coordinator's view of the request; null if unknown. */
  clientPlace: string | null;
}

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

/** Proves the tab's identity to the coordinator (see web/runtime/tab-identity.ts). */
export interface TabIdentity {
  /** Sign the challenge; null when this browser cannot keep a key (the tab then gets a fresh id). */
  prove(nonce: string): Promise<Pick<Hello, "nodeId" | "identity"> | null>;
}

export interface ContributorOptions {
  engine: InferenceEngine;
  url: string;
  adapter: AdapterInfo;
  agent: string;
  identity: TabIdentity;
  onChange(view: ContributorView): void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  /** GPU class and benchmark for `hello`, read at each (re)connect. */
  gpu?: () => HelloGpu | undefined;
  /**
   * Called when a job ends, before the tab turns idle again: pausing here (duty cycle, throttling)
   * takes effect before the coordinator can assign another job.
   */
  onJobEnd?: (end: JobEnd) => void;
  /** Credit the coordinator counted for a finished job (after onJobEnd recorded the job). */
  onCredit?: (jobId: string, credit: number) => void;
  log?: (message: string) => void;
  /** Also stream to callers that asked for the direct WebRTC path (`job.direct`); see web/direct/tab-sender.ts. */
  direct?: DirectSender;
}

interface RunningJob {
  id: string;
  cancelled: boolean;
}

export class Contributor {
  private readonly view: ContributorView = {
    state: "loading",
    connection: "not started",
    connectionDetail: null,
    model: null,
    nodeId: null,
    jobsServed: 0,
    lastTokensPerSecond: null,
    error: null,
    reason: null,
    serving: null,
  };
  private readonly socket: TabSocket;
  private readonly timers: Timers;
  private job: RunningJob | null = null;
  private pauseRequested = false;
  private loaded: ModelRecord | null = null;
  private recovering = false;
  private recoveries: number[] = [];

  constructor(private readonly opts: ContributorOptions) {
    this.timers = opts.timers ?? browserTimers;
    this.socket = new TabSocket({
      url: opts.url,
      hello: async (nonce) => ({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        ...((await opts.identity.prove(nonce).catch(() => null)) ?? {}),
        adapter: opts.adapter,
        models: this.models(),
        state: this.view.state,
        agent: opts.agent,
        ...(opts.gpu?.() ? { gpu: opts.gpu() } : {}),
      }),
      heartbeat: () => this.statusFrame(),
      onMessage: (msg) => this.receive(msg),
      onConnection: (c, detail) => this.connectionChanged(c, detail),
      timers: this.timers,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get snapshot(): Readonly<ContributorView> {
    return { ...this.view };
  }

  /** Load the model, then connect. Rejects with an EngineError if the model cannot load. */
  async start(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    this.update({ state: "loading", error: null });
    try {
      await this.opts.engine.load(model, onProgress);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.update({ error: `Could not load ${model.model_id}: ${message}` });
      throw err;
    }
    this.loaded = model;
    this.update({ model: model.model_id, state: this.pauseRequested ? "paused" : "idle" });
    this.socket.start();
  }

  /** Stop taking jobs (a running job finishes first). `reason` is shown and sent in `status`. */
  pause(reason?: string): void {
    this.pauseRequested = true;
    const changed = (reason ?? null) !== this.view.reason;
    if (changed) this.update({ reason: reason ?? null });
    if (this.view.state === "idle") this.setState("paused");
    else if (changed && this.view.state === "paused") this.socket.send(this.statusFrame());
  }

  resume(): void {
    if (this.recovering) return;
    this.pauseRequested = false;
    if (this.view.reason) this.update({ reason: null });
    if (this.view.state === "paused" && this.view.model) this.setState("idle");
  }

  stop(): void {
    this.cancelRunning();
    this.socket.stop();
  }

  /**
   * The engine is gone outside any job (its Worker died): stop advertising the model. A running
   * job fails through its own call and reports the error to the coordinator.
   */
  engineFailed(error: EngineError): void {
    if (this.job) return;
    void this.recover(error);
  }

  /**
   * The GPU device or the engine Worker is gone: tell the coordinator (status "loading" with the
   * reason), reload the model, and serve again. Bounded: after 3 recoveries in 10 minutes the tab
   * stops and asks the contributor to reload the page.
   */
  private async recover(e: EngineError): Promise<void> {
    const model = this.loaded;
    if (!model || this.recovering) return;
    const now = this.timers.now();
    this.recoveries = this.recoveries.filter((t) => now - t < 10 * 60_000);
    if (this.recoveries.length >= 3) {
      this.pauseRequested = true;
      this.loaded = null;
      this.update({
        model: null,
        reason: `${e.code}: stopped`,
        error: `${e.message} This keeps happening; reload the page to contribute again.`,
      });
      if (this.view.state !== "busy") this.setState("paused");
      return;
    }
    this.recoveries.push(now);
    this.recovering = true;
    const paused = this.pauseRequested;
    this.update({ model: null, reason: `${e.code}: reloading the model`, error: null });
    if (this.view.state === "loading") this.socket.send(this.statusFrame());
    else this.setState("loading");
    try {
      await this.opts.engine.load(model, () => {});
      this.update({ model: model.model_id, reason: paused ? this.view.reason : null });
      this.recovering = false;
      this.setState(this.pauseRequested ? "paused" : "idle");
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.pauseRequested = true;
      this.loaded = null;
      this.recovering = false;
      this.update({
        reason: `${e.code}: could not reload`,
        error: `Could not reload ${model.model_id} after ${e.code}: ${message}. Reload the page to contribute again.`,
      });
      this.setState("paused");
    }
  }

  private models(): string[] {
    return this.view.model ? [this.view.model] : [];
  }

  private statusFrame(): TabMessage {
    const reason = this.view.reason;
    return {
      type: "status",
      state: this.view.state,
      models: this.models(),
      ...(reason && this.view.state !== "idle" ? { reason } : {}),
    };
  }

  private update(patch: Partial<ContributorView>): void {
    Object.assign(this.view, patch);
    this.opts.onChange(this.snapshot);
  }

  /** `patch` is applied in the same view update (even when the state does not change). */
  private setState(state: NodeState, patch: Partial<ContributorView> = {}): void {
    if (state === this.view.state) {
      if (Object.keys(patch).length) this.update(patch);
      return;
    }
    this.update({ ...patch, state });
    this.socket.send(this.statusFrame());
  }

  private connectionChanged(c: Connection, detail?: string): void {
    // The coordinator replaces a job whose tab vanished; finishing it here would be wasted work.
    if (c === "reconnecting" || c === "fatal") this.cancelRunning();
    this.update({ connection: c, connectionDetail: detail ?? null });
  }

  private cancelRunning(): void {
    if (!this.job || this.job.cancelled) return;
    this.job.cancelled = true;
    void this.opts.engine.abort().catch(() => {});
  }

  private receive(msg: CoordinatorMessage): void {
    switch (msg.type) {
      case "welcome":
        this.update({ nodeId: msg.nodeId });
        return;
      case "challenge":
        // Answered by TabSocket before anything else; never forwarded here.
        return;
      case "job.assign":
        this.assign(msg.job, msg.continueFrom);
        return;
      case "job.cancel":
        if (this.job?.id === msg.jobId) this.cancelRunning();
        return;
      case "job.credit":
        this.opts.onCredit?.(msg.jobId, msg.credit);
        return;
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }

  private refuse(jobId: string, code: JobErrorCode, message: string): void {
    this.socket.send({ type: "job.error", jobId, error: { code, message } });
  }

  private assign(job: JobSpec, continueFrom: string | undefined): void {
    if (this.job || this.view.state !== "idle") {
      return this.refuse(job.id, "no_capacity", `this tab is ${this.view.state}`);
    }
    if (job.model !== this.view.model) {
      return this.refuse(
        job.id,
        "model_not_served",
        `this tab serves ${this.view.model ?? "none"}`,
      );
    }
    void this.run(job, continueFrom);
  }

  /** `continueFrom`: after a failover, the text the client already has; only new text is sent. */
  private async run(job: JobSpec, continueFrom: string | undefined): Promise<void> {
    const running: RunningJob = { id: job.id, cancelled: false };
    this.job = running;
    this.socket.send({ type: "job.accept", jobId: job.id });
    this.setState("busy", { serving: { model: job.model, clientPlace: job.clientPlace ?? null } });
    const deltas = new DeltaCoalescer(
      (text, seq) => this.socket.send({ type: "job.delta", jobId: job.id, seq, text }),
      { timers: this.timers },
    );
    // The direct path gets every piece at once; the relay stays the record of the job.
    const direct = job.direct
      ? (this.opts.direct?.open(job.id, job.direct.peerId, continueFrom?.length ?? 0) ?? null)
      : null;
    const onDelta = (text: string) => {
      direct?.delta(text);
      deltas.push(text);
    };
    const engine = this.opts.engine;
    const startedAt = Date.now();
    const t0 = this.timers.now();
    const ended = (end: Omit<JobEnd, "jobId" | "model" | "startedAt" | "durationMs">) =>
      this.opts.onJobEnd?.({
        jobId: job.id,
        model: job.model,
        startedAt,
        durationMs: Math.max(0, this.timers.now() - t0),
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
      this.socket.send({
        type: "job.done",
        jobId: job.id,
        finishReason,
        usage: result.usage,
        ...(result.decodeTokensPerSecond !== undefined
          ? { decodeTokensPerSecond: result.decodeTokensPerSecond }
          : {}),
        state: this.pauseRequested ? "paused" : "idle",
      });
      this.update({
        jobsServed: this.view.jobsServed + (finishReason === "abort" ? 0 : 1),
        lastTokensPerSecond: result.decodeTokensPerSecond ?? this.view.lastTokensPerSecond,
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
      this.failed(job.id, e);
      if (e.code === "device_lost" || e.code === "worker_crashed" || e.code === "not_loaded") {
        // The model is gone from the GPU: tell the coordinator and load it again.
        void this.recover(e);
      }
    } finally {
      direct?.close();
      this.job = null;
      const next = this.view.state === "busy" ? (this.pauseRequested ? "paused" : "idle") : null;
      this.setState(next ?? this.view.state, { serving: null });
    }
  }

  private failed(jobId: string, e: EngineError): void {
    const code: JobErrorCode = e.code === "device_lost" ? "device_lost" : "engine_error";
    // A lost device or Worker means reloading the model next (recover()); say so up front.
    const reloading =
      e.code === "device_lost" || e.code === "worker_crashed" || e.code === "not_loaded";
    this.socket.send({
      type: "job.error",
      jobId,
      error: { code, message: e.message.slice(0, 2000) },
      state: reloading ? "loading" : this.pauseRequested ? "paused" : "idle",
    });
  }
}
