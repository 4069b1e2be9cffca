import type { ModelRecord } from "../../shared/models/catalog.js";
import type {
  AdapterInfo,
  CoordinatorMessage,
  CreditBalance,
  Hello,
  HelloGpu,
  TabMessage,
} from "../../shared/protocol/node-messages.js";
import {
  PROGRESS_SINCE_PROTOCOL,
  PROTOCOL_VERSION,
  RESEND_SINCE_PROTOCOL,
  CHECKPOINT_SINCE_PROTOCOL,
} from "../../shared/protocol/version.js";
import type { DirectSender } from "../direct/tab-sender.js";
import type { EngineError, InferenceEngine, OnProgress } from "../engine/inference-engine.js";
import { JobRunner, type JobEnd } from "./job-runner.js";
import { Recovery } from "./recovery.js";
import {
  TabSocket,
  type Connection,
  type CoordinatorLink,
  type LinkFactory,
  type SocketLike,
} from "./tab-socket.js";
import { TabStatus, type ContributorView } from "./tab-status.js";
import { browserTimers, type Timers } from "./timers.js";

/**
 * A contributor tab: loads one model into the engine, registers with the coordinator and serves
 * jobs. This file wires the parts and takes the contributor's controls; each part owns its state:
 * `TabStatus` (the view and the pause request), `JobRunner` (the running job), `Recovery` (the
 * model to reload and the recovery budget), `TabSocket` (the connection).
 */
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
  /**
   * Where the coordinator connection runs: the tab-link Worker in the browser
   * (web/tab-link/link-client.ts); by default an in-process `TabSocket`.
   */
  link?: LinkFactory;
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
  /** The identity's balance in the coordinator's credit ledger (after welcome and each job). */
  onBalance?: (balance: CreditBalance) => void;
  log?: (message: string) => void;
  /** Also stream to callers that asked for the direct WebRTC path (`job.direct`); see web/direct. */
  direct?: DirectSender;
}

export class Contributor {
  private readonly status: TabStatus;
  private readonly socket: CoordinatorLink;
  private readonly runner: JobRunner;
  private readonly recovery: Recovery;
  /** The model is loaded and the socket was started (so a resumed page may reconnect). */
  private connecting = false;
  private suspended = false;

  constructor(private readonly opts: ContributorOptions) {
    const timers = opts.timers ?? browserTimers;
    const send = (msg: TabMessage) => this.socket.send(msg);
    this.status = new TabStatus(send, opts.onChange);
    this.recovery = new Recovery(opts.engine, this.status, timers);
    this.runner = new JobRunner({
      engine: opts.engine,
      status: this.status,
      send,
      timers,
      direct: opts.direct,
      onJobEnd: opts.onJobEnd,
      onModelLost: (e) => void this.recovery.recover(e),
    });
    const link: LinkFactory = opts.link ?? ((o) => new TabSocket(o));
    this.socket = link({
      url: opts.url,
      hello: async (nonce) => ({
        type: "hello",
        protocol: PROTOCOL_VERSION,
        ...((await opts.identity.prove(nonce).catch(() => null)) ?? {}),
        adapter: opts.adapter,
        models: this.status.models(),
        state: this.status.now.state,
        agent: opts.agent,
        ...(opts.gpu?.() ? { gpu: opts.gpu() } : {}),
      }),
      heartbeat: () => this.status.frame(),
      onMessage: (msg) => this.receive(msg),
      onConnection: (c, detail) => this.connectionChanged(c, detail),
      timers,
      ...(opts.createSocket ? { createSocket: opts.createSocket } : {}),
      ...(opts.log ? { log: opts.log } : {}),
    });
  }

  get snapshot(): Readonly<ContributorView> {
    return this.status.snapshot;
  }

  /** Load the model, then connect. Rejects with an EngineError if the model cannot load. */
  async start(model: ModelRecord, onProgress: OnProgress): Promise<void> {
    this.status.update({ state: "loading", error: null });
    try {
      await this.opts.engine.load(model, onProgress);
    } catch (err) {
      const message = err instanceof Error ? err.message : String(err);
      this.status.update({ error: `Could not load ${model.model_id}: ${message}` });
      throw err;
    }
    this.recovery.loaded(model);
    this.status.update({ model: model.model_id, state: this.status.resting });
    this.connecting = true;
    this.socket.start();
  }

