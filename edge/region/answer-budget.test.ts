import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { COUNTED_CONTINUATION_SINCE_PROTOCOL } from "../../shared/protocol/version.js";
import { chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { answerIsFull, budgetForAttempt, mayContinueOn, stopCut } from "./answer-budget.js";

const tabs = useTabs();
const P8 = { protocol: COUNTED_CONTINUATION_SINCE_PROTOCOL };

/**
 * A request whose first tab accepted it and delivered `pieces`, and a second tab (with `opts`)
 * connected after: the caller makes the first leave, and the second is the one to take over.
 */
async function delivered(
  model: string,
  request: object,
  pieces: string[],
  opts: { protocol?: number } = {},
) {
  const first = await tabs.tab([model]);
  const resP = chat(model, request);
  const job = await first.nextJob();
  first.accept(job);
  pieces.forEach((text, seq) => first.delta(job, seq, text));
  const second = await tabs.tab([model], opts);
  return { first, second, job, resP };
}

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

  it("a replacement that counts the delivered text writes the rest of max_tokens (protocol 8)", async () => {
    // 11 bytes delivered against max_tokens 4: by the coordinator's bound (a token per byte) the
    // answer may be full, so an older coordinator ended it here with "length" and 2 of 4 tokens.
    const { first, second, job, resP } = await delivered(
      "ab-count",
      { stream: true, max_tokens: 4 },
      ["Hello there"],
      P8,
    );
    first.close();
    const moved = await second.next("job.assign");
    expect(moved).toMatchObject({ continueFrom: "Hello there", answerMaxTokens: 4 });
    // What an older tab would be held to, if one took it.
    expect(moved.job.sampling.max_tokens).toBe(1);
    second.accept(moved.job);
    second.delta(moved.job, 0, " my friend");
    second.done(job, "length", { prompt_tokens: 5, completion_tokens: 2 }, 2);
    const out = await streamText(await resP);
    expect(out).toEqual({ text: "Hello there my friend", done: true });
    const view = await getJob(job.id);
    expect(view).toMatchObject({ state: "done", finish_reason: "length", attempts: 2 });
    expect(view.usage?.completion_tokens).toBe(4);
  });

  it("a replacement's count is clamped: usage stays within max_tokens and the text's bounds", async () => {
    const { first, second, job, resP } = await delivered(
      "ab-liar",
      { max_tokens: 4 },
      ["Hello there"],
      P8,
    );
    first.close();
    const moved = await second.next("job.assign");
    second.accept(moved.job);
    second.delta(moved.job, 0, " my");
    // Says the delivered text was no tokens (which would leave it all 4 to write); its own count
    // is right.
    second.done(job, "stop", { prompt_tokens: 5, completion_tokens: 1 }, 0);
    const body = ChatCompletionSchema.parse(await (await resP).json());
    expect(body.choices[0]?.message.content).toBe("Hello there my");
    // The delivered text counted at its least, ⌈11 / 128⌉ = 1, plus the tab's own 1.
    expect(body.usage?.completion_tokens).toBe(2);
    expect((await second.next("job.credit")).credit).toBe(1);
    // Counting 11 bytes as no tokens is impossible: a fault of the tab, as over-counting is.
    // (The first tab has left: the one tab serving the model is the replacement.)
    const nodes = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
      data: { models: string[]; trust?: { faults: number } }[];
    };
    const serving = nodes.data.filter((n) => n.models.includes("ab-liar"));
    expect(serving.map((n) => n.trust?.faults)).toEqual([1]);
  });

  it("a job whose delivered text is max_tokens long for any tokenizer ends with length instead of moving", async () => {
    // 256 bytes: at least 2 tokens, since no token is longer than 128 bytes.
    const { first, second, job, resP } = await delivered(
      "ab-full",
      { stream: true, max_tokens: 2 },
      ["x".repeat(128), "y".repeat(128)],
      P8,
    );
    let reassigned = false;
    void second.next("job.assign").then(() => (reassigned = true));
    first.close();
    const res = await resP;
    const body = await res.text();
    expect(body).toContain('"finish_reason":"length"');
    expect(body.trimEnd().endsWith("data: [DONE]")).toBe(true);
    const view = await getJob(job.id);
    expect(view).toMatchObject({ state: "done", finish_reason: "length", error: null });
    expect(view.attempts).toBe(1);
    expect(reassigned).toBe(false);
  });

  it("a job that only a counting tab could continue ends with length when only older tabs are there", async () => {
    // The second tab speaks protocol 4: it would have to be given a budget the client did not grant.
    const {
      first,
      second: older,
      job,
      resP,
    } = await delivered("ab-old", { stream: true, max_tokens: 2 }, ["x", "y"]);
    let reassigned = false;
    void older.next("job.assign").then(() => (reassigned = true));
    first.close();
    const body = await (await resP).text();
    expect(body).toContain('"finish_reason":"length"');
    const view = await getJob(job.id);
    expect(view).toMatchObject({ state: "done", finish_reason: "length", text: "xy", error: null });
    expect(view.attempts).toBe(1);
    expect(reassigned).toBe(false);
  });

  it("a job out of tabs to try whose delivered text may fill max_tokens ends with length, not an error", async () => {
    let tab = await tabs.tab(["ab-tries"], P8);
    const resP = chat("ab-tries", { stream: true, max_tokens: 4 });
    let job = await tab.nextJob();
    tab.accept(job);
    tab.delta(job, 0, "Hello there");
    // Every tab after it fails too, up to the attempt limit (3 in the test config).
    for (let attempt = 1; attempt <= 3; attempt++) {
      const next = attempt < 3 ? await tabs.tab(["ab-tries"], P8) : null;
      tab.send({ type: "job.error", jobId: job.id, error: { code: "engine_error", message: "x" } });
      if (!next) break;
      job = (await next.next("job.assign")).job;
      next.accept(job);
      tab = next;
    }
    const out = await streamText(await resP);
    // By the coordinator's bound the 11 bytes may be the whole answer: it ends so (an error
    // would take back nothing the client has, and say less).
    expect(out).toEqual({ text: "Hello there", done: true });
    expect(await getJob(job.id)).toMatchObject({ state: "done", finish_reason: "length" });
  });

  it("a stop string that straddles two attempts ends the answer where it starts", async () => {
    const { first, second, resP, job } = await delivered(
      "ab-stop",
      { stream: true, stop: ["END"] },
      ["one E"],
    );
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

describe("budgets after a failover", () => {
  const spec = (max_tokens: number): JobSpec => ({
    id: "j",
    model: "m",
    input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
    sampling: { max_tokens },
  });
  it("a counting tab gets the whole answer's max_tokens; any tab the bound's rest, at least 1", () => {
    expect(budgetForAttempt(spec(4), "", 8)).toEqual({ job: spec(4) });
    expect(budgetForAttempt(spec(4), "ab", 7).job.sampling.max_tokens).toBe(2);
    expect(budgetForAttempt(spec(4), "abcdef", 8)).toMatchObject({
      job: { sampling: { max_tokens: 1 } },
      answerMaxTokens: 4,
    });
    expect(budgetForAttempt(spec(4), "abcdef", 7)).not.toHaveProperty("answerMaxTokens");
  });
  it("only a counting tab continues what the bound may call full; nobody what is full for any tokenizer", () => {
    expect(mayContinueOn(7, spec(4), "abc")).toBe(true);
    expect(mayContinueOn(7, spec(4), "abcd")).toBe(false);
    expect(mayContinueOn(8, spec(4), "abcd")).toBe(true);
    expect(answerIsFull(spec(2), "x".repeat(128))).toBe(false);
    expect(answerIsFull(spec(2), "x".repeat(129))).toBe(true);
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
