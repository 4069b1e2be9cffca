import { afterEach, describe, expect, it, vi } from "vitest";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

// How many log lines a successful request costs (docs/performance.md): each line is CPU in the
// isolate, and under wrangler dev in wrangler's Node process too. One line per request, the
// Worker's `job started`; the Region's routine `job assigned` is counted into a summary.

const { tab } = useTabs();
afterEach(() => {
  vi.restoreAllMocks();
});

/** The JSON log lines written while `run` ran. */
async function linesDuring(run: () => Promise<void>): Promise<Array<Record<string, unknown>>> {
  const printed: unknown[] = [];
  const spy = vi.spyOn(console, "log").mockImplementation((line: unknown) => {
    printed.push(line);
  });
  await run();
  spy.mockRestore();
  return printed
    .filter((l): l is string => typeof l === "string" && l.startsWith("{"))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

describe("log lines per request", () => {
  it("a served request writes one line, naming its request, job and tab", async () => {
    const t = await tab(["log-model"]);
    let jobId = "";
    let requestId = "";
    const lines = await linesDuring(async () => {
      const res = chat("log-model", { stream: true });
      const job = await t.nextJob();
      t.serve(job, ["hello"]);
      const done = await res;
      expect(await done.text()).toContain("[DONE]");
      jobId = job.id;
      requestId = done.headers.get("x-request-id") ?? "";
    });
    const aboutJob = lines.filter((l) => JSON.stringify(l).includes(jobId));
    expect(aboutJob).toEqual([
      expect.objectContaining({ level: "info", msg: "job started", jobId, requestId }),
    ]);
  });

  it("a failover's reassignment is still printed: it traces the job's move to another tab", async () => {
    const first = await tab(["log-failover"]);
    let jobId = "";
    const lines = await linesDuring(async () => {
      const res = chat("log-failover", { stream: true });
      const job = await first.nextJob();
      jobId = job.id;
      first.send({ type: "job.accept", jobId: job.id });
      first.send({ type: "job.delta", jobId: job.id, seq: 0, text: "The quick " });
      const second = await tab(["log-failover"]);
      first.close();
      const assign = await second.next("job.assign");
      second.serve(assign.job, ["brown fox"]);
      expect((await streamText(await res)).text).toBe("The quick brown fox");
    });
    const assigned = lines.filter((l) => l.msg === "job assigned" && l.jobId === jobId);
    expect(assigned).toEqual([expect.objectContaining({ attempt: 2 })]);
  });
});
