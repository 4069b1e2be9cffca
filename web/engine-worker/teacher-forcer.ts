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
 */
export class TeacherForcer implements LogitProcessor {
  private forced: number[] | null = null;
  private stopIds: number[] = [];
  private pos = 0;
  private logprobs: number[] = [];
  private stopLogprob: number | null = null;
  private diverged = false;
  private bias: Array<[number, number]> = [];

  arm(tokenIds: number[], stopIds: number[], logitBias?: Record<string, number>): void {
    this.forced = tokenIds;
    this.stopIds = stopIds;
    this.bias = Object.entries(logitBias ?? {}).map(([id, b]) => [Number(id), b]);
    this.pos = 0;
    this.logprobs = [];
    this.stopLogprob = null;
    this.diverged = false;
  }

  /** Stop forcing and hand back what was recorded. */
  disarm(): { tokenLogprobs: number[]; stopLogprob: number | null; diverged: boolean } {
    const out = {
      tokenLogprobs: this.logprobs,
      stopLogprob: this.stopLogprob,
      diverged: this.diverged,
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
    this.pos++;
  };

  resetState = (): void => {
    this.pos = 0;
  };
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
