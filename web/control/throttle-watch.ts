/**
 * Thermal or power throttling shows as a sustained drop of decode speed against the tab's own
 * baseline for the same model. The baseline is the median of the first jobs; a drop counts when the
 * smoothed speed stays below `dropRatio` × baseline for `sustain` jobs in a row (one slow job, e.g.
 * a long prompt, is not throttling).
 */
export interface ThrottleVerdict {
  throttled: boolean;
  /** Smoothed speed / baseline, when a baseline exists. */
  ratio: number | null;
  baseline: number | null;
}

export interface ThrottleWatchOptions {
  baselineJobs?: number;
  dropRatio?: number;
  sustain?: number;
  /** Jobs with fewer generated tokens say little about decode speed. */
  minTokens?: number;
}

export class ThrottleWatch {
  private readonly samples = new Map<string, number[]>();
  private readonly smoothed = new Map<string, number>();
  private readonly below = new Map<string, number>();
  private readonly opts: Required<ThrottleWatchOptions>;

  constructor(opts: ThrottleWatchOptions = {}) {
    this.opts = { baselineJobs: 3, dropRatio: 0.7, sustain: 3, minTokens: 8, ...opts };
  }

  baseline(model: string): number | null {
    const s = this.samples.get(model) ?? [];
    if (s.length < this.opts.baselineJobs) return null;
    const sorted = [...s].sort((a, b) => a - b);
    return sorted[Math.floor(sorted.length / 2)]!;
  }

  record(model: string, tokensPerSecond: number, tokens: number): ThrottleVerdict {
    if (!(tokensPerSecond > 0) || tokens < this.opts.minTokens) return this.verdict(model);
    const samples = this.samples.get(model) ?? [];
    if (samples.length < this.opts.baselineJobs) {
      samples.push(tokensPerSecond);
      this.samples.set(model, samples);
      return this.verdict(model);
    }
    const prev = this.smoothed.get(model) ?? tokensPerSecond;
    const ewma = prev + 0.5 * (tokensPerSecond - prev);
    this.smoothed.set(model, ewma);
    const base = this.baseline(model)!;
    const n = ewma < this.opts.dropRatio * base ? (this.below.get(model) ?? 0) + 1 : 0;
    this.below.set(model, n);
    return this.verdict(model);
  }

  /** After backing off, start counting afresh (the baseline stays). */
  reset(model: string): void {
    this.smoothed.delete(model);
    this.below.delete(model);
  }

  private verdict(model: string): ThrottleVerdict {
    const baseline = this.baseline(model);
    const s = this.smoothed.get(model);
    return {
      throttled: (this.below.get(model) ?? 0) >= this.opts.sustain,
      ratio: baseline && s !== undefined ? s / baseline : null,
      baseline,
    };
  }
}
