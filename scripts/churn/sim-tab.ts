import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import {
  CoordinatorMessageSchema,
  PING_FRAME,
  PONG_FRAME,
  parseFrame,
  type CoordinatorMessage,
} from "../../shared/protocol/node-messages.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import type { Observations } from "./observations.js";
import { parsePrompt, planJob, type PlanParams } from "./plan.js";

export interface TabOptions {
  wsUrl: string;
  model: string;
  plan: Omit<PlanParams, "seed">;
  /** Milliseconds between delta frames (tokensPerFrame tokens each). */
  frameMs: number;
  /** A tab that dropped comes back as a new tab after this long. */
  rejoinMs: number;
  /** A silent tab the coordinator never closes gives up and reconnects after this long. */
  silentMaxMs: number;
}

type Serving = { job: JobSpec; timer: ReturnType<typeof setTimeout> | undefined };

/**
 * One simulated contributor tab speaking the real protocol over a real WebSocket: challenge →
 * hello (no identity: the coordinator gives it a fresh id) → welcome, a PING_FRAME every half status
 * interval, and for each job.assign: job.accept, delta frames at a fixed token rate (continuing
 * after `continueFrom` on a failover), job.done with usage. When the job's plan says so, the first
 * tab serving it drops mid-stream: abruptly (TCP connection destroyed, no close frame) or silently
 * (socket kept open, nothing sent, pings included). A dropped tab rejoins later as a new tab.
 */
export class SimTab {
  private ws: WebSocket | undefined;
  private pingTimer: ReturnType<typeof setInterval> | undefined;
  private serving: Serving | undefined;
  private silentSince: number | undefined;
  private stopped = false;
  private readyResolve: (() => void) | undefined;
  /** Connections this tab opened, for the report. */
  connections = 0;

  constructor(
    readonly index: number,
    private readonly opts: TabOptions,
    private readonly obs: Observations,
  ) {}

  /** Connect and resolve once welcomed. */
  start(): Promise<void> {
    return new Promise((resolve, reject) => {
      this.readyResolve = resolve;
      this.connect(reject);
    });
  }

  stop(): void {
    this.stopped = true;
    this.clearTimers();
    try {
      this.ws?.close(1000, "benchmark over");
    } catch {
      // Already closed.
    }
    this.ws?.terminate();
  }

  private connect(onError?: (e: Error) => void): void {
    if (this.stopped) return;
    this.connections++;
    const ws = new WebSocket(this.opts.wsUrl);
    this.ws = ws;
    this.silentSince = undefined;
    ws.on("message", (data) => this.onFrame(ws, data.toString()));
    ws.on("error", (e) => onError?.(e));
    ws.on("close", () => this.onClosed(ws));
  }

  private onClosed(ws: WebSocket): void {
    if (ws !== this.ws) return;
    this.clearTimers();
    this.serving = undefined;
    if (!this.stopped) setTimeout(() => this.connect(), this.opts.rejoinMs);
  }

  private clearTimers(): void {
    if (this.pingTimer) clearInterval(this.pingTimer);
    this.pingTimer = undefined;
    if (this.serving?.timer) clearTimeout(this.serving.timer);
  }

  private send(msg: unknown): void {
    if (this.silentSince !== undefined) return;
    if (this.ws?.readyState === WebSocket.OPEN) this.ws.send(JSON.stringify(msg));
  }

  private onFrame(ws: WebSocket, raw: string): void {
    if (ws !== this.ws || raw === PONG_FRAME) return;
    const parsed = parseFrame(CoordinatorMessageSchema, raw);
    if (!parsed.ok) throw new Error(`coordinator sent an invalid frame: ${parsed.reason}`);
    this.onMessage(parsed.msg);
  }

