import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import type { JobSpec } from "../../shared/protocol/job.js";
import {
  WRONG,
  canariesJudged,
  canaryAnswers,
  canaryHandled,
  honest,
  jobAndCanary,
  jobThenNoCanary,
  reputationOf,
} from "../../test/workerd/canary-helpers.js";
import { newKeyPair, type ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { CANARIES_ONLY, pastProbation, withTrust } from "../../test/workerd/trust-helpers.js";
import { MAX_CANARY_ANSWERS } from "./canary-answer-room.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * A disputed canary answer judges no one (canaries.ts, docs/trust.md "Canaries"). The canary
 * prompts are public, so two colluding identities that served long enough to leave probation can
 * confirm a wrong answer first. Before, every honest tab was then judged against it — a failed
 * canary each, binding — and a trusted honest identity's differing answer was only judged, never
 * kept, so nothing could ever show the answer was disputed.
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");

const PROMPTS = [
  "what's a good name for a grey cat?",
  "Can you explain what a hash table is in two sentences?",
  "write a haiku about the sea in autumn",
];
/** Enough rounds that a keyed draw among 3 prompts meets a given one ((2/3)^40 ≈ 1e-7 to miss). */
const ROUNDS = 40;

const promptOf = (job: JobSpec) =>
  job.input.kind === "chat" ? PROMPTS.indexOf(job.input.messages[0]?.content ?? "") : -1;

/**
 * A tab serving `model` first (its canaries are of it) and a model of its own, by which a client
 * job reaches it and no other tab: several tabs stay connected, each keeping its draws' counter.
 */
async function tabOf(model: string, name: string, signed: boolean) {
  const route = `${model}-via-${name}`;
  const t = await tab([model, route], signed ? { keys: await newKeyPair() } : {});
  if (signed) await pastProbation("wnam", t.nodeId);
  return { t, route };
}

/** Rounds of `t` answering with `answer` until its canary is of prompt `index`; how many it took. */
async function untilPrompt(
  who: { t: ScriptedTab; route: string },
  index: number,
  answer: (job: JobSpec) => string,
): Promise<number> {
  for (let i = 1; i <= ROUNDS; i++)
    if (promptOf(await jobAndCanary(who.t, who.route, answer)) === index) return i;
  throw new Error(`no canary of prompt ${index} in ${ROUNDS} rounds`);
}

/**
 * Two client jobs, answered honestly, and the canary between them if one is sent (answered
 * honestly too). Whether one was.
 */
async function twoJobs(t: ScriptedTab, route: string): Promise<boolean> {
  const first = chat(route);
  const job = await t.nextJob();
  t.serve(job, [honest(job)]);
  expect((await first).status).toBe(200);
  const second = chat(route);
  let next = await t.nextJob();
  const canary = promptOf(next) >= 0;
  if (canary) {
    t.serve(next, [honest(next)]);
    await canaryHandled(next);
    next = await t.nextJob();
  }
  t.serve(next, [honest(next)]);
  expect((await second).status).toBe(200);
  return canary;
}

function confirmedPrompts(model: string): Promise<number[]> {
  return runInDurableObject(stub(), (_obj, state) =>
    state.storage.sql
      .exec<{ prompt_index: number }>(
        `SELECT prompt_index FROM canary_answers WHERE model = ? AND confirmed = 1`,
        model,
      )
      .toArray()
      .map((r) => r.prompt_index),
  );
}

function contestedPrompts(model: string): Promise<number[]> {
  return runInDurableObject(stub(), (_obj, state) =>
    state.storage.sql
      .exec<{ prompt_index: number }>(
        `SELECT prompt_index FROM canary_contests WHERE model = ?`,
        model,
      )
      .toArray()
      .map((r) => r.prompt_index),
  );
}

/** Rows in one order: candidates first, then by identity. */
/** A signed identity past probation answers one job and its canary of `model` with `answer`. */
async function trustedAnswer(model: string, answer: string): Promise<string> {
  const t = await tab([model], { keys: await newKeyPair() });
  await pastProbation("wnam", t.nodeId);
  await jobAndCanary(t, model, () => answer);
  t.close();
  return t.nodeId;
}

function byConfirmed<T extends { node_id: string; confirmed: number }>(rows: T[]): T[] {
  return [...rows].sort((a, b) => a.confirmed - b.confirmed || a.node_id.localeCompare(b.node_id));
}

describe("a disputed canary answer", { timeout: 20_000 }, () => {
  it("two colluders confirm a wrong answer; two trusted honest identities contest it, and it judges no honest tab", async () => {
    await withTrust("wnam", CANARIES_ONLY, PROMPTS);
    const M = "cx-poison";
    // The colluders answer every canary wrongly, alike, until they have confirmed one prompt.
    const c1 = await tabOf(M, "c1", true);
    const c2 = await tabOf(M, "c2", true);
    let poisoned: number | undefined;
    for (let i = 0; i < ROUNDS && poisoned === undefined; i++) {
      await jobAndCanary((i % 2 ? c2 : c1).t, (i % 2 ? c2 : c1).route, () => WRONG);
      poisoned = (await confirmedPrompts(M))[0];
    }
    if (poisoned === undefined) throw new Error("the colluders confirmed no prompt");

    // The first honest confirmer meets it: judged against it once (it fails), its answer kept.
    const h1 = await tabOf(M, "h1", true);
    await untilPrompt(h1, poisoned, honest);
    expect((await reputationOf(h1.t.nodeId)).failedChecks).toBe(1);
    // Judged once: it is not sent the prompt it disputes again (and, suspect now, is sent only
    // prompts with a known answer: none other). Before, it was, and failed again.
    expect({
      canary: await twoJobs(h1.t, h1.route),
      failedChecks: (await reputationOf(h1.t.nodeId)).failedChecks,
    }).toEqual({ canary: false, failedChecks: 1 });

    // An honest tab on probation is sent a canary of the only prompt with a known answer, the
    // poisoned one; it answers once the prompt is contested.
    const y = await tabOf(M, "y", false);
    const res = chat(y.route);
    const job = await y.t.nextJob();
    y.t.serve(job, [honest(job)]);
    expect((await res).status).toBe(200);
    const held = await y.t.nextJob();
    expect(promptOf(held)).toBe(poisoned);

    // The second honest confirmer meets it: the two agree against the known answer.
    const h2 = await tabOf(M, "h2", true);
    await untilPrompt(h2, poisoned, honest);
    y.t.serve(held, [honest(held)]);
    await canaryHandled(held);

    // Neither honest tab of those two canaries failed one: the contested answer judges no one.
    // (Before, each failed: binding evidence toward a quarantine.)
    expect({
      probation: (await reputationOf(y.t.nodeId)).failedChecks,
      secondDissenter: (await reputationOf(h2.t.nodeId)).failedChecks,
    }).toEqual({ probation: 0, secondDissenter: 0 });
    expect(await canariesJudged(y.t.nodeId)).toBe(0);
    expect(await contestedPrompts(M)).toEqual([poisoned]);
    expect(await confirmedPrompts(M)).toEqual([]);
    // The first dissenter's one failed canary made it suspect (failed 1 of 1 canaries: p 0.041),
    // so it confirms nothing with the second: no prompt has a known answer, and the tab on
    // probation is sent no canary at all.
    expect((await reputationOf(h1.t.nodeId)).state).toBe("suspect");
    await jobThenNoCanary(y.t, y.route);

    // The colluders, still trusted, are no longer sent the contested prompt: no pair can confirm
    // an answer for it while it is contested.
    for (let i = 0; i < 6; i++)
      expect(promptOf(await jobAndCanary(c1.t, c1.route, () => WRONG))).not.toBe(poisoned);
    expect(await contestedPrompts(M)).toEqual([poisoned]);
    // All four answers stay as candidates, none confirmed.
    const kept = await runInDurableObject(stub(), (_obj, state) =>
      state.storage.sql
        .exec<{ node_id: string; confirmed: number }>(
          `SELECT node_id, confirmed FROM canary_answers WHERE model = ? AND prompt_index = ?`,
          M,
          poisoned,
        )
        .toArray(),
    );
    expect(new Set(kept.map((r) => r.node_id))).toEqual(
      new Set([c1.t.nodeId, c2.t.nodeId, h1.t.nodeId, h2.t.nodeId]),
    );
    expect(kept.every((r) => r.confirmed === 0)).toBe(true);
  });

  it("a trusted identity agreeing with the known answer changes nothing; one dissenting alone is judged and kept, no contest", async () => {
    await withTrust("wnam", CANARIES_ONLY, [PROMPTS[0]!]);
    const M = "cx-alone";
    // Two honest confirmers set the known answer (one at a time: a client job goes to the tab).
    for (let i = 0; i < 2; i++) {
      const t = await tab([M], { keys: await newKeyPair() });
      await pastProbation("wnam", t.nodeId);
      await jobAndCanary(t, M, honest);
      t.close();
    }
    const before = byConfirmed(await canaryAnswers(M));
    expect(before.map((r) => r.confirmed)).toEqual([0, 1]);

    const agreeing = await tab([M], { keys: await newKeyPair() });
    await pastProbation("wnam", agreeing.nodeId);
    await jobAndCanary(agreeing, M, honest);
    agreeing.close();
    expect(await reputationOf(agreeing.nodeId)).toMatchObject({ canaries: 1, failedChecks: 0 });
    expect(byConfirmed(await canaryAnswers(M))).toEqual(before);

    const dissenting = await tab([M], { keys: await newKeyPair() });
    await pastProbation("wnam", dissenting.nodeId);
    await jobAndCanary(dissenting, M, () => WRONG);
    dissenting.close();
    expect(await reputationOf(dissenting.nodeId)).toMatchObject({ canaries: 1, failedChecks: 1 });
    expect(byConfirmed(await canaryAnswers(M))).toEqual(
      byConfirmed([...before, { node_id: dissenting.nodeId, confirmed: 0, confirmed_with: null }]),
    );
    expect(await contestedPrompts(M)).toEqual([]);
  });
  it("the first confirmer of a longer answer is no dissenter, though its own answer measures as differing", async () => {
    await withTrust("wnam", CANARIES_ONLY, [PROMPTS[0]!]);
    const M = "cx-oneway";
    // canaryAgreement is one-way (the common prefix over the other answer's words): LONG agrees
    // with SHORT, so it confirms it, but SHORT differs from LONG.
    const SHORT = "Whiskers is a good name";
    const LONG = "Whiskers is a good name for a grey cat";
    const answerers = (answer: string) => trustedAnswer(M, answer);
    const first = await answerers(SHORT);
    await answerers(LONG);
    expect((await canaryAnswers(M)).map((r) => r.confirmed_with ?? null)).toContain(first);
    // A third answers as the first did: judged (it passes: a prefix of 5 of the known answer's 9
    // words), and no contest — a passing answer disputes nothing, so it is not kept as a dissent,
    // and the first confirmer is no partner either.
    const third = await answerers(SHORT);
    expect(await reputationOf(third)).toMatchObject({ canaries: 1, failedChecks: 0 });
    expect((await canaryAnswers(M)).map((r) => r.node_id)).not.toContain(third);
    expect(await contestedPrompts(M)).toEqual([]);
    expect((await canaryAnswers(M)).filter((r) => r.confirmed === 1)).toHaveLength(1);
  });
});

describe("honest drift is no dispute", () => {
  // Review finding: a dissent is any confirmer's answer that differs from the known one by the 99%
  // measure, even one that passes its canary against it (canaryMinAgreement 0.5). Honest GPU
  // classes drift after a near-tie (bench:trust models 1–5% flips a token; over 24 greedy tokens
  // about half the answers of the 3% class drift), and two tabs of one class drift alike: two such
  // honest, passing identities contest the prompt — for good, nothing ends a contest — so every
  // prompt whose answer differs a little between GPU classes stops judging anyone. The same holds
  // for two honest identities answering as the known answer's first confirmer did (the one-way
  // case the test above exempts for the first confirmer alone).
  it("two trusted identities whose answers pass the canary do not contest it", async () => {
    await withTrust("wnam", CANARIES_ONLY, [PROMPTS[0]!]);
    const M = "cx-drift";
    const KNOWN = "Whiskers is a good name for a grey cat";
    // The same greedy answer but for its last word: a near-tie flipped on another GPU class.
    const DRIFT = "Whiskers is a good name for a grey kitten";
    const answerers = (answer: string) => trustedAnswer(M, answer);
    await answerers(KNOWN);
    await answerers(KNOWN);
    expect((await canaryAnswers(M)).filter((r) => r.confirmed === 1)).toHaveLength(1);
    const d1 = await answerers(DRIFT);
    await answerers(DRIFT);
    // Both pass their canary: 8 of the known answer's 9 words agree.
    expect(await reputationOf(d1)).toMatchObject({ canaries: 1, failedChecks: 0 });
    // The prompt still judges: not contested, its known answer still confirmed.
    expect({
      contested: await contestedPrompts(M),
      confirmed: (await canaryAnswers(M)).filter((r) => r.confirmed === 1).length,
    }).toEqual({ contested: [], confirmed: 1 });
  });
});

describe("the canary answers kept per prompt", () => {
  it(`are at most ${MAX_CANARY_ANSWERS}: those of identities that count for nothing go first, then a new one is not kept`, async () => {
    await withTrust("wnam", CANARIES_ONLY, [PROMPTS[0]!]);
    const M = "cx-bound";
    // Candidates of signed identities that are not tabs here: past probation in TabTrust (they
    // may still dispute) or not (they count for nothing).
    const fill = (ids: string[], trusted: boolean) =>
      runInDurableObject(stub(), (obj, state) => {
        const { parts } = obj as unknown as { parts: RegionParts };
        for (const id of ids) {
          parts.trust.seen(id);
          if (trusted)
            for (let i = 0; i < parts.trust.policy.probationJobs; i++) parts.trust.jobDone(id);
          state.storage.sql.exec(
            `INSERT INTO canary_answers (model, prompt_index, node_id, answer) VALUES (?, 0, ?, ?)`,
            M,
            id,
            `answer of ${id}`,
          );
        }
      });
    const ids = (prefix: string, n: number) =>
      Array.from({ length: n }, (_, i) => `n_${prefix}${i}`);
    const half = MAX_CANARY_ANSWERS / 2;
    await fill(ids("kept", half), true);
    await fill(ids("gone", half), false);

    const first = await tab([M], { keys: await newKeyPair() });
    await pastProbation("wnam", first.nodeId);
    await jobAndCanary(first, M, honest);
    first.close();
    const after = (await canaryAnswers(M)).map((r) => r.node_id).sort();
    expect(after).toEqual([...ids("kept", half), first.nodeId].sort());

    await fill(ids("more", MAX_CANARY_ANSWERS - after.length), true);
    const second = await tab([M], { keys: await newKeyPair() });
    await pastProbation("wnam", second.nodeId);
    await jobAndCanary(second, M, honest);
    second.close();
    const full = await canaryAnswers(M);
    expect(full).toHaveLength(MAX_CANARY_ANSWERS);
    // Not kept, so it did not confirm the first one's answer either.
    expect(full.map((r) => r.node_id)).not.toContain(second.nodeId);
    expect(full.every((r) => r.confirmed === 0)).toBe(true);
  });
});
