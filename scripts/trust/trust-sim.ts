import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import type { JobInput, Sampling } from "../../shared/protocol/job.js";
import type { ScoreRequest } from "../../web/engine/inference-engine.js";
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
import {
  NO_ACCUSATIONS,
  awaitingConfirmation,
  bindingJudge,
  confirmationOf,
  isBindingVerifier,
  isDecisive,
  isDiscredited,
  type AccusationCounts,
} from "../../shared/trust/binding.js";
import {
  SCORE_LOGPROBS,
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
 *
 * A quarantine never rests on one verifier's word, as in the Region (edge/region/accusations.ts):
 * an audit result that would decide one (`isDecisive`) is held — recorded as not binding, the
 * subject suspect at most — and the audit goes back to the front of the queue, for the next idle
 * binding verifier other than the accuser to re-score the same answer (`confirmationOf`):
 * confirmed (both words bind), contradicted (the accusation's evidence is taken back out, the
 * accuser's contradicted count + 1) or neither. A verifier discredited by its contradictions
 * (`isDiscredited`) is not binding and never picked. `framers` honest tabs answer honestly and
 * score every audited token as foreign (scripts/trust/trust-tab.ts kind "framer").
 */

export type Kind =
  "honest" | "spam" | "smaller" | "truncation" | "speed-lie" | "refusal" | "framer";
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
  /** Honest tabs (drawn at random) that frame: every token they audit scored as foreign. */
  framers: number;
  /** Hold a decisive audit result for a second verifier's re-check (the Region); off: it binds. */
  confirmation: boolean;
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
  /** Its decisive accusations a second verifier confirmed or contradicted. */
  accusations: AccusationCounts;
}

/** An audit waiting for a verifier; one carrying an accusation waits for a second one. */
interface PendingAudit {
  subject: Tab;
  /** A text job's input: the kind a verifier re-scores. */
  input: ScoreRequest["input"];
  sampling: Sampling;
  text: string;
  stop: boolean;
  id: string;
  at: number;
  /** Held: the accuser and its evidence (recorded as not binding), and when it came back. */
  accusation?: { accuser: Tab; evidence: Partial<Evidence>; returnedAt: number };
}

export interface SimResult {
  params: SimParams;
  clientJobs: number;
  clientTokens: number;
  clientTokensAfter10: number;
  /** Audit and canary tokens after minute 10. */
  checkTokensAfter10: number;
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
  /** Honest tabs suspect when the run ends (audited at the suspect rate, no verifier). */
  honestSuspectAtEnd: number;
  framers: number;
  framersQuarantined: number;
  framersDiscredited: number;
  /** Verifiers that score honestly (honest tabs, speed liars) discredited by contradictions. */
  honestDiscredited: number;
  /** Decisive audit results held for a second verifier, and what became of them. */
  accusations: {
    held: number;
    confirmed: number;
    contradicted: number;
    unconfirmed: number;
    /** Of them, accusations of honest tabs (framed), and of those, confirmed. */
    ofHonest: number;
    ofHonestConfirmed: number;
    /** Contradicted by a lying verifier (one that passes every answer it re-scores). */
    contradictedByLiars: number;
    /** Dropped unsent (5 minutes after coming back): their evidence stays not binding. */
    lapsed: number;
    /** The accuser lost its binding word before the re-check: heard as a first word. */
    void: number;
  };
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
    case "framer":
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
  // Framers among the honest tabs, drawn by their own stream (the run's draws are unchanged).
  const framerIds = new Set<number>();
  const framerRng = createRng((p.seed ^ 0x6a09e667) >>> 0);
  while (framerIds.size < Math.min(p.framers, p.tabs - nBad))
    framerIds.add(nBad + framerRng.int(p.tabs - nBad));
  for (let i = 0; i < p.tabs; i++) {
    const kind: Kind =
      i < nBad
        ? MALICIOUS_KINDS[i % MALICIOUS_KINDS.length]!
        : framerIds.has(i)
          ? "framer"
          : "honest";
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
      accusations: NO_ACCUSATIONS,
    });
  }
  const honestCapacity = tabs.reduce((s, t) => s + t.tps, 0);
  const tokensPerJob = 30;
  const rate = (p.load * honestCapacity) / tokensPerJob; // jobs per second
  const r: SimResult = {
    params: p,
    clientJobs: 0,
    clientTokens: 0,
    clientTokensAfter10: 0,
    checkTokensAfter10: 0,
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
    honestTabs: p.tabs - nBad - framerIds.size,
    honestSuspectAtEnd: 0,
    framers: framerIds.size,
    framersQuarantined: 0,
    framersDiscredited: 0,
    honestDiscredited: 0,
    accusations: {
      held: 0,
      confirmed: 0,
      contradicted: 0,
      unconfirmed: 0,
      ofHonest: 0,
      ofHonestConfirmed: 0,
      contradictedByLiars: 0,
      lapsed: 0,
      void: 0,
    },
    liarsNeverServed: 0,
    honestTokensScored: 0,
    honestImplausible: 0,
  };
  for (const t of tabs) if (t.kind !== "honest" && t.kind !== "framer") r.maliciousCount[t.kind]++;
  const c = p.trust;
  const setState = (t: Tab, state: TrustState, now: number) => {
    t.state = state;
    if (state !== "quarantined") return;
    t.quarantinedAt = now;
    if (t.kind === "honest") r.honestQuarantined++;
    else if (t.kind === "framer") r.framersQuarantined++;
    else r.quarantineMinutes[t.kind].push(now / 60);
  };
  const record = (t: Tab, e: Partial<Evidence>, now: number, binding: boolean) => {
    if (t.state === "quarantined") return;
    t.evidence = addEvidence(t.evidence, e);
    if (binding) t.binding = addEvidence(t.binding, e);
    setState(t, bindingJudge(t.evidence, t.binding, c).state, now);
  };
  // As Reputation.record with `held`: in all evidence, not binding; suspect, awaiting the second.
  const hold = (t: Tab, e: Partial<Evidence>) => {
    t.evidence = addEvidence(t.evidence, e);
    t.state = awaitingConfirmation(addEvidence(t.binding, e), c).state;
  };
  // As Reputation.settle (confirmed / contradicted): judged once on both words.
  const settle = (
    t: Tab,
    held: Partial<Evidence>,
    e: Partial<Evidence>,
    confirmed: boolean,
    now: number,
  ) => {
    if (t.state === "quarantined") return;
    t.evidence = addEvidence(confirmed ? t.evidence : withoutEvidence(t.evidence, held), e);
    t.binding = addEvidence(confirmed ? addEvidence(t.binding, held) : t.binding, e);
    setState(t, bindingJudge(t.evidence, t.binding, c).state, now);
  };
  const accused = (v: Tab, outcome: "confirmed" | "contradicted") => {
    const was = isDiscredited(v.accusations, c);
    v.accusations = { ...v.accusations, [outcome]: v.accusations[outcome] + 1 };
    if (was || !isDiscredited(v.accusations, c)) return;
    if (v.kind === "framer") r.framersDiscredited++;
    else if (scoresHonestly(v)) r.honestDiscredited++;
  };
  const binds = (v: Tab) =>
    isBindingVerifier({ identity: v.id, state: v.state, accusations: v.accusations }, c);
  const speedOf = (t: Tab) => t.observedTps ?? t.claimedTps;
  const idle = (now: number, ok: (t: Tab) => boolean) =>
    tabs.filter((t) => t.busyUntil <= now && t.state !== "quarantined" && ok(t));
  const pendingAudits: PendingAudit[] = [];
  // Audits carrying an accusation, in the order they came back: sent before the others (the
  // Region sends the oldest first, and one comes back from the front of the queue).
  const heldAudits: PendingAudit[] = [];

  const end = p.minutes * 60;
  let now = 0;
  let jobN = 0;
  while (now < end) {
    now += rng.exponential(1 / rate);
    // Audits waiting go to idle verifiers first only when the fleet has slack (clients first:
    // an audit is dispatched only if at least a tenth of the fleet stays idle for clients).
    const free = idle(now, () => true);
    while ((heldAudits.length || pendingAudits.length) && free.length > p.tabs / 10) {
      // Not the subject, not suspect, not discredited (its word would cost honest tabs audits
      // without weight); for an accused audit not the accuser either. Another class preferred.
      const pick = (a: PendingAudit) => {
        const candidates = free.filter(
          (t) =>
            t !== a.subject &&
            t !== a.accusation?.accuser &&
            t.state !== "suspect" &&
            !isDiscredited(t.accusations, c),
        );
        const other = candidates.filter((t) => t.cls !== a.subject.cls);
        return (other.length ? other : candidates)[0];
      };
      const heldVerifier = heldAudits.length ? pick(heldAudits[0]!) : undefined;
      const queue = heldVerifier ? heldAudits : pendingAudits;
      const a = queue[0];
      const v = heldVerifier ?? (a ? pick(a) : undefined);
      if (!a || !v) break;
      queue.shift();
      free.splice(free.indexOf(v), 1);
      const request = {
        input: a.input,
        sampling: a.sampling,
        answer: a.text,
        // A second verifier's noise is its own draw, not the first one's.
        seed: a.accusation ? (jobN ^ 0x3c6ef372) >>> 0 : jobN,
        scoreStop: a.stop,
        maxTokens: c.maxAuditTokens,
      };
      const score = scoresHonestly(v)
        ? scoreClaim(request, v.noise)
        : v.kind === "framer"
          ? // Every token as unlikely as another model's, and the stop too (trust-tab.ts).
            {
              tokenLogprobs: a.text
                .split(" ")
                .slice(0, c.maxAuditTokens)
                .map(() => SCORE_LOGPROBS.foreign),
              stopLogprob: a.stop ? SCORE_LOGPROBS.foreign : null,
            }
          : // A lazy malicious verifier claims every token was likely (it lets liars pass, and
            // contradicts any accusation it is sent to re-check).
            {
              tokenLogprobs: a.text.split(" ").map(() => -0.1),
              stopLogprob: a.stop ? -0.1 : null,
            };
      r.audits++;
      r.auditedTokens += score.tokenLogprobs.length;
      if (now >= 600) r.checkTokensAfter10 += score.tokenLogprobs.length;
      v.busyUntil = now + score.tokenLogprobs.length / v.tps;
      if (a.subject.kind === "honest" && v.kind !== "framer") {
        r.honestTokensScored += score.tokenLogprobs.length;
        r.honestImplausible += score.tokenLogprobs.filter((lp) => lp < c.implausibleLogprob).length;
      }
      if (!p.verification) continue;
      // Every simulated tab is signed: its word binds while its own checks leave it unsuspected
      // and its accusations are not discredited (every candidate picked above).
      const binding = binds(v);
      const evidence = auditEvidence(score, c);
      const held = a.accusation;
      if (held && binds(held.accuser)) {
        // The second word on an accused answer (accusations.ts `settle`). One that is not
        // binding settles nothing (unreachable here: every candidate binds).
        if (!binding) {
          record(a.subject, evidence, now, false);
          heldAudits.push({ ...a, accusation: { ...held, returnedAt: now } });
          continue;
        }
        const outcome = confirmationOf(a.subject.binding, evidence, c);
        if (outcome === "unconfirmed") {
          r.accusations.unconfirmed++;
          record(a.subject, evidence, now, true);
          continue;
        }
        r.accusations[outcome]++;
        if (outcome === "confirmed" && a.subject.kind === "honest")
          r.accusations.ofHonestConfirmed++;
        if (outcome === "contradicted" && !scoresHonestly(v)) r.accusations.contradictedByLiars++;
        accused(held.accuser, outcome);
        settle(a.subject, held.evidence, evidence, outcome === "confirmed", now);
        continue;
      }
      // An accuser that lost its binding word since accuses no more: its evidence is taken back
      // out (Reputation.settle "void") and this is a first word.
      if (held) {
        r.accusations.void++;
        if (a.subject.state !== "quarantined") {
          a.subject.evidence = withoutEvidence(a.subject.evidence, held.evidence);
          setState(a.subject, bindingJudge(a.subject.evidence, a.subject.binding, c).state, now);
        }
      }
      if (
        p.confirmation &&
        binding &&
        a.subject.state !== "quarantined" &&
        isDecisive(a.subject.binding, evidence, c)
      ) {
        r.accusations.held++;
        if (a.subject.kind === "honest") r.accusations.ofHonest++;
        hold(a.subject, evidence);
        heldAudits.push({ ...a, accusation: { accuser: v, evidence, returnedAt: now } });
        continue;
      }
      record(a.subject, evidence, now, binding);
    }
    // A client job: the fastest idle, non-quarantined tab by what the coordinator believes.
    const id = `job_${p.seed}_${jobN++}`;
    const input: ScoreRequest["input"] = {
      kind: "chat",
      messages: [{ role: "user", content: prompt(rng) }],
    };
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
      if (
        (tab.kind === "honest" || tab.kind === "speed-lie" || tab.kind === "framer") &&
        rng.next() < tab.noise.flipRate
      ) {
        const w = ans.split(" ");
        const at = rng.int(w.length);
        ans = [...w.slice(0, at), "different", ...w.slice(at + 1)].join(" ");
      }
      r.canaries++;
      r.canaryTokens += ans.split(" ").length;
      if (now >= 600) r.checkTokensAfter10 += ans.split(" ").length;
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
    if (now >= 600) r.clientTokensAfter10 += tokens;
    const bad = tab.kind !== "honest" && tab.kind !== "speed-lie" && tab.kind !== "framer";
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
    // Audits not given out within 5 minutes are dropped (as in the Region), an accused one 5
    // minutes after it came back: its accusation lapses, its evidence stays not binding.
    while (pendingAudits.length && pendingAudits[0]!.at < now - 300) pendingAudits.shift();
    while (heldAudits.length && heldAudits[0]!.accusation!.returnedAt < now - 300) {
      heldAudits.shift();
      r.accusations.lapsed++;
    }
  }
  r.liarsNeverServed = tabs.filter(
    (t) => t.kind !== "honest" && t.kind !== "speed-lie" && t.kind !== "framer" && t.served === 0,
  ).length;
  r.honestSuspectAtEnd = tabs.filter((t) => t.kind === "honest" && t.state === "suspect").length;
  if (!p.verification) {
    r.audits = 0;
    r.auditedTokens = 0;
    r.checkTokensAfter10 = 0;
  }
  return r;
}

/** Honest tabs and speed liars re-score with the engine; framers and the other liars lie. */
function scoresHonestly(t: Tab): boolean {
  return t.kind === "honest" || t.kind === "speed-lie";
}

/** Evidence with a held accusation's taken back out (as Reputation.contradict; never below 0). */
function withoutEvidence(e: Evidence, taken: Partial<Evidence>): Evidence {
  const out = { ...e };
  for (const k of Object.keys(taken) as (keyof Evidence)[])
    out[k] = Math.max(0, out[k] - (taken[k] ?? 0));
  return out;
}

export const DEFAULT_SIM: Omit<SimParams, "verification"> = {
  seed: 1,
  tabs: 200,
  maliciousShare: 0.1,
  minutes: 30,
  load: 0.6,
  framers: 0,
  confirmation: true,
  trust: DEFAULT_TRUST,
};
