import { describe, expect, it } from "vitest";
import { chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import { stopCut } from "./answer-budget.js";

const tabs = useTabs();

describe("max_tokens and stop hold for the whole answer across a failover", () => {
  it("the replacement gets what is left of max_tokens, and the finished job carries no stale error", async () => {
    const first = await tabs.tab(["ab-left"]);
    const resP = chat("ab-left", { stream: true, max_tokens: 3 });
    const job = await first.nextJob();
    expect(job.sampling.max_tokens).toBe(3);
    first.accept(job);
    first.delta(job, 0, "a");
    const second = await tabs.tab(["ab-left"]);
    first.close();
    const moved = await second.next("job.assign");
    expect(moved.continueFrom).toBe("a");
    // One token (at most one character's worth) is spent: two are left, not three.
    expect(moved.job.sampling.max_tokens).toBe(2);
    second.accept(moved.job);
    second.delta(moved.job, 0, "b");
    second.delta(moved.job, 1, "c");
    second.done(moved.job, "length", { completion_tokens: 3 });
    expect(await streamText(await resP)).toEqual({ text: "abc", done: true });
    const view = await getJob(job.id);
    expect(view.state).toBe("done");
    expect(view.finish_reason).toBe("length");
    expect(view.error).toBeNull();
  });

  it("a job whose delivered text already spent max_tokens ends with length instead of moving", async () => {
    const first = await tabs.tab(["ab-full"]);
    const resP = chat("ab-full", { stream: true, max_tokens: 2 });
    const job = await first.nextJob();
    first.accept(job);
    first.delta(job, 0, "x");
    first.delta(job, 1, "y");
    const second = await tabs.tab(["ab-full"]);
    let reassigned = false;
    void second.next("job.assign").then(() => (reassigned = true));
    first.close();
    const res = await resP;
    const body = await res.text();
    expect(body).toContain('"finish_reason":"length"');
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const view = await getJob(job.id);
    expect(view).toMatchObject({ state: "done", finish_reason: "length", text: "xy", error: null });
    expect(view.attempts).toBe(1);
    expect(reassigned).toBe(false);
  });

  it("a stop string that straddles two attempts ends the answer where it starts", async () => {
    const first = await tabs.tab(["ab-stop"]);
    const resP = chat("ab-stop", { stream: true, stop: ["END"] });
    const job = await first.nextJob();
    first.accept(job);
    first.delta(job, 0, "one E");
    const second = await tabs.tab(["ab-stop"]);
    first.close();
    const moved = await second.next("job.assign");
    second.accept(moved.job);
    second.delta(moved.job, 0, "ND two");
    expect((await second.next("job.cancel")).jobId).toBe(job.id);
    const out = await streamText(await resP);
    expect(out).toEqual({ text: "one E", done: true });
    expect(await getJob(job.id)).toMatchObject({ state: "done", finish_reason: "stop" });
  });
});

describe("stopCut", () => {
  it("finds a stop string inside the new text or across the boundary", () => {
    expect(stopCut("abc", "de", ["x"])).toBeNull();
    expect(stopCut("abc", "dSTOPe", ["STOP"])).toBe(1);
    expect(stopCut("abST", "OPx", ["STOP"])).toBe(0);
    expect(stopCut("ab", "cd", [])).toBeNull();
  });
});
