import { runInDurableObject } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { EmbeddingResponseSchema } from "../../shared/openai/embeddings.js";
import { decodeVector, encodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { vectorFrames } from "../../shared/protocol/vector-frames.js";
import { createRng } from "../../shared/scheduling/prng.js";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, post, useTabs } from "../../test/workerd/tab-helpers.js";
import {
  waitFor,
  AUDIT_ALL,
  NO_CANARIES,
  auditRows,
  bindingTab,
  within,
  withTrust,
  reputationOf,
} from "../../test/workerd/trust-helpers.js";
import type { RegionDurableObject } from "./region-do.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * Embedding audits (audits.ts, embedding-audits.ts; docs/trust.md): with every finished job
 * audited, a few inputs of each embedding job are re-embedded by another tab as an ordinary
 * embedding job and its vectors compared with the claimed ones. The deterministic engine's model
 * (EngineTab) is the honest one; a scripted tab answering random unit vectors is the liar.
 * Each test uses its own embedding model, so one test's tabs and audits never meet another's.
 */

const SMALL = "snowflake-arctic-embed-s-q0f32-MLC-b4";
const SMALL_B32 = "snowflake-arctic-embed-s-q0f32-MLC-b32";
const MEDIUM = "snowflake-arctic-embed-m-q0f32-MLC-b4";
const MEDIUM_B32 = "snowflake-arctic-embed-m-q0f32-MLC-b32";

/** An embedding audit is a whole job on its verifier: a longer wait than a re-score. */
const waitLonger = <T>(read: () => Promise<T>, ok: (v: T) => boolean) => waitFor(read, ok, 6000);

const tabs = useTabs();
const engineTabs: EngineTab[] = [];
afterEach(() => engineTabs.splice(0).forEach((t) => t.close()));
async function honestTab(model: string): Promise<EngineTab> {
  const t = await EngineTab.connect(model);
  engineTabs.push(t);
  return t;
}

/**
 * An honest tab whose signed identity is trusted (bindingTab): its failing audits are binding
 * (shared/trust/binding.ts), so they can quarantine.
 */
async function trustedHonestTab(model: string): Promise<EngineTab> {
  let made: EngineTab | undefined;
  await bindingTab(
    async (models, { keys }) => {
      made = await EngineTab.connect(models[0]!, keys);
      engineTabs.push(made);
      return made.tab;
    },
    [model],
  );
  return made!;
}

const stub = () => regionStub(appEnv, "wnam");

/** Unit vectors of noise: finite and of the right length, so only a second opinion catches them. */
function randomVectors(n: number, dims: number, seed: number): Float32Array[] {
  const rng = createRng(seed);
  return Array.from({ length: n }, () => {
    const v = Float32Array.from({ length: dims }, () => rng.normal());
    const norm = Math.hypot(...v);
    return v.map((x) => x / norm);
  });
}

/** Answer every embedding job this scripted tab gets with random vectors; the jobs it got. */
function answerWithNoise(t: ScriptedTab, seed: number): JobSpec[] {
  const got: JobSpec[] = [];
  t.listen((msg) => {
    if (msg.type !== "job.assign" || msg.job.input.kind !== "embedding") return;
    const { job } = msg;
    const input = msg.job.input;
    got.push(job);
    t.accept(job);
    const noise = randomVectors(input.inputs.length, input.dimensions, seed + got.length);
    for (const frame of vectorFrames(job.id, noise)) t.send(frame);
    t.done(job, "stop", { prompt_tokens: input.inputs.length * 3, completion_tokens: 0 });
  });
  return got;
}

async function embed(model: string, input: string[]): Promise<number[][]> {
  const res = await post("/embeddings", { model, input, encoding_format: "float" });
  expect(res.status).toBe(200);
  return EmbeddingResponseSchema.parse(await res.json()).data.map((d) => d.embedding as number[]);
}

const texts = (tag: string) => [`${tag} one`, `${tag} two`, `${tag} three`, `${tag} four`];

