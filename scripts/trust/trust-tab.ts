import { performance } from "node:perf_hooks";
import WebSocket from "ws";
import type { JobSpec } from "../../shared/protocol/job.js";
import type {
  AuditAssign,
  CoordinatorMessage,
  CreditBalance,
  HelloGpu,
  TrustNotice,
} from "../../shared/protocol/node-messages.js";
import { logprobsFrames } from "../../shared/protocol/logprobs.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import {
  ProtocolTab,
  SCRIPTED_ADAPTER,
  identityProof,
  newKeyPair,
  type TabSocket,
} from "../../test/support/protocol-tab.js";
import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import { CANARY_PROMPTS } from "../../shared/trust/canary-prompts.js";
import {
  SCORE_LOGPROBS,
  claimTokens,
  scoreClaim,
  type ScoreNoise,
} from "../../test/support/deterministic-engine.js";
import { answerOf, logprobEntries, reportedTokens, tokensOf, type Kind } from "./tab-lies.js";

export { MALICIOUS_KINDS, RIGHT_TEXT_KINDS, type Kind } from "./tab-lies.js";

/**
 * One contributor tab of the trust benchmark, over Node's `ws` and the real protocol (the shared
 * ProtocolTab): a signed identity (so the coordinator's trust and reputation are per identity),
 * a GPU class it claims in `hello`, and a behaviour. Honest tabs answer like the deterministic
 * test engine (its answer is the reference the clients check) at their class's decode speed and
 * re-score audits with its scoring function plus their class's noise. Malicious tabs answer as
 * their kind says (tab-lies.ts); as verifiers the answer-changing ones pass everything (they let
 * liars through), while the speed, count and logprob liars — tabs that run the right model and
 * lie about one figure — re-score honestly, so what they are caught on is their own lie. A framer
 * is the opposite: it answers its own jobs honestly (so its checks pass and its word binds) and,
 * as a verifier, scores every token of the answer it audits as implausible — an honest tab framed.
 * Each tab records what the coordinator told it: its credit (`job.credit`, `credit.balance`) and
 * its trust (`trust`), which the report reads.
 */

/** Kinds that re-score audits as the model does (with their class's noise). */
const HONEST_VERIFIERS: ReadonlySet<Kind> = new Set<Kind>([
  "honest",
  "speed-lie",
  "count-inflate",
  "logprob-lie",
]);

export interface GpuClassSpec {
  name: "high" | "mid" | "integrated";
  noise: Omit<ScoreNoise, "seed">;
  /** Decode speed on the simulated clock, tokens per second. */
  tps: number;
  /** A plausible benchmark for the class (what an honest tab of it measures). */
  bandwidthGBs: number;
}

/** The three honest classes (the same noise and speeds as the in-process simulation). */
export const CLASSES: GpuClassSpec[] = [
  { name: "high", noise: { sd: 0.2, flipRate: 0.01 }, tps: 40, bandwidthGBs: 700 },
  { name: "mid", noise: { sd: 0.4, flipRate: 0.03 }, tps: 25, bandwidthGBs: 350 },
  { name: "integrated", noise: { sd: 0.6, flipRate: 0.05 }, tps: 12, bandwidthGBs: 80 },
];

export interface TrustTabOptions {
  wsUrl: string;
  model: string;
  /** Real seconds per simulated second (< 1: the tab works faster than the GPU it stands for). */
  timeScale: number;
  /** Real milliseconds between delta frames (a real tab coalesces tokens into ~100 ms frames). */
  frameMs: number;
}

/** What a tab saw, for the report. */
export interface TabRecordOut {
  index: number;
  kind: Kind;
  cls: string;
  /**
   * Jobs it finished (client jobs and canaries alike: it cannot tell them apart): its text's true
   * token count, the count it reported, when, and whether the job asked for logprobs.
   */
  finished: Map<
    string,
    { tokens: number; reported: number; at: number; canary: boolean; logprobs: boolean }
  >;
  /** Credit the coordinator said each job earned it (`job.credit`). */
  credits: Map<string, number>;
  /** The last `credit.balance` (the ledger's account: earned net of takenBack, withheld). */
  balance: CreditBalance | null;
  /** The last `trust` notice (its audits passed / failed, faults). */
  trust: TrustNotice | null;
  /** Audits it scored: when, and the tokens it re-scored. */
  audits: Array<{ at: number; tokens: number }>;
  /** When (performance.now()) it was told it is quarantined, if ever. */
  quarantinedAt: number | null;
  reason: string | null;
  /** When it first got a job (performance.now()), if ever. */
  firstJobAt: number | null;
}

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

