import { haversineKm, networkRttMs, type Location } from "../geo/distance.js";

/**
 * Expected time-to-first-token (TTFT) of one request on one contributor tab, the quantity the
 * scheduler minimises. Everything here is an estimate from what the coordinator knows; the speed
 * tracker corrects the inputs from what it later observes.
 */

/**
 * Work already queued on the tab. A tab runs one job at a time (WebLLM serves one request per loaded
 * model), so a new job waits for the ones ahead. Their expected remaining time is stored as the
 * absolute time they are expected to be done, so it stays right as the clock moves without
 * rewriting every tab on every tick.
 */
export interface QueueState {
  jobsAhead: number;
  /** Epoch ms at which the jobs ahead are expected to be finished; ignored when jobsAhead is 0. */
  freeAtMs: number;
}

/** What the scheduler knows about one contributor tab. */
export interface CandidateTab {
  id: string;
  location: Location;
  /** Last-mile delay of the tab not already inside socketRttMs (0 when the socket RTT covers it). */
  accessDelayMs: number;
  /** Measured round trip of the tab's WebSocket to its Region Durable Object. */
  socketRttMs: number;
  queue: QueueState;
  prefillTokensPerSec: number;
  decodeTokensPerSec: number;
  /** Models the tab can serve (fit its GPU and were offered by it). */
  models: readonly string[];
  /** Models resident in GPU memory right now; others pay coldLoadMs first. */
  loadedModels: readonly string[];
  coldLoadMs: number;
  /** Epoch ms of the last heartbeat; tabs silent for too long are not chosen. */
  lastSeenMs: number;
}

export interface MatchRequest {
  clientLocation: Location;
  model: string;
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  /** Skip tabs whose expected TTFT (stream) or total time (non-stream) exceeds this. */
  latencyBudgetMs?: number;
}

export interface ScoreBreakdown {
  networkMs: number;
  queueMs: number;
  prefillMs: number;
  coldLoadMs: number;
  decodeMs: number;
  ttftMs: number;
  totalMs: number;
  /** What the scheduler minimises: ttftMs for streams, totalMs otherwise. */
  objectiveMs: number;
}

/** Builds a QueueState from the jobs ahead and their expected remaining time as of `nowMs`. */
export function queueState(jobsAhead: number, remainingMs: number, nowMs: number): QueueState {
  return { jobsAhead, freeAtMs: nowMs + Math.max(0, remainingMs) };
}

export function queueWaitMs(queue: QueueState, nowMs: number): number {
  return queue.jobsAhead > 0 ? Math.max(0, queue.freeAtMs - nowMs) : 0;
}

/** Network estimate: client↔tab distance model plus access delay plus the tab's socket round trip. */
export function networkEstimateMs(tab: CandidateTab, client: Location): number {
  return networkRttMs(haversineKm(client, tab.location), tab.accessDelayMs) + tab.socketRttMs;
}

/**
 * The scalar the scheduler minimises. Both the index and the linear scan call exactly this
 * function, so they produce bit-identical scores and tie-breaks agree.
 */
export function objectiveMs(tab: CandidateTab, req: MatchRequest, nowMs: number): number {
  let ms =
    networkEstimateMs(tab, req.clientLocation) +
    queueWaitMs(tab.queue, nowMs) +
    (req.promptTokens * 1000) / tab.prefillTokensPerSec;
  if (!tab.loadedModels.includes(req.model)) ms += tab.coldLoadMs;
  if (!req.stream) ms += (req.maxTokens * 1000) / tab.decodeTokensPerSec;
  return ms;
}

/** The same estimate, itemised, for logs, response headers and the speed tracker. */
export function scoreTab(tab: CandidateTab, req: MatchRequest, nowMs: number): ScoreBreakdown {
  const networkMs = networkEstimateMs(tab, req.clientLocation);
  const queueMs = queueWaitMs(tab.queue, nowMs);
  const prefillMs = (req.promptTokens * 1000) / tab.prefillTokensPerSec;
  const coldLoadMs = tab.loadedModels.includes(req.model) ? 0 : tab.coldLoadMs;
  const decodeMs = (req.maxTokens * 1000) / tab.decodeTokensPerSec;
  const ttftMs = networkMs + queueMs + prefillMs + coldLoadMs;
  const totalMs = ttftMs + decodeMs;
  return {
    networkMs,
    queueMs,
    prefillMs,
    coldLoadMs,
    decodeMs,
    ttftMs,
    totalMs,
    objectiveMs: req.stream ? ttftMs : totalMs,
  };
}

/** Whether a tab is a candidate at all: serves the model and has been heard from recently. */
export function isEligible(
  tab: CandidateTab,
  model: string,
  nowMs: number,
  staleAfterMs: number,
): boolean {
  return nowMs - tab.lastSeenMs <= staleAfterMs && tab.models.includes(model);
}

/** Budget filter: a tab is skipped when its estimate cannot meet the client's latency budget. */
export function meetsBudget(objective: number, req: MatchRequest): boolean {
  return req.latencyBudgetMs === undefined || objective <= req.latencyBudgetMs;
}

/** Deterministic order: lower objective first, then the lexicographically smaller tab id. */
export function isBetter(score: number, id: string, bestScore: number, bestId: string): boolean {
  return score < bestScore || (score === bestScore && id < bestId);
}
