import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import type { JobInput, Sampling } from "../../shared/protocol/job.js";
import {
  DEFAULT_TRUST,
  pickCanary,
  shouldAudit,
  shouldCanary,
  type TrustConfig,
  type TrustState,
} from "../../shared/trust/policy.js";
import {
  NO_EVIDENCE,
  addEvidence,
  auditEvidence,
  canaryEvidence,
  type Evidence,
} from "../../shared/trust/reputation.js";
import { NO_ACCUSATIONS, bindingJudge, isBindingVerifier } from "../../shared/trust/binding.js";
import {
  expectedOutput,
  scoreClaim,
  type ScoreNoise,
} from "../../test/support/deterministic-engine.js";

/**
 * A discrete-event simulation of a Tabgrid region on a simulated clock: tabs of three honest GPU
 * classes (each with its own re-scoring noise and speed) and 10% malicious tabs of five kinds; a
 * Poisson stream of client chat jobs placed on the fastest idle tab; verification exactly as the
 * Region does it — keyed audit sampling and canaries from shared/trust/policy.ts, re-scoring by an
 * idle tab of another class with the deterministic engine's scoring (scoreClaim, the same function
 * the test engine implements InferenceEngine.score with), the per-identity binomial test from
 * shared/trust/reputation.ts and quarantine. Jobs go to tabs before audits (clients first).
 */

export type Kind = "honest" | "spam" | "smaller" | "truncation" | "speed-lie" | "refusal";
export const MALICIOUS_KINDS: Kind[] = ["spam", "smaller", "truncation", "speed-lie", "refusal"];

const CLASSES: { name: string; noise: Omit<ScoreNoise, "seed">; tps: number }[] = [
  { name: "high", noise: { sd: 0.2, flipRate: 0.01 }, tps: 40 },
  { name: "mid", noise: { sd: 0.4, flipRate: 0.03 }, tps: 25 },
  { name: "integrated", noise: { sd: 0.6, flipRate: 0.05 }, tps: 12 },
];

export interface SimParams {
  seed: number;
  tabs: number;
  maliciousShare: number;
  minutes: number;
  /** Offered load as a share of the honest fleet's token capacity. */
  load: number;
  verification: boolean;
  trust: TrustConfig;
}

interface Tab {
  id: string;
  kind: Kind;
  cls: number;
  noise: ScoreNoise;
  tps: number;
  claimedTps: number;
  observedTps: number | null;
  busyUntil: number;
  evidence: Evidence;
  /** The binding part of `evidence` (shared/trust/binding.ts): it alone can quarantine. */
  binding: Evidence;
  state: TrustState;
  quarantinedAt: number | null;
  served: number;
  nextIsCanary: boolean;
}

export interface SimResult {
  params: SimParams;
  clientJobs: number;
  clientTokens: number;
  badAnswers: number;
  badAnswersAfter10: number;
  jobsAfter10: number;
  speedLieJobs: number;
  auditedTokens: number;
  canaryTokens: number;
  audits: number;
  canaries: number;
  quarantineMinutes: Record<Kind, number[]>;
  maliciousCount: Record<Kind, number>;
  honestQuarantined: number;
  honestTabs: number;
  /** Lying tabs (of kinds that change answers) never given a client job in the run. */
  liarsNeverServed: number;
  honestTokensScored: number;
  honestImplausible: number;
}

const WORDS =
  "the a tide moon ocean river light stone city garden winter summer paper code water fire wind green quiet north south under over quick slow bright dark".split(
    " ",
  );

function prompt(rng: Rng): string {
  const n = 8 + rng.int(30);
  return Array.from({ length: n }, () => rng.pick(WORDS)).join(" ");
}

function answerOf(
  tab: Tab,
  input: JobInput,
  sampling: Sampling,
  rng: Rng,
): { text: string; stop: boolean } {
  const honest = expectedOutput(input, sampling);
  const words = honest.text.split(" ");
  switch (tab.kind) {
    case "honest":
    case "speed-lie":
      return { text: honest.text, stop: honest.finishReason === "stop" };
    case "spam":
      return { text: "Visit cheap-pills dot example for the best deals today only", stop: true };
    case "refusal":
      return { text: "I'm sorry, but I can't help with that request.", stop: true };
    case "truncation":
      return {
        text: words.slice(0, Math.max(2, Math.floor(words.length * 0.4))).join(" "),
        stop: true,
      };
    case "smaller":
      // A smaller model: close to the answer, but a good share of its tokens differ.
      return {
        text: words
          .map((w) =>
            rng.next() < 0.35 ? rng.pick(["perhaps", "basically", "kind", "of", "um"]) : w,
          )
          .join(" "),
        stop: honest.finishReason === "stop",
      };
  }
}