const CANARY_SET = new Set<string>(CANARY_PROMPTS);

export class TrustTab {
  readonly out: TabRecordOut;
  private tab: ProtocolTab | undefined;
  private readonly rng: Rng;
  private readonly noise: ScoreNoise;
  /** One thing at a time, like a real engine: a job or an audit. */
  private busy: { id: string; timer: ReturnType<typeof setTimeout> | undefined } | null = null;
  /** A job the coordinator queued behind the running one (it starts when that one ends). */
  private queued: JobSpec | null = null;
  private stopped = false;

  constructor(
    readonly index: number,
    readonly kind: Kind,
    readonly cls: GpuClassSpec,
    private readonly opts: TrustTabOptions,
    seed: number,
  ) {
    this.rng = createRng((seed * 7919 + index) >>> 0);
    this.noise = { ...cls.noise, seed: index + 1 };
    this.out = {
      index,
      kind,
      cls: cls.name,
      finished: new Map(),
      audits: [],
      quarantinedAt: null,
      reason: null,
      firstJobAt: null,
      credits: new Map(),
      balance: null,
      trust: null,
    };
  }

  /** Decode speed on the simulated clock: a speed liar claims a top GPU but decodes slowly. */
  private get tps(): number {
    return this.kind === "speed-lie" ? 5 : this.cls.tps;
  }

  private gpu(): HelloGpu {
    if (this.kind === "honest" || this.kind === "framer") {
      return {
        class: this.cls.name,
        profile: null,
        benchmark: { matmulGflops: 1000, bandwidthGBs: this.cls.bandwidthGBs, durationMs: 300 },
      };
    }
    // Every liar claims the best GPU there is; the speed liar an absurd one.
    const bandwidthGBs = this.kind === "speed-lie" ? 1e12 : 1000;
    return {
      class: "high",
      profile: null,
      benchmark: { matmulGflops: 40_000, bandwidthGBs, durationMs: 300 },
    };
  }

