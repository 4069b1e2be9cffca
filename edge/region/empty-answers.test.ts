import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import type { CoordinatorMessage } from "../../shared/protocol/node-messages.js";
import { scoreClaim } from "../../test/support/deterministic-engine.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { AUDIT_ALL, NO_CANARIES, within, withTrust } from "../../test/workerd/trust-helpers.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * A tab that answers every job with nothing (accept, then done with no delta) — the cheapest way
 * to look busy. Its answer is 0 tokens: it earns no credit, the client pays for none, it does not
 * count toward leaving probation, and it is audited like any answer (its stop is scored). Before,
 * it earned 1 token of credit per job (the stop token the bounds allow), counted toward the 20
 * jobs that end probation, and was never audited (usage-bounds.ts, tab-trust.ts, audits.ts).
 */

const { tab } = useTabs();

/** The next message of `type` this tab receives that `ok` accepts. */
async function nextWhere<T extends CoordinatorMessage["type"]>(
  t: ScriptedTab,
  type: T,
  ok: (m: Extract<CoordinatorMessage, { type: T }>) => boolean,
): Promise<Extract<CoordinatorMessage, { type: T }>> {
  for (;;) {
    const m = await t.next(type);
    if (ok(m)) return m;
  }
}

describe("an empty answer", () => {
  it("earns nothing, costs the client nothing, does not end probation, and is audited", async () => {
    await withTrust("wnam", { ...AUDIT_ALL, ...NO_CANARIES });
    const empty = await tab(["ea-empty"]);
    const res = chat("ea-empty");
    const job = await empty.nextJob();
    empty.accept(job);
    // Says it wrote one token (the stop token): allowed, but nothing was delivered for it.
    empty.done(job, "stop", { prompt_tokens: 5, completion_tokens: 1 });
    const body = ChatCompletionSchema.parse(await (await res).json());
    expect(body.choices[0]?.message.content).toBe("");
    expect(body.usage?.completion_tokens).toBe(0);
    expect((await empty.next("job.credit")).credit).toBe(0);
    const trust = await runInDurableObject(regionStub(appEnv, "wnam"), (obj) => {
      const { parts } = obj as unknown as { parts: RegionParts };
      return parts.trust.view(empty.nodeId);
    });
    // Not a fault (an honest model may stop at once), and not a job toward leaving probation.
    expect(trust).toMatchObject({ jobs: 0, faults: 0 });

    // A verifier scores the stop right after the prompt: unlikely where the model has an answer.
    const verifier = await tab(["ea-empty"]);
    const audit = await within(
      verifier.next("audit.assign"),
      3_000,
      "an audit of the empty answer",
    );
    expect(audit).toMatchObject({ answer: "", scoreStop: true });
    verifier.send({ type: "audit.result", auditId: audit.auditId, ...scoreClaim(audit) });
    const told = await nextWhere(empty, "trust", (n) => (n.audits?.failed ?? 0) > 0);
    expect(told.audits).toEqual({ passed: 0, failed: 1 });
  });
});