export function simulate(p: SimParams): SimResult {
  const rng = createRng(p.seed);
  const tabs: Tab[] = [];
  const nBad = Math.round(p.tabs * p.maliciousShare);
  for (let i = 0; i < p.tabs; i++) {
    const kind: Kind = i < nBad ? MALICIOUS_KINDS[i % MALICIOUS_KINDS.length]! : "honest";
    const cls = i % CLASSES.length;
    const c = CLASSES[cls]!;
    tabs.push({
      id: `tab${i}`,
      kind,
      cls,
      noise: { ...c.noise, seed: 1000 + cls },
      tps: c.tps,
      claimedTps: kind === "speed-lie" ? c.tps * 20 : c.tps,
      observedTps: null,
      busyUntil: 0,
      evidence: NO_EVIDENCE,
      binding: NO_EVIDENCE,
      state: "probation",
      quarantinedAt: null,
      served: 0,
      nextIsCanary: false,
    });
  }
  const honestCapacity = tabs.reduce((s, t) => s + t.tps, 0);
  const tokensPerJob = 30;
  const rate = (p.load * honestCapacity) / tokensPerJob; // jobs per second
  const r: SimResult = {
    params: p,
    clientJobs: 0,
    clientTokens: 0,
    badAnswers: 0,
    badAnswersAfter10: 0,
    jobsAfter10: 0,
    speedLieJobs: 0,
    auditedTokens: 0,
    canaryTokens: 0,
    audits: 0,
    canaries: 0,
    quarantineMinutes: Object.fromEntries(MALICIOUS_KINDS.map((k) => [k, []])) as unknown as Record<
      Kind,
      number[]
    >,
    maliciousCount: Object.fromEntries(MALICIOUS_KINDS.map((k) => [k, 0])) as unknown as Record<
      Kind,
      number
    >,
    honestQuarantined: 0,
    honestTabs: p.tabs - nBad,
    liarsNeverServed: 0,
    honestTokensScored: 0,
    honestImplausible: 0,
  };
  for (const t of tabs) if (t.kind !== "honest") r.maliciousCount[t.kind]++;
  const c = p.trust;
  const record = (t: Tab, e: Partial<Evidence>, now: number, binding: boolean) => {
    if (t.state === "quarantined") return;
    t.evidence = addEvidence(t.evidence, e);
    if (binding) t.binding = addEvidence(t.binding, e);
    const j = bindingJudge(t.evidence, t.binding, c);
    t.state = j.state;
    if (j.state === "quarantined") {
      t.quarantinedAt = now;
      if (t.kind === "honest") r.honestQuarantined++;
      else r.quarantineMinutes[t.kind].push(now / 60);
    }
  };
  const speedOf = (t: Tab) => t.observedTps ?? t.claimedTps;
  const idle = (now: number, ok: (t: Tab) => boolean) =>
    tabs.filter((t) => t.busyUntil <= now && t.state !== "quarantined" && ok(t));
  const pendingAudits: {
    subject: Tab;
    input: JobInput;
    sampling: Sampling;
    text: string;
    stop: boolean;
    id: string;
    at: number;
  }[] = [];

  const end = p.minutes * 60;
  let now = 0;
  let jobN = 0;
  while (now < end) {
    now += rng.exponential(1 / rate);
    // Audits waiting go to idle verifiers first only when the fleet has slack (clients first:
    // an audit is dispatched only if at least a tenth of the fleet stays idle for clients).
    const free = idle(now, () => true);
    while (pendingAudits.length && free.length > p.tabs / 10) {
      const a = pendingAudits[0]!;
      const candidates = free.filter((t) => t !== a.subject && t.state !== "suspect");
      if (!candidates.length) break;
      const other = candidates.filter((t) => t.cls !== a.subject.cls);
      const v = (other.length ? other : candidates)[0]!;
      pendingAudits.shift();
      free.splice(free.indexOf(v), 1);
      const score =
        v.kind === "honest" || v.kind === "speed-lie"
          ? scoreClaim(
              {
                input: a.input,
                sampling: a.sampling,
                answer: a.text,
                seed: jobN,
                scoreStop: a.stop,
                maxTokens: c.maxAuditTokens,
              },
              v.noise,
            )
          : // A lazy malicious verifier claims every token was likely (it lets liars pass; it
            // does not frame anyone: see docs/trust.md for what framing would take).
            { tokenLogprobs: a.text.split(" ").map(() => -0.1), stopLogprob: a.stop ? -0.1 : null };
      r.audits++;
      r.auditedTokens += score.tokenLogprobs.length;
      v.busyUntil = now + score.tokenLogprobs.length / v.tps;
      if (a.subject.kind === "honest") {
        r.honestTokensScored += score.tokenLogprobs.length;
        r.honestImplausible += score.tokenLogprobs.filter((lp) => lp < c.implausibleLogprob).length;
      }
      // Every simulated tab is signed: its word binds while its own checks leave it unsuspected.
      // No simulated verifier frames, so none is contradicted; and a decisive audit binds at once
      // here, where the Region holds it for a second verifier's re-check (edge/region/accusations.ts):
      // the simulation does not model that step (one more audit per quarantine).
      const binding = isBindingVerifier(
        { identity: v.id, state: v.state, accusations: NO_ACCUSATIONS },
        c,
      );
      if (p.verification) record(a.subject, auditEvidence(score, c), now, binding);
    }
    // A client job: the fastest idle, non-quarantined tab by what the coordinator believes.
    const id = `job_${p.seed}_${jobN++}`;
    const input: JobInput = { kind: "chat", messages: [{ role: "user", content: prompt(rng) }] };
    const sampling: Sampling = { max_tokens: 48, temperature: 0.7 };
    const candidates = idle(now, () => true);
    if (!candidates.length) continue; // the queue is full: not counted as served
    candidates.sort((a, b) => speedOf(b) - speedOf(a));
    // Among the top few (matching spreads load; a liar ranks itself first).
    const tab = candidates[Math.min(candidates.length - 1, rng.int(3))]!;
    if (p.verification && tab.nextIsCanary) {
      // The tab gets a canary instead (the client job goes to the next tab in line).
      tab.nextIsCanary = false;
      const pick = pickCanary(c, tab.id, tab.served);
      const cin: JobInput = { kind: "chat", messages: [{ role: "user", content: pick.prompt }] };
      const cs: Sampling = { max_tokens: c.canaryMaxTokens, temperature: 0 };
      const known = expectedOutput(cin, cs).text;
      let ans = answerOf(tab, cin, cs, rng).text;
      // Honest greedy decoding drifts from the known answer after a near-tie, now and then.
      if ((tab.kind === "honest" || tab.kind === "speed-lie") && rng.next() < tab.noise.flipRate) {
        const w = ans.split(" ");
        const at = rng.int(w.length);
        ans = [...w.slice(0, at), "different", ...w.slice(at + 1)].join(" ");
      }
      r.canaries++;
      r.canaryTokens += ans.split(" ").length;
      tab.busyUntil = now + ans.split(" ").length / tab.tps;
      // Binding: judged against the known answer (confirmed by two trusted identities).
      record(tab, canaryEvidence(ans, known, c), now, true);
      continue;
    }
    const out = answerOf(tab, input, sampling, rng);
    const tokens = out.text.split(" ").length;
    tab.busyUntil = now + tokens / tab.tps;
    tab.observedTps = tab.tps; // the coordinator measures the speed of every served job
    tab.served++;
    r.clientJobs++;
    r.clientTokens += tokens;
    const bad = tab.kind !== "honest" && tab.kind !== "speed-lie";
    if (bad) r.badAnswers++;
    if (tab.kind === "speed-lie") r.speedLieJobs++;
    if (now >= 600) {
      r.jobsAfter10++;
      if (bad) r.badAnswersAfter10++;
    }
    if (p.verification && shouldAudit(c, id, tab.state, sampling.temperature))
      pendingAudits.push({
        subject: tab,
        input,
        sampling,
        text: out.text,
        stop: out.stop,
        id,
        at: now,
      });
    if (p.verification && shouldCanary(c, tab.id, tab.served, tab.state)) tab.nextIsCanary = true;
    // Audits not given out within 5 minutes are dropped (as in the Region).
    while (pendingAudits.length && pendingAudits[0]!.at < now - 300) pendingAudits.shift();
  }
  r.liarsNeverServed = tabs.filter(
    (t) => t.kind !== "honest" && t.kind !== "speed-lie" && t.served === 0,
  ).length;
  if (!p.verification) {
    r.audits = 0;
    r.auditedTokens = 0;
  }
  return r;
}

export const DEFAULT_SIM: Omit<SimParams, "verification"> = {
  seed: 1,
  tabs: 200,
  maliciousShare: 0.1,
  minutes: 30,
  load: 0.6,
  trust: DEFAULT_TRUST,
};
