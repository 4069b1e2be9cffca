import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import type { CoordinatorMessage } from "../../shared/protocol/node-messages.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { ProtocolTab, type TabSocket } from "../../test/support/protocol-tab.js";
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
type Assigned = Extract<CoordinatorMessage, { type: "job.assign" }>;

/** Node's `ws` as the simulated tab's socket (sends only while open; terminate drops TCP). */
function nodeSocket(ws: WebSocket): TabSocket {
  return {
    send: (text) => {
      if (ws.readyState === WebSocket.OPEN) ws.send(text);
    },
    close: (code, reason) => ws.close(code, reason),
    terminate: () => ws.terminate(),
    get readyState() {
      return ws.readyState;
    },
  };
}

/**
 * One simulated contributor tab for the churn benchmark: each connection is the shared simulated
 * tab (test/support/protocol-tab.ts, the same one the workerd tests script) over Node's `ws`:
 * challenge → hello (no identity: the coordinator gives it a fresh id) → welcome, a PING_FRAME
 * every half status interval, and for each job.assign: job.accept, delta frames at a fixed token
 * rate (continuing after `continueFrom` on a failover, within what its own count of that text leaves
 * of `answerMaxTokens`), job.done with usage. It speaks the current protocol, as a page does: a job
 * assigned with `queued` waits behind the running one and starts when it ends. When the job's plan
 * says so, the first tab serving it drops mid-stream: abruptly (TCP connection destroyed, no close
 * frame) or silently (socket kept open, nothing sent, pings included). A dropped tab rejoins later
 * as a new tab.
 */
export class SimTab {
  private tab: ProtocolTab | undefined;
  private serving: Serving | undefined;
  /** A job the coordinator queued behind the running one (one at most). */
  private queued: Assigned | undefined;
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
    this.tab?.close(1000, "benchmark over");
    this.tab?.drop();
  }

  private connect(onError?: (e: Error) => void): void {
    if (this.stopped) return;
    this.connections++;
    const ws = new WebSocket(this.opts.wsUrl);
    const tab = new ProtocolTab(nodeSocket(ws), {
      onInvalid: (reason) => {
        throw new Error(`coordinator sent an invalid frame: ${reason}`);
      },
    });
    this.tab = tab;
    this.silentSince = undefined;
    ws.on("message", (data) => tab.receive(data.toString()));
    ws.on("error", (e) => onError?.(e));
    ws.on("close", (code, reason) => {
      tab.socketClosed(code, reason.toString());
      this.onClosed(tab);
    });
    void tab
      .handshake({
        models: [this.opts.model],
        adapter: {
          vendor: "bench",
          architecture: "simulated",
          description: `churn tab ${this.index}`,
        },
        agent: "bench-churn-tab/1",
        protocol: PROTOCOL_VERSION,
      })
      .then((welcome) => {
        if (tab !== this.tab) return;
        tab.startPinging(welcome.statusIntervalMs / 2);
        tab.listen((msg) => this.onMessage(tab, msg));
        this.readyResolve?.();
        this.readyResolve = undefined;
      });
  }

  private onClosed(tab: ProtocolTab): void {
    if (tab !== this.tab) return;
    this.clearTimers();
    this.serving = undefined;
    this.queued = undefined;
    if (!this.stopped) setTimeout(() => this.connect(), this.opts.rejoinMs);
  }

  private clearTimers(): void {
    this.tab?.stopPinging();
    if (this.serving?.timer) clearTimeout(this.serving.timer);
  }

  private send(msg: unknown): void {
    this.tab?.send(msg);
  }

  private onMessage(tab: ProtocolTab, msg: CoordinatorMessage): void {
    if (tab !== this.tab) return;
    const now = performance.now();
    switch (msg.type) {
      case "job.assign": {
        const trace = this.obs.trace(msg.job.id);
        trace.assigns.push({
          at: now,
          attempt: msg.attempt,
          tab: this.index,
          continueFromChars: msg.continueFrom?.length ?? 0,
        });
        if (this.silentSince !== undefined) return;
        if (msg.queued && this.serving) this.queued = msg;
        else this.serve(msg);
        return;
      }
      case "job.cancel": {
        if (this.silentSince !== undefined) {
          const trace = this.obs.trace(msg.jobId);
          trace.cancelAtSilentTab ??= now;
          return;
        }
        if (this.queued?.job.id === msg.jobId) this.queued = undefined;
        if (this.serving?.job.id !== msg.jobId) return;
        if (this.serving.timer) clearTimeout(this.serving.timer);
        this.serving = undefined;
        tab.done({ id: msg.jobId }, "abort", { prompt_tokens: 0, completion_tokens: 0 });
        this.startQueued();
        return;
      }
    }
  }

  private startQueued(): void {
    const next = this.queued;
    this.queued = undefined;
    if (next) this.serve(next);
  }

  private serve({ job, attempt, continueFrom = "", answerMaxTokens }: Assigned): void {
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
    // Its own count of the delivered text (the tokens wholly in it) sets what is left of the
    // answer's budget; an older coordinator's max_tokens is what is left already.
    const counted = start;
    const budget =
      continueFrom && answerMaxTokens !== undefined
        ? answerMaxTokens - counted
        : job.sampling.max_tokens;
    const tokens = plan.tokens.slice(0, counted + Math.max(0, budget));
    const length = tokens.length < plan.tokens.length;
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
    const tab = this.tab;
    if (!tab) return;
    const serving: Serving = { job, timer: undefined };
    this.serving = serving;
    tab.accept(job);
    let seq = 0;
    const next = () => {
      if (this.serving !== serving) return;
      if (plan.drop && attempt === 1 && seq === plan.dropAfterFrames) {
        this.drop(job.id, plan.drop, seq);
        return;
      }
      if (seq < pieces.length) {
        tab.delta(job, seq, pieces[seq]!);
        seq++;
        serving.timer = setTimeout(next, this.opts.frameMs);
        return;
      }
      this.serving = undefined;
      tab.done(
        job,
        length ? "length" : "stop",
        { prompt_tokens: content.split(" ").length, completion_tokens: tokens.length - counted },
        continueFrom ? counted : undefined,
      );
      this.startQueued();
    };
    serving.timer = setTimeout(next, this.opts.frameMs);
  }

  private drop(jobId: string, kind: "abrupt" | "silent", deliveredFrames: number): void {
    const at = performance.now();
    this.obs.trace(jobId).drop = { at, kind, tab: this.index, deliveredFrames };
    const tab = this.tab;
    if (kind === "abrupt") {
      // Destroy the TCP connection: no close frame, as when a laptop lid shuts or Wi-Fi drops.
      tab?.drop();
      return;
    }
    this.serving = undefined;
    this.silentSince = at;
    tab?.goSilent();
    void tab?.closed.then(() => {
      this.obs.trace(jobId).closedSilentTab ??= performance.now();
    });
    // Bounded: a silent tab nobody closes gives up, so the run always ends.
    setTimeout(() => {
      if (this.tab === tab && !this.stopped) tab?.drop();
    }, this.opts.silentMaxMs);
  }
}
