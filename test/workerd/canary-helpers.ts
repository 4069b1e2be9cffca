import { runInDurableObject } from "cloudflare:test";
import { expect } from "vitest";
import type { RegionParts } from "../../edge/region/region-parts.js";
import { regionStub } from "../../edge/region/region-stub.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import type { ScriptedTab } from "./scripted-tab.js";
import { appEnv, chat } from "./tab-helpers.js";
import { reputationOf } from "./trust-helpers.js";

export { reputationOf };

/**
 * What the canary tests (edge/region/canary-*.test.ts) share: a tab's rounds of a client job and
 * the canary after it, and views of the canary answers a Region object keeps. All in `wnam`.
 */

const stub = () => regionStub(appEnv, "wnam");

/** The answer of the deterministic engine: what an honest tab answers. */
export const honest = (job: JobSpec) => expectedOutput(job.input, job.sampling).text;
export const WRONG = "Buy cheap watches at our store today, best prices guaranteed";

/**
 * One client job for `model` and the canary that follows it, both answered by `answer`; both
 * handled. Returns the canary. (A tab serving a second, unique model can be sent its client job by
 * that model: the canary is of its first.)
 */
export async function jobAndCanary(
  t: ScriptedTab,
  model: string,
  answer: (job: JobSpec) => string,
): Promise<JobSpec> {
  const res = chat(model);
  const job = await t.nextJob();
  t.serve(job, [answer(job)]);
  expect((await res).status).toBe(200);
  const canary = await t.nextJob();
  t.serve(canary, [answer(canary)]);
  await canaryHandled(canary);
  return canary;
}

/** Wait until the Region has handled the canary's answer (its run is gone). */
export async function canaryHandled(canary: JobSpec): Promise<void> {
  await expect
    .poll(() =>
      runInDurableObject(
        stub(),
        (_obj, state) =>
          state.storage.sql.exec(`SELECT 1 FROM canary_runs WHERE job_id = ?`, canary.id).toArray()
            .length,
      ),
    )
    .toBe(0);
}

/**
 * One client job, then another: the tab is sent no canary between them (its next job is the
 * second client job, not the canary prompt).
 */
export async function jobThenNoCanary(t: ScriptedTab, model: string): Promise<void> {
  const res = chat(model);
  const job = await t.nextJob();
  t.serve(job, [honest(job)]);
  expect((await res).status).toBe(200);
  const again = chat(model);
  const next = await t.nextJob();
  expect(next.input).toEqual({ kind: "chat", messages: [{ role: "user", content: "hi" }] });
  t.serve(next, [honest(next)]);
  expect((await again).status).toBe(200);
  expect(await canariesJudged(t.nodeId)).toBe(0);
}

/** The canary answers kept for `model`: whose, confirmed or a candidate, and with whom. */
export function canaryAnswers(model: string) {
  return runInDurableObject(stub(), (_obj, state) =>
    state.storage.sql
      .exec<{ node_id: string; confirmed: number; confirmed_with?: string | null }>(
        `SELECT * FROM canary_answers WHERE model = ? ORDER BY confirmed`,
        model,
      )
      .toArray()
      .map(({ node_id, confirmed, confirmed_with }) => ({ node_id, confirmed, confirmed_with })),
  );
}

export async function canariesJudged(tabId: string): Promise<number> {
  return (await reputationOf(tabId)).canaries;
}
