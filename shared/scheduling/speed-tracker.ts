import { haversineKm, networkRttMs, type Location } from "../geo/distance.js";
import type { CandidateTab } from "./score.js";

/**
 * Per-tab corrections learned from what the coordinator observes. A tab registers with the speeds
 * of its own benchmark, and the network estimate comes from a distance model; both are wrong by
 * some amount for every tab (thermal throttling, other browser tabs, a slow Wi-Fi link). The tracker
 * keeps, per tab, exponentially weighted averages of
 *  - observed ÷ benchmark prefill speed and decode speed (multiplicative factors, start at 1), and
 *  - observed − modelled network time (an additive bias in ms, starts at 0),
 * and `correct()` applies them to the tab's record before it goes into the candidate index.
 */

/** What the coordinator saw for one finished (or first-token-reached) job on a tab. */
export interface Observation {
  clientLocation: Location;
  /**
   * Where the first token was timed: "client" (default) when ttftMs includes the client's leg,
   * "tab" when it was timed where the tab's socket ends (the Region object: dispatch to first
   * delta), so only the socket round trip is network.
   */
  timedAt?: "client" | "tab";
  promptTokens: number;
  /** Time from dispatch to the first token reaching the client: network + prefill + cold load. */
  ttftMs: number;
  /** Cold-load time the tab spent before this job (0 if the model was resident). */
  coldLoadMs?: number;
  /** Prefill time the tab reported (WebLLM reports it); lets network and prefill be told apart. */
  prefillMs?: number;
  /** Tokens generated and the time from first to last token, measured from the stream. */
  completionTokens?: number;
  decodeMs?: number;
}

export interface TabCorrection {
  prefillFactor: number;
  decodeFactor: number;
  networkBiasMs: number;
  samples: number;
}

export interface SpeedTrackerOptions {
  /** Weight of the newest observation, 0…1. */
  alpha?: number;
  /**
   * Average the first observations plainly (weight 1/n for the n-th) until that weight falls to
   * alpha: a benchmark is off by ±30% and one job by ±8%, so the first job tells more than the
   * benchmark, and an EWMA from the benchmark would take several jobs to get there.
   */
  fastStart?: boolean;
  /**
   * Correct a tab nothing has been learned about yet by the fleet's median factors (those of the
   * last FLEET_TABS tabs timed) instead of taking its benchmark at its word. Benchmarks can be off
   * the same way for every tab (a short kernel against a whole model's prefill): in the real-engine
   * test on SwiftShader the timed tab's factor sat at its 0.05 floor, and a second, never-timed tab
   * of the same machine then won a follow-up turn from the tab holding its history. The median, so
   * a few tabs that lie about their own prefill time do not move it. A median within PRIOR_BAND (3×) of
   * 1 leaves benchmarks as they are: that is each tab's own error, which only timing the tab
   * finds (bench:geo, whose benchmarks are off by a log-normal error per tab, measured slightly
   * worse with every median applied: untimed tabs believed slower were tried later). Default true.
   */
  fleetPrior?: boolean;
}

/** How many recently timed tabs the fleet's median factors are taken from. */
export const FLEET_TABS = 256;
/** How far the fleet's factors move before untimed tabs are corrected again (`priorMoved`). */
const PRIOR_STEP = 0.1;
/** Fleet medians between 1/PRIOR_BAND and PRIOR_BAND are taken as 1 (see `fleetPrior`). */
const PRIOR_BAND = 3;
const UNIT = { prefill: 1, decode: 1 };
const banded = (factor: number) => (factor > 1 / PRIOR_BAND && factor < PRIOR_BAND ? 1 : factor);

const FACTOR_MIN = 0.05;
const FACTOR_MAX = 20;

const clamp = (x: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, x));

export class SpeedTracker {
  private readonly alpha: number;
  private readonly fastStart: boolean;
  private readonly byTab = new Map<string, TabCorrection>();
  private readonly fleetPrior: boolean;
  /** The latest factors of each of the last FLEET_TABS tabs timed, oldest first. */
  private readonly timed = new Map<string, { prefill: number; decode: number }>();
  /** Their medians, recomputed on the first use after an observation. */
  private prior: { prefill: number; decode: number } | null = null;
  /** The factors `priorMoved` last answered for (1 and 1: benchmarks as they are). */
  private announced = UNIT;

  constructor(options: SpeedTrackerOptions = {}) {
    this.alpha = options.alpha ?? 0.3;
    this.fastStart = options.fastStart ?? false;
    this.fleetPrior = options.fleetPrior ?? true;
  }

  correction(tabId: string): TabCorrection {
    return (
      this.byTab.get(tabId) ?? { prefillFactor: 1, decodeFactor: 1, networkBiasMs: 0, samples: 0 }
    );
  }

  forget(tabId: string): void {
    this.byTab.delete(tabId);
  }