  private onMessage(msg: CoordinatorMessage): void {
    const now = performance.now();
    switch (msg.type) {
      case "challenge":
        this.send({
          type: "hello",
          protocol: PROTOCOL_VERSION,
          adapter: {
            vendor: "bench",
            architecture: "simulated",
            description: `churn tab ${this.index}`,
            shaderF16: false,
            maxBufferSize: 268435456,
            maxStorageBufferBindingSize: 134217728,
          },
          models: [this.opts.model],
          state: "idle",
          agent: "bench-churn-tab/1",
        });
        return;
      case "welcome":
        this.pingTimer = setInterval(() => {
          if (this.silentSince === undefined && this.ws?.readyState === WebSocket.OPEN)
            this.ws.send(PING_FRAME);
        }, msg.statusIntervalMs / 2);
        this.readyResolve?.();
        this.readyResolve = undefined;
        return;
      case "job.assign": {
        const trace = this.obs.trace(msg.job.id);
        trace.assigns.push({
          at: now,
          attempt: msg.attempt,
          tab: this.index,
          continueFromChars: msg.continueFrom?.length ?? 0,
        });
        if (this.silentSince !== undefined) return;
        this.serve(msg.job, msg.attempt, msg.continueFrom ?? "");
        return;
      }
      case "job.cancel": {
        if (this.silentSince !== undefined) {
          const trace = this.obs.trace(msg.jobId);
          trace.cancelAtSilentTab ??= now;
          return;
        }
        if (this.serving?.job.id !== msg.jobId) return;
        if (this.serving.timer) clearTimeout(this.serving.timer);
        this.serving = undefined;
        this.send({
          type: "job.done",
          jobId: msg.jobId,
          finishReason: "abort",
          usage: { prompt_tokens: 0, completion_tokens: 0, total_tokens: 0 },
        });
        return;
      }
    }
  }

  private serve(job: JobSpec, attempt: number, continueFrom: string): void {
    const input = job.input;
    const content = input.kind === "chat" ? (input.messages.at(-1)?.content ?? "") : input.prompt;
    const ids = parsePrompt(content);
    if (!ids) {
      this.send({
        type: "job.error",
        jobId: job.id,
        error: { code: "bad_request", message: "not a churn-bench prompt" },
      });
      return;
    }
    const plan = planJob({ ...this.opts.plan, seed: ids.seed }, ids.index);
    // Continue after the delivered text: from the token boundary it ends on.
    let start = 0;
    let chars = 0;
    while (
      start < plan.tokens.length &&
      chars + plan.tokens[start]!.length <= continueFrom.length
    ) {
      chars += plan.tokens[start]!.length;
      start++;
    }
    if (chars !== continueFrom.length || !plan.text.startsWith(continueFrom)) {
      this.obs.trace(job.id).badContinue = true;
    }
    const tokens = plan.tokens;
    const perFrame = this.opts.plan.tokensPerFrame;
    const pieces: string[] = [];
    if (chars < continueFrom.length && start < tokens.length) {
      // The delivered text ended inside a token: the rest of that token goes first.
      pieces.push(plan.text.slice(continueFrom.length, chars + tokens[start]!.length));
      start++;
    }
    for (let i = start; i < tokens.length; i += perFrame) {
      pieces.push(tokens.slice(i, i + perFrame).join(""));
    }
    const serving: Serving = { job, timer: undefined };
    this.serving = serving;
    this.send({ type: "job.accept", jobId: job.id });
    let seq = 0;
    const next = () => {
      if (this.serving !== serving) return;
      if (plan.drop && attempt === 1 && seq === plan.dropAfterFrames) {
        this.drop(job.id, plan.drop, seq);
        return;
      }
      if (seq < pieces.length) {
        this.send({ type: "job.delta", jobId: job.id, seq, text: pieces[seq] });
        seq++;
        serving.timer = setTimeout(next, this.opts.frameMs);
        return;
      }
      this.serving = undefined;
      const promptTokens = content.split(" ").length;
      this.send({
        type: "job.done",
        jobId: job.id,
        finishReason: "stop",
        usage: {
          prompt_tokens: promptTokens,
          completion_tokens: plan.tokens.length,
          total_tokens: promptTokens + plan.tokens.length,
        },
      });
    };
    serving.timer = setTimeout(next, this.opts.frameMs);
  }

  private drop(jobId: string, kind: "abrupt" | "silent", deliveredFrames: number): void {
    const at = performance.now();
    this.obs.trace(jobId).drop = { at, kind, tab: this.index, deliveredFrames };
    if (kind === "abrupt") {
      // Destroy the TCP connection: no close frame, as when a laptop lid shuts or Wi-Fi drops.
      this.ws?.terminate();
      return;
    }
    this.serving = undefined;
    this.silentSince = at;
    const ws = this.ws;
    ws?.on("close", () => {
      this.obs.trace(jobId).closedSilentTab ??= performance.now();
    });
    // Bounded: a silent tab nobody closes gives up, so the run always ends.
    setTimeout(() => {
      if (this.ws === ws && !this.stopped) ws?.terminate();
    }, this.opts.silentMaxMs);
  }
}