describe("embedding answers are audited by re-embedding on another tab", () => {
  it("a tab answering random vectors fails its embedding audits and is quarantined once a second verifier confirms", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const liar = await tabs.tab([SMALL]);
    const liarJobs = answerWithNoise(liar, 11);
    // Two jobs of 4 inputs, both served by the liar (alone) and both sampled: 8 far vectors.
    await embed(SMALL, texts("first"));
    await embed(SMALL, texts("second"));
    expect(liarJobs).toHaveLength(2);
    // An honest, trusted tab joins: it is sent the audits as ordinary embedding jobs, one at a time.
    // The first binds (4 far vectors quarantine nobody); the second would decide the quarantine,
    // so it is held for a second verifier (accusations.ts).
    const verifier = await trustedHonestTab(SMALL);
    const held = await waitLonger(
      () => reputationOf(liar.nodeId),
      (v) => v.audits >= 2,
    );
    expect(held).toMatchObject({ state: "suspect", audits: 2, failedAudits: 2 });
    expect(held.bindingFailedChecks).toBe(1);
    expect(held.reason).toMatch(
      /8 of 8 re-embedded vectors disagreed.*waits for a second verifier/,
    );
    // A second trusted tab re-embeds the held audit's inputs: confirmed, quarantined.
    const confirmer = await trustedHonestTab(SMALL);
    const view = await waitLonger(
      () => reputationOf(liar.nodeId),
      (v) => v.state === "quarantined",
    );
    expect(view).toMatchObject({ state: "quarantined", audits: 3, failedAudits: 3 });
    expect(view.reason).toMatch(/12 of 12 re-embedded vectors disagreed/);
    // The same answer re-checked: the held audit's inputs, the verifier's second job's.
    expect(confirmer.jobs).toHaveLength(1);
    expect(confirmer.jobs[0]!.input).toEqual(verifier.jobs[1]!.input);
    // The verifier re-embedded the sampled inputs: at most maxAuditVectors (4) each, the texts
    // the client sent, in embedding jobs of their own (not the client's job ids).
    expect(verifier.jobs).toHaveLength(2);
    for (const job of verifier.jobs) {
      expect(job.input.kind).toBe("embedding");
      if (job.input.kind !== "embedding") continue;
      expect(job.input.inputs.length).toBeLessThanOrEqual(4);
      expect(job.input.dimensions).toBe(384);
      expect(liarJobs.map((j) => j.id)).not.toContain(job.id);
    }
    expect(
      verifier.jobs.flatMap((j) => (j.input.kind === "embedding" ? j.input.inputs : [])),
    ).toEqual(expect.arrayContaining(texts("first")));
    // The liar gets no more client jobs: the next request is the honest tab's.
    const after = await embed(SMALL, ["later"]);
    expect(after[0]).toEqual(Array.from(embeddingOf("later", 384)));
    expect(liarJobs).toHaveLength(2);
    expect((await reputationOf(verifier.tab.nodeId)).state).not.toBe("quarantined");
    expect((await reputationOf(verifier.tab.nodeId)).accusations).toEqual({
      confirmed: 1,
      contradicted: 0,
    });
    // The later answer's audit, on the other honest tab, ends before the tabs close.
    await waitLonger(
      () => auditRows("wnam", SMALL),
      (rows) => rows.length === 0,
    );
  });

  it("honest tabs pass each other's embedding audits and are not quarantined", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const a = await honestTab(SMALL_B32);
    const b = await honestTab(SMALL_B32);
    for (let i = 0; i < 6; i++) {
      const out = await embed(SMALL_B32, texts(`batch ${i}`));
      expect(out).toEqual(texts(`batch ${i}`).map((t) => Array.from(embeddingOf(t, 384))));
    }
    const views = await waitLonger(
      async () => [await reputationOf(a.tab.nodeId), await reputationOf(b.tab.nodeId)],
      (v) => v[0]!.audits + v[1]!.audits >= 6,
    );
    // Every job was re-embedded by the other tab, and every vector agreed.
    expect(views[0]!.audits + views[1]!.audits).toBe(6);
    for (const v of views) {
      expect(v.failedAudits).toBe(0);
      expect(v.state).not.toMatch(/quarantined|suspect/);
    }
    expect(views.some((v) => v.audits >= 3 && v.state === "trusted")).toBe(true);
  });

  it("the verifier's vectors reach no client, earn no credit, and leave the audited answer as it was", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await honestTab(MEDIUM);
    const input = texts("kept");
    const honest = input.map((t) => Array.from(embeddingOf(t, 768)));
    expect(await embed(MEDIUM, input)).toEqual(honest);
    // A verifier that answers the audit with noise: the audit fails (the honest subject takes the
    // blame, as with any verifier's word), but its vectors go nowhere else.
    const verifier = await tabs.tab([MEDIUM]);
    const assigned = within(verifier.next("job.assign"), 4000, "the embedding audit's job");
    const { job } = await assigned;
    expect(job.input).toMatchObject({ kind: "embedding", dimensions: 768 });
    verifier.accept(job);
    const noise = randomVectors(
      job.input.kind === "embedding" ? job.input.inputs.length : 0,
      768,
      3,
    );
    for (const frame of vectorFrames(job.id, noise)) verifier.send(frame);
    verifier.done(job, "stop", { prompt_tokens: 12, completion_tokens: 0 });
    const view = await waitLonger(
      () => reputationOf(subject.tab.nodeId),
      (v) => v.audits >= 1,
    );
    expect(view).toMatchObject({ audits: 1, failedAudits: 1 });
    const held = await runInDurableObject(stub(), async (obj, state) => {
      const sql = state.storage.sql;
      return {
        // No job record and no stored vector for the audit's job: nothing a client could read.
        jobRows: sql.exec(`SELECT 1 FROM jobs WHERE id = ?`, job.id).toArray().length,
        auditVectors: sql.exec(`SELECT 1 FROM job_vectors WHERE job_id = ?`, job.id).toArray()
          .length,
        byVerifier: sql
          .exec(`SELECT 1 FROM job_vectors WHERE node_id = ?`, verifier.nodeId)
          .toArray().length,
        readable: await (obj as unknown as RegionDurableObject).jobVectors(job.id, null),
        // The audited job's stored answer: still the subject's own vectors.
        answers: sql
          .exec<{ job_id: string; node_id: string; vector: string }>(
            `SELECT job_id, node_id, vector FROM job_vectors WHERE node_id = ? ORDER BY idx`,
            subject.tab.nodeId,
          )
          .toArray(),
      };
    });
    expect(held).toMatchObject({ jobRows: 0, auditVectors: 0, byVerifier: 0, readable: null });
    const kept = held.answers.map((r) => {
      const v = decodeVector(r.vector, 768);
      return v.ok ? Array.from(v.values) : [];
    });
    expect(kept).toEqual(honest);
    // The audited job read again by its owner: unchanged.
    const jobId = held.answers[0]!.job_id;
    const reread = await runInDurableObject(stub(), (obj) =>
      (obj as unknown as RegionDurableObject).jobVectors(jobId, null),
    );
    expect(reread?.map((v) => (decodeVector(v, 768) as { values: Float32Array }).values)).toEqual(
      honest.map((v) => Float32Array.from(v)),
    );
    // No credit for the verifier's work.
    expect(verifier.received.filter((m) => m.type === "job.credit")).toEqual([]);
  });

  it("a verifier whose vectors break the rules is at fault; the audit goes back, judging nobody", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const subject = await honestTab(MEDIUM_B32);
    await embed(MEDIUM_B32, ["x one", "x two"]);
    const verifier = await tabs.tab([MEDIUM_B32]);
    const { job } = await within(verifier.next("job.assign"), 4000, "the embedding audit's job");
    verifier.accept(job);
    const short = encodeVector([1, 2, 3]);
    verifier.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [short] });
    // Its job is stopped, the audit waits for another verifier, and it is this one's fault.
    expect((await within(verifier.next("job.cancel"), 4000, "the cancel")).jobId).toBe(job.id);
    expect(await auditRows("wnam", MEDIUM_B32)).toEqual([
      { id: expect.any(String), verifier: null },
    ]);
    const faults = await runInDurableObject(
      stub(),
      (obj) => (obj as unknown as { parts: RegionParts }).parts.trust.view(verifier.nodeId).faults,
    );
    expect(faults).toBe(1);
    expect(await reputationOf(subject.tab.nodeId)).toMatchObject({ audits: 0, failedAudits: 0 });
  });
});