  /**
   * The tab as the scheduler should see it: benchmark speeds times the learned factors, and the
   * learned network bias folded into the socket round trip (never below zero).
   */
  correct(tab: CandidateTab): CandidateTab {
    const c = this.byTab.get(tab.id);
    if (!c) {
      const prior = this.fleetFactors();
      if (!prior) return tab;
      return {
        ...tab,
        prefillTokensPerSec: tab.prefillTokensPerSec * prior.prefill,
        decodeTokensPerSec: tab.decodeTokensPerSec * prior.decode,
      };
    }
    return {
      ...tab,
      prefillTokensPerSec: tab.prefillTokensPerSec * c.prefillFactor,
      decodeTokensPerSec: tab.decodeTokensPerSec * c.decodeFactor,
      socketRttMs: Math.max(0, tab.socketRttMs + c.networkBiasMs),
    };
  }

  /** Learns from one observation. `tab` is the tab's uncorrected (benchmark) record. */
  observe(tab: CandidateTab, obs: Observation): TabCorrection {
    const c = { ...this.correction(tab.id) };
    const a = this.fastStart ? Math.max(this.alpha, 1 / (c.samples + 1)) : this.alpha;
    const modelNetMs =
      obs.timedAt === "tab"
        ? tab.socketRttMs
        : networkRttMs(haversineKm(obs.clientLocation, tab.location), tab.accessDelayMs) +
          tab.socketRttMs;
    const serviceMs = obs.ttftMs - (obs.coldLoadMs ?? 0);

    let prefillMs: number;
    let netMs: number;
    if (obs.prefillMs !== undefined) {
      prefillMs = obs.prefillMs;
      netMs = serviceMs - obs.prefillMs;
    } else {
      // Without the tab's own prefill timing, split the surprise between network and prefill in
      // proportion to how much of the prediction each made up: over many prompts of different
      // sizes, the part that scales with prompt length ends up in the prefill factor.
      const predPrefill = (obs.promptTokens * 1000) / (tab.prefillTokensPerSec * c.prefillFactor);
      const predNet = Math.max(0, modelNetMs + c.networkBiasMs);
      const total = predPrefill + predNet;
      const share = total > 0 ? predPrefill / total : 0.5;
      const error = serviceMs - total;
      prefillMs = predPrefill + error * share;
      netMs = predNet + error * (1 - share);
    }
    if (obs.promptTokens > 0 && prefillMs > 0) {
      const observed = (obs.promptTokens * 1000) / prefillMs / tab.prefillTokensPerSec;
      c.prefillFactor = clamp((1 - a) * c.prefillFactor + a * observed, FACTOR_MIN, FACTOR_MAX);
    }
    c.networkBiasMs = (1 - a) * c.networkBiasMs + a * (netMs - modelNetMs);

    const tokens = obs.completionTokens ?? 0;
    if (tokens >= 2 && obs.decodeMs !== undefined && obs.decodeMs > 0) {
      // n tokens arrive over n − 1 inter-token gaps after the first.
      const observed = ((tokens - 1) * 1000) / obs.decodeMs / tab.decodeTokensPerSec;
      c.decodeFactor = clamp((1 - a) * c.decodeFactor + a * observed, FACTOR_MIN, FACTOR_MAX);
    }
    c.samples++;
    this.byTab.set(tab.id, c);
    if (this.fleetPrior) {
      this.timed.delete(tab.id);
      this.timed.set(tab.id, { prefill: c.prefillFactor, decode: c.decodeFactor });
      if (this.timed.size > FLEET_TABS) this.timed.delete(this.timed.keys().next().value!);
      this.prior = null;
    }
    return c;
  }

  /**
   * Whether the fleet's factors moved by more than PRIOR_STEP since the last call that said so:
   * then the records of tabs never timed, corrected by them, are out of date. (A step, not every
   * change: in a steady fleet the medians hardly move, and re-correcting every untimed tab after
   * each job would cost a pass over the fleet per job.)
   */
  priorMoved(): boolean {
    const now = this.fleetFactors() ?? UNIT;
    const was = this.announced;
    const moved =
      Math.abs(now.prefill / was.prefill - 1) > PRIOR_STEP ||
      Math.abs(now.decode / was.decode - 1) > PRIOR_STEP;
    if (moved) this.announced = now;
    return moved;
  }

  /** The fleet's median factors, or null when no tab has been timed (or the prior is off). */
  private fleetFactors(): { prefill: number; decode: number } | null {
    if (!this.fleetPrior || this.timed.size === 0) return null;
    if (!this.prior) {
      const rows = [...this.timed.values()];
      this.prior = {
        prefill: banded(median(rows.map((r) => r.prefill))),
        decode: banded(median(rows.map((r) => r.decode))),
      };
    }
    return this.prior.prefill === 1 && this.prior.decode === 1 ? null : this.prior;
  }
}

function median(xs: number[]): number {
  const sorted = xs.sort((a, b) => a - b);
  const mid = sorted.length >> 1;
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}
