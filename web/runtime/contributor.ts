import type { ModelRecord } from "../../shared/models/catalog.js";
import type { JobErrorCode, JobSpec } from "../../shared/protocol/job.js";
import type {
  AdapterInfo,
  CoordinatorMessage,
  NodeState,
  TabMessage,
} from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { EngineError, type InferenceEngine, type OnProgress } from "../engine/inference-engine.js";
import { DeltaCoalescer } from "./delta-coalescer.js";
import { NodeSocket, type Connection, type SocketLike } from "./node-socket.js";
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
}

export interface NodeIdStore {
  get(): string | undefined;
  set(id: string): void;
}

export interface ContributorOptions {
  engine: InferenceEngine;
  url: string;
  adapter: AdapterInfo;
  agent: string;
  nodeIds: NodeIdStore;
  onChange(view: ContributorView): void;
  createSocket?: (url: string) => SocketLike;
  timers?: Timers;
  log?: (message: string) => void;
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
  };
  private readonly socket: NodeSocket;
  private readonly timers: Timers;
  private job: RunningJob | null = null;
  private pauseRequested = false;

  constructor(private readonly opts: ContributorOptions) {
    this.timers = opts.timers ?? browserTimers;
    this.view.nodeId = opts.nodeIds.get() ?? null;
    this.socket = new NodeSocket({
      url: opts.url,
      hello: () => ({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        ...(this.view.nodeId ? { nodeId: this.view.nodeId } : {}),
        adapter: opts.adapter,
        models: this.models(),
        state: this.view.state,
        agent: opts.agent,
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
    this.update({ model: model.model_id, state: this.pauseRequested ? "paused" : "idle" });
    this.socket.start();
  }

  /** Stop taking jobs (a running job finishes first). */
  pause(): void {
    this.pauseRequested = true;
    if (this.view.state === "idle") this.setState("paused");
  }

  resume(): void {
    this.pauseRequested = false;
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
    this.pauseRequested = true;
    this.update({ model: null, error: `${error.message} Reload the page to contribute again.` });
    if (this.view.state === "idle") this.setState("paused");
    else if (!this.job) this.socket.send(this.statusFrame());
  }

  private models(): string[] {
    return this.view.model ? [this.view.model] : [];
  }

  private statusFrame(): TabMessage {
    return { type: "status", state: this.view.state, models: this.models() };
  }

  private update(patch: Partial<ContributorView>): void {
    Object.assign(this.view, patch);
    this.opts.onChange(this.snapshot);
  }

  private setState(state: NodeState): void {
    if (state === this.view.state) return;
    this.update({ state });
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
        if (msg.nodeId !== this.view.nodeId) this.opts.nodeIds.set(msg.nodeId);
        this.update({ nodeId: msg.nodeId });
        return;
      case "job.assign":
        this.assign(msg.job, msg.continueFrom);
        return;
      case "job.cancel":
        if (this.job?.id === msg.jobId) this.cancelRunning();
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
    this.setState("busy");
    const deltas = new DeltaCoalescer(
      (text, seq) => this.socket.send({ type: "job.delta", jobId: job.id, seq, text }),
      { timers: this.timers },
    );
    const onDelta = (text: string) => deltas.push(text);
    const engine = this.opts.engine;
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
      this.socket.send({
        type: "job.done",
        jobId: job.id,
        finishReason,
        usage: result.usage,
        ...(result.decodeTokensPerSecond !== undefined
          ? { decodeTokensPerSecond: result.decodeTokensPerSecond }
          : {}),
      });
      this.update({
        jobsServed: this.view.jobsServed + (finishReason === "abort" ? 0 : 1),
        lastTokensPerSecond: result.decodeTokensPerSecond ?? this.view.lastTokensPerSecond,
      });
    } catch (err) {
      deltas.flush();
      this.failed(job.id, err);
    } finally {
      this.job = null;
      if (this.view.state === "busy") this.setState(this.pauseRequested ? "paused" : "idle");
    }
  }

  private failed(jobId: string, err: unknown): void {
    const e = err instanceof EngineError ? err : new EngineError("engine_error", String(err));
    const code: JobErrorCode = e.code === "device_lost" ? "device_lost" : "engine_error";
    this.socket.send({
      type: "job.error",
      jobId,
      error: { code, message: e.message.slice(0, 2000) },
    });
    if (e.code === "device_lost" || e.code === "worker_crashed" || e.code === "not_loaded") {
      // The model is gone from the GPU: stop advertising it until the contributor reloads.
      this.update({ model: null, error: `${e.message} Reload the page to contribute again.` });
      this.pauseRequested = true;
    }
  }
}
