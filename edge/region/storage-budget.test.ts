import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it, vi } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { appEnv, chat, getJob, jobToken, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";

const { tab } = useTabs();
afterEach(() => vi.restoreAllMocks());

/** A request of about 600 KB: five of them are more than the test budget (3 MB, vitest.config.ts). */
const BIG = "x".repeat(600_000);

describe("a Region object's storage budget", () => {
  it("evicts the oldest finished jobs, never a running one, and says so once in an alert line", async () => {
    const warn = vi.spyOn(console, "warn");
    const stub = regionStub(appEnv, "wnam");
    const runner = await tab(["sb-run"]);
    const server = await tab(["sb-big"]);

    // A job that stays running through the whole fill.
    const runningRes = await chat("sb-run", { stream: true });
    const running = await runner.nextJob();
    runner.send({ type: "job.accept", jobId: running.id });
    runner.send({ type: "job.delta", jobId: running.id, seq: 0, text: "still running " });
    await expect.poll(async () => (await getJob(running.id)).text).toBe("still running ");

    const finished: Array<{ id: string; token: Record<string, string> }> = [];
    for (let i = 0; i < 7; i++) {
      const resP = chat("sb-big", { messages: [{ role: "user", content: `${BIG}${i}` }] });
      const job = await server.nextJob();
      server.serve(job, [`answer ${i}`]);
      const res = await resP;
      expect(res.status).toBe(200);
      await res.json();
      finished.push({ id: job.id, token: jobToken(res) });
      const usage = await stub.storageUsage();
      expect(usage.bytes).toBeLessThanOrEqual(usage.maxBytes);
    }
    const usage = await stub.storageUsage();
    expect(usage.evicted).toBeGreaterThanOrEqual(2);

    // The oldest finished job is gone, with a clear 404 in OpenAI's error shape...
    const gone = await SELF.fetch(`http://tabgrid.test/v1/jobs/${finished[0]!.id}`, {
      headers: finished[0]!.token,
    });
    expect(gone.status).toBe(404);
    const body = OpenAIErrorBodySchema.parse(await gone.json());
    expect(body.error.code).toBe("job_not_found");
    expect(body.error.message).toContain("storage budget");
    // ...the newest is still readable...
    const last = finished.at(-1)!;
    const kept = await SELF.fetch(`http://tabgrid.test/v1/jobs/${last.id}`, {
      headers: last.token,
    });
    expect(kept.status).toBe(200);

    // ...and the running job was not touched: it finishes and its client gets all of it.
    expect((await getJob(running.id)).state).toBe("streaming");
    runner.send({ type: "job.delta", jobId: running.id, seq: 1, text: "and done" });
    runner.done(running, "stop");
    expect(await runningRes.text()).toContain("and done");
    expect((await getJob(running.id)).text).toBe("still running and done");

    const alerts = warn.mock.calls
      .map((c) => String(c[0]))
      .filter((line) => line.includes('"alert":"storage_budget"'));
    expect(alerts.length).toBeGreaterThan(0);
    // One alert per eviction round, not one per job: eviction frees down to 90 % of the budget.
    expect(alerts.length).toBeLessThan(finished.length);
    const alert = JSON.parse(alerts[0]!) as Record<string, unknown>;
    expect(alert).toMatchObject({ level: "warn", region: "wnam", maxBytes: usage.maxBytes });
    expect(alert.evicted).toBeGreaterThan(0);
  }, 60_000);
});
