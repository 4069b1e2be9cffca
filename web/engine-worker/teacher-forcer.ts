import type { LogitProcessor } from "@mlc-ai/web-llm";

/**
 * Teacher forcing through WebLLM's `LogitProcessor` (registered per model id with
 * `logitProcessorRegistry` when the engine is created; WebLLM calls `processLogits` on the CPU
 * before every sampling step, `processSampledToken` after it, `resetState` from `resetChat`).
 * Idle, it hands the logits back untouched. Armed with the claimed token ids, each step records
 * log-softmax of the claimed token and masks every other token to -Infinity, so whatever the
 * sampler does the claimed token is the one committed and the next step is conditioned on the
 * claimed prefix. After the last claimed token it can record the log-probability of ending there
 * (log-sum-exp over the model's stop token ids) and force the first stop id, which ends the request.
 *
 * Armed with the job's `logit_bias`, it records each log-probability under the biased logits: the
 * distribution the serving tab sampled from. WebLLM adds `logit_bias` after this processor runs
 * (0.2.86: processLogits on the CPU, then the bias on the GPU, then penalties), so the serving
 * tab's processor (idle) never saw it and this one must add it itself; unbiased, a token the
 * client forced with +100 reads as implausible and an honest tab as a liar.
 *
 * Armed with `report` (an audit of a job that asked for logprobs), it also records each claimed
 * token's entry as WebLLM reports it to a client: WebLLM's `sampleFromRawLogits` (0.2.79–0.2.86)
 * takes logprobs from `softmax(logits / temperature)` after the grammar mask, this processor, the
 * bias, and the penalties of every token already in the answer (MLC's `apply_penalty_inplace`:
 * `l -= presence + count × frequency`, then `l × repetition` if negative, `l / repetition` if not).
 * The plain value (above) stays what plausibility is judged by; the reported one is compared with
 * the serving tab's claimed logprobs (shared/trust/logprob-agreement.ts).
 */
/** The sampling settings WebLLM reported the serving tab's logprobs under, and how many values. */
export interface ReportSettings {
  temperature: number;
  presencePenalty: number;
  frequencyPenalty: number;
  repetitionPenalty: number;
  /** The likeliest values to record per step (webllm-fields.ts `reportSettings`). */
  top: number;
}

/** A forced token's log-probability and its distribution's likeliest values, as WebLLM reports them. */
export interface ReportedStep {
  logprob: number;
  top: number[];
  /** The token ids of `top`, in its order (their texts go with the values: logprob-agreement.ts). */
  topIds: number[];
}

export class TeacherForcer implements LogitProcessor {
  private forced: number[] | null = null;
  private stopIds: number[] = [];
  private pos = 0;
  private logprobs: number[] = [];
  private stopLogprob: number | null = null;
  private diverged = false;
  private bias: Array<[number, number]> = [];
  private report: ReportSettings | null = null;
  private reported: ReportedStep[] = [];
  /** How often each token was forced so far (WebLLM's `appearedTokensFreq`). */
  private appeared = new Map<number, number>();

  arm(
    tokenIds: number[],
    stopIds: number[],
    logitBias?: Record<string, number>,
    report?: ReportSettings,
  ): void {
    this.forced = tokenIds;
    this.report = report ?? null;
    this.reported = [];
    this.appeared = new Map();
    this.stopIds = stopIds;
    this.bias = Object.entries(logitBias ?? {}).map(([id, b]) => [Number(id), b]);
    this.pos = 0;
    this.logprobs = [];
    this.stopLogprob = null;
    this.diverged = false;
  }

  /** Stop forcing and hand back what was recorded. */
  disarm(): {
    tokenLogprobs: number[];
    stopLogprob: number | null;
    diverged: boolean;
    reported: ReportedStep[] | null;
  } {
    const out = {
      tokenLogprobs: this.logprobs,
      stopLogprob: this.stopLogprob,
      diverged: this.diverged,
      reported: this.report ? this.reported : null,
    };
    this.forced = null;
    return out;
  }

