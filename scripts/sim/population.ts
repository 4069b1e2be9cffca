import { haversineKm, networkRttMs, type Location } from "../../shared/geo/distance.js";
import { REGION_CENTRES, REGION_HINTS, nearestRegion } from "../../shared/geo/regions.js";
import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import { sampleAccessDelayMs, sampleGpu } from "./gpus.js";
import type { World } from "./world.js";

/**
 * The simulated world's ground truth: contributor tabs with their real speeds and round trips, and
 * the requests clients send. Schedulers other than the oracle never read the `true*` fields.
 *
 * Network truth follows the relayed path Tabgrid really uses: client → Cloudflare edge → the tab's
 * Region Durable Object → the tab over its WebSocket, and tokens back the same way. So a round trip
 * is RTT(client, tab's region) + client access delay + the tab's socket RTT, where the socket RTT
 * is RTT(tab, its region) + the tab's access delay — every leg from the 48 km/ms distance model.
 */
export interface SimTab {
  id: string;
  location: Location;
  gpu: string;
  /** Index into REGION_HINTS of the region the tab joined (its nearest). */
  region: number;
  trueSocketRttMs: number;
  truePrefill: number;
  trueDecode: number;
  /** What the coordinator sees at registration: a noisy socket RTT and the tab's own benchmark. */
  measuredSocketRttMs: number;
  benchPrefill: number;
  benchDecode: number;
}

export interface SimRequest {
  arrivalMs: number;
  client: Location;
  clientAccessMs: number;
  /** True RTT from this client to each region, indexed like REGION_HINTS. */
  regionRttMs: number[];
  promptTokens: number;
  maxTokens: number;
  /** Tokens actually generated (the answer may stop before max_tokens). */
  completionTokens: number;
  /** This job's speed relative to the tab's true mean (other work on the machine, thermals). */
  speedNoise: number;
  /** A turn of a conversation: which one, which turn (0 first), and the history's tokens. */
  conversation?: { id: number; turn: number; historyTokens: number };
  /** The next turn, which the client sends `thinkMs` after this answer has ended. */
  followUp?: { req: SimRequest; thinkMs: number };
}

/**
 * A multi-turn chat: 5–10 turns from one client; each turn's prompt is the whole history (every
 * earlier prompt and answer) plus a new user message, so the history grows turn by turn. Turn 0
 * arrives at `arrivalMs`; each later one 5–30 s (reading and typing) after the previous answer ends.
 */
export function makeConversation(
  world: World,
  rng: Rng,
  id: number,
  arrivalMs: number,
): SimRequest {
  const client = world.sample(rng);
  const clientAccessMs = sampleAccessDelayMs(rng);
  const regionRttMs = REGION_HINTS.map((h) =>
    networkRttMs(haversineKm(client, REGION_CENTRES[h]), 0),
  );
  const turns = 5 + rng.int(6);
  let history = 0;
  let first: SimRequest | null = null;
  let previous: SimRequest | null = null;
  for (let turn = 0; turn < turns; turn++) {
    const fresh =
      turn === 0
        ? Math.round(Math.exp(rng.range(Math.log(50), Math.log(1000))))
        : Math.round(Math.exp(rng.range(Math.log(20), Math.log(300))));
    const maxTokens = 64 + rng.int(449);
    const req: SimRequest = {
      arrivalMs: turn === 0 ? arrivalMs : NaN,
      client,
      clientAccessMs,
      regionRttMs,
      promptTokens: history + fresh,
      maxTokens,
      completionTokens: Math.max(1, Math.round(maxTokens * rng.range(0.3, 1))),
      speedNoise: Math.max(0.5, 1 + 0.08 * rng.normal()),
      conversation: { id, turn, historyTokens: history },
    };
    history = req.promptTokens + req.completionTokens;
    if (previous) previous.followUp = { req, thinkMs: rng.range(5_000, 30_000) };
    first ??= req;
    previous = req;
  }
  return first!;
}

/** Log-normal factor with the given spread, for "benchmark says X, reality is X × error". */
function lognormal(rng: Rng, sigma: number): number {
  return Math.exp(sigma * rng.normal());
}