  /**
   * The page is being frozen (Page Lifecycle `freeze`): drop the running job and close the socket,
   * so the coordinator moves the job to another tab at once instead of waiting out its lease, and
   * never assigns a job to a tab that cannot run it. `reconnect()` undoes it on `resume`.
   */
  suspend(reason: string): void {
    if (!this.connecting || this.suspended) return;
    this.suspended = true;
    this.runner.cancelRunning();
    this.socket.stop(reason);
  }

  /** The page is running again: connect with the same identity (the coordinator says welcome). */
  reconnect(): void {
    if (!this.connecting || !this.suspended) return;
    this.suspended = false;
    this.socket.start();
  }

  /** Stop taking jobs (a running job finishes first). `reason` is shown and sent in `status`. */
  pause(reason?: string): void {
    const status = this.status;
    status.pauseRequested = true;
    const changed = (reason ?? null) !== status.now.reason;
    if (changed) status.update({ reason: reason ?? null });
    if (status.now.state === "idle") status.setState("paused");
    else if (changed && status.now.state === "paused") status.announce();
  }

  resume(): void {
    const status = this.status;
    status.pauseRequested = false;
    // While the model reloads, recovery owns the state and the reason; it reads the (now lifted)
    // pause request when the model is back. Dropping the resume here left the tab paused for good
    // when a short rest (GPU share) ended during a reload.
    if (this.recovery.recovering) return;
    if (status.now.reason) status.update({ reason: null });
    if (status.now.state === "paused" && status.now.model) status.setState("idle");
  }

  stop(): void {
    this.connecting = false;
    this.suspended = false;
    this.runner.cancelRunning();
    this.socket.stop();
  }

  /**
   * The engine is gone outside any job (its Worker died): reload the model (see Recovery). A
   * running job fails through its own call, reports the error and then starts the recovery.
   */
  engineFailed(error: EngineError): void {
    if (this.runner.busy) return;
    void this.recovery.recover(error);
  }

  private connectionChanged(c: Connection, detail?: string): void {
    // The coordinator replaces a job whose tab vanished; finishing it here would be wasted work.
    if (c === "reconnecting" || c === "fatal") this.runner.cancelRunning();
    this.status.update({ connection: c, connectionDetail: detail ?? null });
  }

  private receive(msg: CoordinatorMessage): void {
    switch (msg.type) {
      case "welcome":
        this.status.update({ tabId: msg.nodeId });
        this.runner.progressEveryMs =
          msg.protocol >= PROGRESS_SINCE_PROTOCOL ? msg.statusIntervalMs / 2 : null;
        this.runner.sendOffsets = msg.protocol >= RESEND_SINCE_PROTOCOL;
        this.runner.checkpoints = msg.protocol >= CHECKPOINT_SINCE_PROTOCOL;
        return;
      case "challenge":
        // Answered by TabSocket before anything else; never forwarded here.
        return;
      case "job.assign":
        this.runner.assign(
          msg.job,
          msg.continueFrom !== undefined
            ? { text: msg.continueFrom, answerMaxTokens: msg.answerMaxTokens }
            : undefined,
          msg.queued === true,
        );
        return;
      case "job.cancel":
        this.runner.cancel(msg.jobId);
        return;
      case "job.resend":
        this.runner.resend(msg.jobId, msg.offset);
        return;
      case "job.credit":
        this.opts.onCredit?.(msg.jobId, msg.credit);
        return;
      case "credit.balance":
        this.opts.onBalance?.(msg);
        return;
      case "audit.assign":
        this.runner.audit(msg);
        return;
      case "trust": {
        const { type: _type, ...trust } = msg;
        void _type;
        this.status.update({ trust });
        return;
      }
      default: {
        const unreachable: never = msg;
        return unreachable;
      }
    }
  }
}