  processLogits = (logits: Float32Array): Float32Array => {
    const forced = this.forced;
    if (!forced || (this.pos >= forced.length && !this.stopIds.length)) return logits;
    // Every token but the target is masked below, so biasing in place changes nothing after.
    for (const [id, b] of this.bias) if (id < logits.length) logits[id] = logits[id]! + b;
    let target: number;
    if (this.pos < forced.length) {
      target = forced[this.pos]!;
      this.logprobs.push(logits[target]! - logSumExp(logits));
      if (this.report) this.reported.push(reportedStep(logits, target, this.appeared, this.report));
    } else {
      const lse = logSumExp(logits);
      let stop = -Infinity;
      for (const id of this.stopIds) stop = logAddExp(stop, logits[id]! - lse);
      this.stopLogprob = stop;
      target = this.stopIds[0]!;
    }
    const keep = logits[target]!;
    logits.fill(-Infinity);
    // A finite value however low the model rated it, so every sampler picks exactly this token.
    logits[target] = Number.isFinite(keep) ? keep : 0;
    return logits;
  };

  processSampledToken = (token: number): void => {
    if (!this.forced) return;
    const expected = this.pos < this.forced.length ? this.forced[this.pos] : this.stopIds[0];
    if (token !== expected) this.diverged = true;
    if (this.pos < this.forced.length)
      this.appeared.set(token, (this.appeared.get(token) ?? 0) + 1);
    this.pos++;
  };

  resetState = (): void => {
    this.pos = 0;
  };
}

/**
 * The forced token's entry under the penalties and temperature, without copying the vocabulary:
 * a penalised token's logit is recomputed as it is read. One pass finds the maximum and the top
 * values, a second sums the exponentials.
 */
function reportedStep(
  logits: Float32Array,
  target: number,
  appeared: ReadonlyMap<number, number>,
  r: ReportSettings,
): ReportedStep {
  // WebLLM's own floor: a temperature of 0 would divide by zero.
  const t = Math.max(1e-6, r.temperature);
  const penalised = new Map<number, number>();
  const penalise = r.presencePenalty !== 0 || r.frequencyPenalty !== 0 || r.repetitionPenalty !== 1;
  if (penalise) {
    for (const [id, count] of appeared) {
      if (id >= logits.length) continue;
      const l = logits[id]! - (r.presencePenalty + count * r.frequencyPenalty);
      penalised.set(id, l < 0 ? l * r.repetitionPenalty : l / r.repetitionPenalty);
    }
  }
  const at = (i: number) => (penalised.get(i) ?? logits[i]!) / t;
  const top: number[] = [];
  const topIds: number[] = [];
  let max = -Infinity;
  for (let i = 0; i < logits.length; i++) {
    const v = at(i);
    if (v > max) max = v;
    // Strictly greater, as WebLLM's getTopProbs: of equal values the lower id ranks first.
    if (top.length < r.top || v > top[top.length - 1]!) {
      let k = Math.min(top.length, r.top - 1);
      top[k] = v;
      topIds[k] = i;
      while (k > 0 && top[k - 1]! < v) {
        top[k] = top[k - 1]!;
        topIds[k] = topIds[k - 1]!;
        top[--k] = v;
        topIds[k] = i;
      }
    }
  }
  let sum = 0;
  for (let i = 0; i < logits.length; i++) sum += Math.exp(at(i) - max);
  const lse = max + Math.log(sum);
  return { logprob: at(target) - lse, top: top.map((v) => v - lse), topIds };
}

function logSumExp(values: Float32Array): number {
  let max = -Infinity;
  for (let i = 0; i < values.length; i++) if (values[i]! > max) max = values[i]!;
  if (!Number.isFinite(max)) return max;
  let sum = 0;
  for (let i = 0; i < values.length; i++) sum += Math.exp(values[i]! - max);
  return max + Math.log(sum);
}

function logAddExp(a: number, b: number): number {
  if (a === -Infinity) return b;
  if (b === -Infinity) return a;
  const m = Math.max(a, b);
  return m + Math.log(Math.exp(a - m) + Math.exp(b - m));
}