export function makeTabs(world: World, rng: Rng, count: number): SimTab[] {
  return Array.from({ length: count }, (_, i) => {
    const location = world.sample(rng);
    const hint = nearestRegion(location);
    const region = REGION_HINTS.indexOf(hint);
    const gpu = sampleGpu(rng);
    const trueSocketRttMs =
      networkRttMs(haversineKm(location, REGION_CENTRES[hint]), 0) + sampleAccessDelayMs(rng);
    // The benchmark runs in a fresh tab on an idle machine; real jobs share the GPU with whatever
    // else the contributor does, so reality is usually slower and sometimes faster.
    const truePrefill = gpu.prefillTokensPerSec * Math.min(1.2, lognormal(rng, 0.3));
    const trueDecode = gpu.decodeTokensPerSec * Math.min(1.2, lognormal(rng, 0.3));
    return {
      id: `tab-${String(i).padStart(6, "0")}`,
      location,
      gpu: gpu.gpu,
      region,
      trueSocketRttMs,
      truePrefill,
      trueDecode,
      measuredSocketRttMs: trueSocketRttMs * Math.max(0.5, 1 + 0.15 * rng.normal()),
      benchPrefill: gpu.prefillTokensPerSec,
      benchDecode: gpu.decodeTokensPerSec,
    };
  });
}

/** A request's size: chat prompts with history (log-uniform 50–3000 tokens), answers up to 64–1024. */
export function makeRequest(world: World, rng: Rng, arrivalMs: number): SimRequest {
  const client = world.sample(rng);
  const clientAccessMs = sampleAccessDelayMs(rng);
  const maxTokens = 64 + rng.int(961);
  return {
    arrivalMs,
    client,
    clientAccessMs,
    regionRttMs: REGION_HINTS.map((h) => networkRttMs(haversineKm(client, REGION_CENTRES[h]), 0)),
    promptTokens: Math.round(Math.exp(rng.range(Math.log(50), Math.log(3000)))),
    maxTokens,
    completionTokens: Math.max(1, Math.round(maxTokens * rng.range(0.3, 1))),
    speedNoise: Math.max(0.5, 1 + 0.08 * rng.normal()),
  };
}

/** True network round trip of `req` served by `tab`. */
export function trueNetworkMs(req: SimRequest, tab: SimTab): number {
  return req.regionRttMs[tab.region]! + req.clientAccessMs + tab.trueSocketRttMs;
}

/**
 * Mean GPU-busy time of a request on `tab` (prefill + decode), estimated from a sample of requests:
 * the fleet's capacity is the sum of 1 / this, and load levels are fractions of that capacity.
 */
export function fleetCapacityPerMs(tabs: readonly SimTab[], sample: readonly SimRequest[]): number {
  const meanPrompt = sample.reduce((s, r) => s + r.promptTokens, 0) / sample.length;
  const meanOut = sample.reduce((s, r) => s + r.completionTokens, 0) / sample.length;
  return tabs.reduce(
    (sum, t) => sum + 1 / ((meanPrompt * 1000) / t.truePrefill + (meanOut * 1000) / t.trueDecode),
    0,
  );
}

/**
 * The requests of one bench:geo load level: Poisson arrivals at `load` × the fleet's capacity,
 * drawn from a stream seeded by the run's seed and the load, so every policy (and geo-tail.ts,
 * which breaks a run's tail down) sees the same arrivals for the same flags.
 */
export function poissonArrivals(
  world: World,
  tabs: readonly SimTab[],
  seed: number,
  load: number,
  count: number,
): SimRequest[] {
  const rng = createRng(seed * 31 + Math.round(load * 1000));
  const sizing = Array.from({ length: 2000 }, () => makeRequest(world, rng, 0));
  const meanGapMs = 1 / (load * fleetCapacityPerMs(tabs, sizing));
  let t = 0;
  const requests: SimRequest[] = [];
  for (let i = 0; i < count; i++) {
    t += rng.exponential(meanGapMs);
    requests.push(makeRequest(world, rng, t));
  }
  return requests;
}
