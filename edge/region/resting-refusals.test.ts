import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * A tab that refuses a job because it is resting (`job.error` no_capacity, state paused) has not
 * failed: pausing is the contributor's right. Such a refusal spends none of the job's attempts and
 * is no fault, and a tab may be offered the job again only once, so a tab that says "resting" to
 * every offer can neither end a client's job nor hold it (job-machine.ts, the `resting` branch).
 */

const tabs = useTabs();

function refuseResting(t: ScriptedTab, jobId: string): void {
  t.send({
    type: "job.error",
    jobId,
    error: { code: "no_capacity", message: "resting" },
    state: "paused",
  });
}

/** The faults GET /v1/nodes shows for the tab serving `model`. */
async function faultsOf(model: string): Promise<number | undefined> {
  const body = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
    data: Array<{ models: string[]; trust?: { faults: number } }>;
  };
  return body.data.find((n) => n.models.includes(model))?.trust?.faults;
}

describe("resting refusals", () => {
  it("a tab refusing a job as resting over and over cannot end it: offered twice, no attempt spent, another tab serves it", async () => {
    const model = "rr-again";
    // A model of its own names the resting tab in GET /v1/nodes.
    const models = [model, "rr-again-resting"];
    const resting = await tabs.tab(models);
    const resP = chat(model, { stream: true });
    const first = await resting.nextJob();
    refuseResting(resting, first.id);
    // Back to waiting as a new request does: the refused attempt is not spent.
    await expect.poll(async () => (await getJob(first.id)).state).toBe("queued");
    expect((await getJob(first.id)).attempts).toBe(0);
    // Idle again, the tab is offered the job again once (an honest pause is over) …
    resting.send({ type: "status", state: "idle", models });
    const again = await resting.next("job.assign");
    expect(again.job.id).toBe(first.id);
    refuseResting(resting, first.id);
    await expect.poll(async () => (await getJob(first.id)).state).toBe("queued");
    expect((await getJob(first.id)).attempts).toBe(0);
    // … but not after a second refusal: the job waits for another tab, which serves it.
    resting.send({ type: "status", state: "idle", models });
    const other = await tabs.tab([model]);
    const taken = await other.next("job.assign");
    expect(taken.job.id).toBe(first.id);
    other.serve(taken.job, ["served ", "after all"]);
    expect(await streamText(await resP)).toEqual({ text: "served after all", done: true });
    expect(resting.received.filter((m) => m.type === "job.assign")).toEqual([]);
    // Resting is no fault of the tab.
    expect(await faultsOf("rr-again-resting")).toBe(0);
  });

  it("a job only a resting tab was offered ends at the queue's wait bound: 503 no_capacity, no tab's fault", async () => {
    const model = "rr-only";
    const resting = await tabs.tab([model]);
    const resP = chat(model);
    for (let round = 0; round < 2; round++) {
      const job = await resting.nextJob();
      refuseResting(resting, job.id);
      resting.send({ type: "status", state: "idle", models: [model] });
    }
    const res = await resP;
    expect(res.status).toBe(503);
    expect(Number(res.headers.get("retry-after"))).toBeGreaterThan(0);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.code).toBe("no_capacity");
    expect(body.error.message).toBe(`No tab serving '${model}' became free in time; retry later.`);
    expect(await faultsOf(model)).toBe(0);
  });
});
