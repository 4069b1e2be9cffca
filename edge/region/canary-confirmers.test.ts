import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import {
  WRONG,
  canariesJudged,
  canaryAnswers,
  honest,
  jobAndCanary,
  jobThenNoCanary,
} from "../../test/workerd/canary-helpers.js";
import { newKeyPair } from "../../test/workerd/scripted-tab.js";
import { appEnv, useTabs } from "../../test/workerd/tab-helpers.js";
import { CANARIES_ONLY, pastProbation, withTrust } from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * Who may set a canary's known answer (canaries.ts `mayConfirm`): two signed identities out of
 * probation that agree, never identities had for free. Before, any two identities that agreed
 * set it for good — one person's two anonymous sockets could, and honest tabs then failed every
 * canary of that prompt until they were quarantined.
 */

const { tab } = useTabs();
const stub = () => regionStub(appEnv, "wnam");

describe("who confirms a canary answer", () => {
  it("a tab that may not confirm is sent no canary while no answer is known, so anonymous sockets set nothing", async () => {
    await withTrust("wnam", CANARIES_ONLY, ["what's a good name for a grey cat?"]);
    // Before session 13 each of them was sent the canary (its GPU's work judged nothing) and,
    // before session 12, two that agreed on a wrong answer set it.
    for (let i = 0; i < 2; i++) {
      const sock = await tab(["cc-anon"]);
      await jobThenNoCanary(sock, "cc-anon");
      sock.close();
    }
    expect(await canaryAnswers("cc-anon")).toEqual([]);
  });

  it("a signed tab out of probation is sent canaries whose answer is not known yet; its answer is a candidate", async () => {
    await withTrust("wnam", CANARIES_ONLY, ["what's a good name for a grey cat?"]);
    const signed = await tab(["cc-cand"], { keys: await newKeyPair() });
    await pastProbation("wnam", signed.nodeId);
    await jobAndCanary(signed, "cc-cand", () => WRONG);
    expect(await canaryAnswers("cc-cand")).toEqual([
      { node_id: signed.nodeId, confirmed: 0, confirmed_with: null },
    ]);
    expect(await canariesJudged(signed.nodeId)).toBe(0);
  });

  it("two signed identities out of probation confirm it; a quarantine of either withdraws it", async () => {
    await withTrust("wnam", CANARIES_ONLY, ["what's a good name for a grey cat?"]);
    const first = await tab(["cc-signed"], { keys: await newKeyPair() });
    await pastProbation("wnam", first.nodeId);
    await jobAndCanary(first, "cc-signed", honest);
    first.close();
    const second = await tab(["cc-signed"], { keys: await newKeyPair() });
    await pastProbation("wnam", second.nodeId);
    await jobAndCanary(second, "cc-signed", honest);
    second.close();
    const confirmed = await canaryAnswers("cc-signed");
    expect(confirmed.map((r) => [r.node_id, r.confirmed])).toEqual([
      [first.nodeId, 0],
      [second.nodeId, 1],
    ]);
    // A tab is judged against the known answer (anonymous or not).
    const judged = await tab(["cc-signed"]);
    await jobAndCanary(judged, "cc-signed", honest);
    expect(await canariesJudged(judged.nodeId)).toBe(1);
    judged.close();

    // The first confirmer is found out: its confirmation is withdrawn, so the next tab is not
    // judged against it, and its candidate goes.
    await runInDurableObject(stub(), (obj) =>
      (obj as unknown as { parts: RegionParts }).parts.trust.quarantine(first.nodeId, "operator"),
    );
    const next = await tab(["cc-signed"]);
    await jobThenNoCanary(next, "cc-signed");
    expect(confirmed[1]?.confirmed_with).toBe(first.nodeId);
    expect(await canaryAnswers("cc-signed")).toEqual([
      { node_id: second.nodeId, confirmed: 0, confirmed_with: null },
    ]);
  });
});