  async start(): Promise<void> {
    const keys = await newKeyPair();
    const ws = new WebSocket(this.opts.wsUrl);
    const tab = new ProtocolTab(nodeSocket(ws));
    this.tab = tab;
    ws.on("message", (data) => tab.receive(data.toString()));
    ws.on("close", (code, reason) => tab.socketClosed(code, reason.toString()));
    await new Promise<void>((resolve, reject) => {
      ws.once("open", () => resolve());
      ws.once("error", reject);
    });
    const challenge = await tab.next("challenge");
    tab.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      ...(await identityProof(keys, challenge.nonce)),
      adapter: {
        ...SCRIPTED_ADAPTER,
        vendor: "bench",
        architecture: this.cls.name,
        description: `trust tab ${this.index}`,
      },
      models: [this.opts.model],
      state: "idle",
      agent: "bench-trust-tab/1",
      gpu: this.gpu(),
    });
    const welcome = await tab.next("welcome");
    tab.nodeId = welcome.nodeId;
    tab.startPinging(welcome.statusIntervalMs / 2);
    tab.listen((msg) => this.onMessage(tab, msg));
  }

  stop(): void {
    this.stopped = true;
    if (this.busy?.timer) clearTimeout(this.busy.timer);
    this.tab?.stopPinging();
    this.tab?.close(1000, "benchmark over");
  }

  private onMessage(tab: ProtocolTab, msg: CoordinatorMessage): void {
    if (this.stopped) return;
    switch (msg.type) {
      case "job.assign":
        this.out.firstJobAt ??= performance.now();
        // A job queued behind the running one (protocol 5) starts when that one ends, as the
        // product's tab does (web/runtime/job-runner.ts); serving it at once abandoned the
        // running job, and the coordinator takes no frame of a queued job before it runs.
        if (this.busy) this.queued = msg.job;
        else this.serve(tab, msg.job);
        return;
      case "job.cancel":
        if (this.queued?.id === msg.jobId) {
          this.queued = null;
          return;
        }
        if (this.busy?.id !== msg.jobId) return;
        if (this.busy.timer) clearTimeout(this.busy.timer);
        this.busy = null;
        tab.done({ id: msg.jobId }, "abort", { prompt_tokens: 0, completion_tokens: 0 });
        this.startQueued(tab);
        return;
      case "audit.assign":
        this.audit(tab, msg);
        return;
      case "job.credit":
        this.out.credits.set(msg.jobId, (this.out.credits.get(msg.jobId) ?? 0) + msg.credit);
        return;
      case "credit.balance":
        this.out.balance = msg;
        return;
      case "trust":
        this.out.trust = msg;
        if (msg.state === "quarantined" && this.out.quarantinedAt === null) {
          this.out.quarantinedAt = performance.now();
          this.out.reason = msg.reason ?? null;
        }
        return;
      default:
        return;
    }
  }

  /** The job queued behind the running one, if any, starts now. */
  private startQueued(tab: ProtocolTab): void {
    const next = this.queued;
    this.queued = null;
    if (next && !this.stopped) this.serve(tab, next);
  }

  /** Stream the answer at this tab's decode speed, in ~frameMs frames, then job.done. */
  private serve(tab: ProtocolTab, job: JobSpec): void {
    const text = answerOf(this.kind, job, this.rng);
    const words = tokensOf(text);
    const tokens = words.length;
    const reported = reportedTokens(this.kind, text);
    const asked = job.sampling.logprobs;
    // Spam and refusals cost the liar nothing: it answers at once.
    const cheap = this.kind === "spam" || this.kind === "refusal";
    const realTps = cheap ? 1e4 : this.tps / this.opts.timeScale;
    const perFrame = Math.max(1, Math.round((realTps * this.opts.frameMs) / 1000));
    const frameMs = (perFrame / realTps) * 1000;
    const busy = { id: job.id, timer: undefined as ReturnType<typeof setTimeout> | undefined };
    this.busy = busy;
    tab.accept(job);
    let seq = 0;
    let at = 0;
    const next = () => {
      if (this.busy !== busy) return;
      if (at < words.length) {
        const piece = words.slice(at, at + perFrame);
        tab.delta(job, seq++, piece.join(""));
        // As the product's tab: each piece's entries right after its text (job.logprobs).
        if (asked)
          for (const f of logprobsFrames(job.id, logprobEntries(this.kind, piece, asked.top)))
            tab.send(f);
        at += perFrame;
        busy.timer = setTimeout(next, frameMs);
        return;
      }
      this.busy = null;
      // The bench (not the tab: it cannot tell) knows the canary prompts.
      const last = job.input.kind === "chat" ? job.input.messages.at(-1)?.content : undefined;
      const canary = last !== undefined && CANARY_SET.has(last);
      this.out.finished.set(job.id, {
        tokens,
        reported,
        at: performance.now(),
        canary,
        logprobs: !!asked,
      });
      tab.send({
        type: "job.done",
        jobId: job.id,
        finishReason: "stop",
        usage: { prompt_tokens: 8, completion_tokens: reported, total_tokens: reported + 8 },
        // The speed liar also lies about what it measured.
        decodeTokensPerSecond: this.kind === "speed-lie" ? 400 : this.tps,
      });
      this.startQueued(tab);
    };
    busy.timer = setTimeout(next, frameMs);
  }

  /** Re-score a claimed answer at decode speed (teacher forcing costs one step per token). */
  private audit(tab: ProtocolTab, msg: AuditAssign): void {
    const honestVerifier = HONEST_VERIFIERS.has(this.kind);
    const scored = claimTokens(msg.answer, msg.sampling).slice(0, msg.maxTokens);
    const result = honestVerifier
      ? scoreClaim(msg, this.noise)
      : this.kind === "framer"
        ? // Every token as unlikely as another model's, and the stop too.
          {
            tokenLogprobs: scored.map(() => SCORE_LOGPROBS.foreign),
            stopLogprob: msg.scoreStop ? SCORE_LOGPROBS.foreign : null,
          }
        : {
            tokenLogprobs: scored.map(() => SCORE_LOGPROBS.own),
            stopLogprob: msg.scoreStop ? -0.1 : null,
          };
    this.out.audits.push({ at: performance.now(), tokens: result.tokenLogprobs.length });
    const ms = ((result.tokenLogprobs.length / this.tps) * 1000 * this.opts.timeScale) | 0;
    const busy = { id: msg.auditId, timer: undefined as ReturnType<typeof setTimeout> | undefined };
    this.busy = busy;
    busy.timer = setTimeout(() => {
      if (this.busy === busy) this.busy = null;
      tab.send({ type: "audit.result", auditId: msg.auditId, ...result });
      if (!this.busy) this.startQueued(tab);
    }, ms);
  }
}
