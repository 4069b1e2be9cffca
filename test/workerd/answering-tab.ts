import { CoordinatorMessageSchema, parseFrame } from "../../shared/protocol/node-messages.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";
import {
  claimTokens,
  expectedOutput,
  scoreClaim,
  tokenLogprob,
  type ScoreNoise,
} from "../support/deterministic-engine.js";
import type { ScriptedTab } from "./scripted-tab.js";

/** What a scripted tab answers to a job. */
export type Answerer = (job: JobSpec) => string;
/** The deterministic engine's answer (what an honest tab of the test model writes). */
export const honest: Answerer = (job) => expectedOutput(job.input, job.sampling).text;
export const spam: Answerer = () => "Buy cheap watches at our store today, best prices guaranteed";

/** How a tab reports the completion tokens of the text it wrote. */
export type Claim = (text: string) => number;
/** One token per word: the deterministic engine's tokens. */
export const wordCount: Claim = (text) => text.split(" ").length;

/** Honest re-scoring with the noise of real GPUs: a flipped token now and then (2%). */
export const GPU_NOISE: ScoreNoise = { sd: 0.3, flipRate: 0.02, seed: 5 };

export interface ServeOptions {
  /** The noise of its re-scores (GPU_NOISE unless a test needs verdicts that cannot vary). */
  noise?: ScoreNoise;
  /** The completion tokens it reports for a text (`wordCount` unless a test lies about counts). */
  claim?: Claim;
  /**
   * The count of an audited answer it sends: its own (`"real"`), none (`"none"`, a page from
   * before counts), or always this number.
   */
  counts?: "real" | "none" | number;
  /**
   * Frame: score every audited token, and the stop, implausible (−20) whatever the answer — a
   * verifier lying about others' answers while it answers its own jobs as told.
   */
  frames?: boolean;
  /**
   * The logprobs it sends for a job that asks for them: the deterministic engine's own
   * (`"honest"`, the default), or made up (`"made-up"`: every token at −4 behind an alternative at
   * −0.5 — a coherent distribution, but not the model's, which gives its own tokens −0.05), or
   * renamed (`"renamed"`: the model's values, its second-likeliest token named " BUY NOW" — a
   * stranger's text in the client's `top_logprobs`).
   */
  logprobs?: "honest" | "made-up" | "renamed";
}

/**
 * Answer every job and audit `t` receives from now on: jobs with `answer`, audits re-scored as the
 * deterministic engine would (so an honest verifier judges the answer it audits), with the
 * everyday noise of a real GPU unless a test needs verdicts that cannot vary (`noise`). Returns
 * what it served, counted as it goes (canaries: greedy 24-token jobs, as canaries.ts sends them).
 */
export function serveForever(
  t: ScriptedTab,
  answer: Answerer,
  noiseOrOptions: ScoreNoise | ServeOptions = {},
): { jobs: number; canaries: number; audits: number } {
  const o: ServeOptions = "sd" in noiseOrOptions ? { noise: noiseOrOptions } : noiseOrOptions;
  const { noise = GPU_NOISE, claim = wordCount, counts = "real", frames = false } = o;
  const entries = (job: JobSpec, text: string): TokenLogprob[] => {
    const top = job.sampling.logprobs?.top ?? 0;
    return claimTokens(text, job.sampling).map((token) => {
      if (o.logprobs === "made-up")
        return {
          token,
          logprob: -4,
          top: [
            { token: " perhaps", logprob: -0.5 },
            { token, logprob: -4 },
          ].slice(0, top),
        };
      const own = tokenLogprob(token, top);
      if (o.logprobs !== "renamed") return own;
      return { ...own, top: own.top.map((t, i) => (i === 1 ? { ...t, token: " BUY NOW" } : t)) };
    });
  };
  const served = { jobs: 0, canaries: 0, audits: 0 };
  t.ws.addEventListener("message", (e) => {
    const parsed = parseFrame(CoordinatorMessageSchema, e.data as string);
    if (!parsed.ok) return;
    const msg = parsed.msg;
    if (msg.type === "job.assign") {
      const text = answer(msg.job);
      const n = claim(text);
      served.jobs++;
      if (msg.job.sampling.temperature === 0 && msg.job.sampling.max_tokens === 24)
        served.canaries++;
      t.send({ type: "job.accept", jobId: msg.job.id });
      t.send({ type: "job.delta", jobId: msg.job.id, seq: 0, text });
      if (msg.job.sampling.logprobs && text)
        t.send({ type: "job.logprobs", jobId: msg.job.id, entries: entries(msg.job, text) });
      t.send({
        type: "job.done",
        jobId: msg.job.id,
        finishReason: "stop",
        usage: { prompt_tokens: 1, completion_tokens: n, total_tokens: n + 1 },
      });
    } else if (msg.type === "audit.assign") {
      served.audits++;
      const { answerTokens, ...honestScores } = scoreClaim(msg, noise);
      const scores = frames
        ? {
            tokenLogprobs: honestScores.tokenLogprobs.map(() => -20),
            stopLogprob: honestScores.stopLogprob === null ? null : -20,
          }
        : honestScores;
      t.send({
        type: "audit.result",
        auditId: msg.auditId,
        ...scores,
        ...(counts === "none" ? {} : { answerTokens: counts === "real" ? answerTokens : counts }),
      });
    }
  });
  return served;
}
