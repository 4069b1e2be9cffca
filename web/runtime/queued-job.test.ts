import { describe, expect, it } from "vitest";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import { chatJob as job, contributorHarness } from "../../test/support/contributor-harness.js";

function setup(engine = new DeterministicEngine(0)) {
  return contributorHarness({ engine });
}

/**
 * Protocol 3: a busy tab holds one job the coordinator queued behind its running one and starts
 * it the moment the running job ends, without showing idle in between.
 */
describe("a job queued behind the running one", () => {
  it("starts when the running job ends, without the tab going idle in between", async () => {
    const { sockets, until, connect, frames } = setup(new DeterministicEngine(2));
    await connect();
    const both = until((v) => v.jobsServed === 2);
    sockets.last.receive({ type: "job.assign", job: job("job-1", "a b c d e f"), attempt: 1 });
    sockets.last.receive({
      type: "job.assign",
      job: job("job-2", "x y"),
      attempt: 1,
      queued: true,
    });
    await both;
    const out = frames().slice(1);
    expect(out.filter((f) => f.type === "job.error")).toEqual([]);
    const kinds = out
      .filter((f) => f.type !== "job.delta")
      .map((f) => ("jobId" in f ? `${f.type} ${f.jobId}` : `${f.type} ${f.state}`));
    expect(kinds).toEqual([
      "job.accept job-1",
      "status busy",
      "job.done job-1",
      "job.accept job-2",
      "job.done job-2",
      "status idle",
    ]);
    expect(out.find((f) => f.type === "job.done" && f.jobId === "job-1")).toMatchObject({
      state: "busy",
    });
    const want = expectedOutput(job("job-2", "x y").input, { max_tokens: 50 });
    const text = out
      .filter((f) => f.type === "job.delta" && f.jobId === "job-2")
      .map((f) => (f.type === "job.delta" ? f.text : ""))
      .join("");
    expect(text).toBe(want.text);
  });

  it("is dropped when cancelled, holds only one, and the running job goes on", async () => {
    const { sockets, until, connect, frames } = setup(new DeterministicEngine(2));
    await connect();
    const idle = until((v) => v.jobsServed === 1 && v.state === "idle");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "a b c d"), attempt: 1 });
    sockets.last.receive({ type: "job.assign", job: job("job-2", "x"), attempt: 1, queued: true });
    sockets.last.receive({ type: "job.assign", job: job("job-3", "y"), attempt: 1, queued: true });
    sockets.last.receive({ type: "job.cancel", jobId: "job-2", reason: "client went away" });
    await idle;
    const out = frames().slice(1);
    expect(out.filter((f) => f.type === "job.error").map((f) => f.jobId)).toEqual(["job-3"]);
    expect(out.filter((f) => f.type === "job.accept").map((f) => f.jobId)).toEqual(["job-1"]);
    expect(out.find((f) => f.type === "job.done")).toMatchObject({
      jobId: "job-1",
      finishReason: "stop",
    });
  });

  it("a job sent to a tab that has just paused is refused saying it rests", async () => {
    const { sockets, until, connect, frames, contributor } = setup(new DeterministicEngine(2));
    await connect();
    const paused = until((v) => v.state === "paused");
    contributor.pause("resting");
    await paused;
    // The coordinator had not yet read the tab's status frame when it sent this job.
    sockets.last.receive({ type: "job.assign", job: job("job-1", "x"), attempt: 1 });
    const refused = frames().find((f) => f.type === "job.error" && f.jobId === "job-1");
    // The coordinator reads `state` to wait for this tab instead of failing the job over.
    expect(refused).toMatchObject({ error: { code: "no_capacity" }, state: "paused" });
  });
});
