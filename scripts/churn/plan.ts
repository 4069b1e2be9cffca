import { createRng } from "../../shared/scheduling/prng.js";

/**
 * What every simulated tab and every client of bench:churn agree on without talking: the text a
 * job's answer must be (a pure function of seed and job index, so a replacement tab produces the
 * same continuation and the client can check every character), and whether the first tab serving
 * the job drops mid-stream, how, and after which frame.
 */
export type DropKind = "abrupt" | "silent";

export interface JobPlan {
  index: number;
  /** The answer, one entry per token; the text is their concatenation. */
  tokens: string[];
  text: string;
  drop: DropKind | null;
  /** The first tab drops right after sending this many delta frames (1 ≤ n < frames). */
  dropAfterFrames: number;
}

export interface PlanParams {
  seed: number;
  tokensPerJob: number;
  tokensPerFrame: number;
  /** Share of jobs whose first tab drops, 0..1. */
  dropRate: number;
}

const WORDS = (
  "the a tab grid token stream answer model region lease job tab sends frame text each " +
  "replacement continues after delivered characters nothing lost once whole client reads"
).split(" ");

/** The user message of job `index`; the tab reads seed and index back from it. */
export function jobPrompt(seed: number, index: number): string {
  return `churn-bench seed=${seed} job=${index}: write the deterministic answer`;
}

export function parsePrompt(content: string): { seed: number; index: number } | null {
  const m = /^churn-bench seed=(\d+) job=(\d+):/.exec(content);
  return m ? { seed: Number(m[1]), index: Number(m[2]) } : null;
}

/** Mix seed, job index and a stream tag into one 32-bit generator seed. */
function mix(seed: number, index: number, stream: number): number {
  let h = (seed ^ Math.imul(index + 1, 0x9e3779b1) ^ Math.imul(stream, 0x85ebca77)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x7feb352d) >>> 0;
  return (h ^ (h >>> 15)) >>> 0;
}

export function planJob(p: PlanParams, index: number): JobPlan {
  const words = createRng(mix(p.seed, index, 1));
  const tokens = [`[${index}]`];
  while (tokens.length < p.tokensPerJob) tokens.push(" " + words.pick(WORDS));
  const frames = Math.ceil(p.tokensPerJob / p.tokensPerFrame);
  const fate = createRng(mix(p.seed, index, 2));
  const dropped = fate.next() < p.dropRate && frames >= 2;
  const kind: DropKind = fate.next() < 0.5 ? "abrupt" : "silent";
  return {
    index,
    tokens,
    text: tokens.join(""),
    drop: dropped ? kind : null,
    dropAfterFrames: dropped ? 1 + fate.int(frames - 1) : 0,
  };
}
