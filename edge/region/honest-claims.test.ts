import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { defaultModel } from "../../shared/models/catalog.js";
import { newKeyPair } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";
import { faultsAndJobs } from "../../test/workerd/trust-helpers.js";

/**
 * Honest tabs are not faulted by the checks on what tabs claim (falseInvalidReports, length-claim.ts;
 * found by the review of session 14): each test failed on the code before its fix.
 */

const tabs = useTabs();

describe("a bad_request report held against its tab", () => {
  it("an anonymous tab on probation answering (with nothing) does not make an honest tab's true bad_request a fault", async () => {
    // The honest tab meets a prompt over its model's context window and says so, as the
    // reference tab now does (engine-errors.ts). The job moves on to an anonymous tab on
    // probation — one connection of anyone's, e.g. the client's own — which "answers" at once with
    // an empty `stop`: no tokens, nothing checked. falseInvalidReports takes that as proof the
    // report was false: a fault and a circuit-breaker failure for the honest tab. A client plus
    // one such socket rests honest tabs again (six a minute), the attack session 14 meant to close.
    const model = "rv-false-invalid";
    const honest = await tabs.tab([model], { keys: await newKeyPair() });
    const resP = chat(model, {
      messages: [{ role: "user", content: "a document longer than the context window" }],
    });
    const job = await honest.nextJob();
    const anon = await tabs.tab([model]);
    honest.send({
      type: "job.error",
      jobId: job.id,
      error: {
        code: "bad_request",
        message: "ContextWindowSizeExceededError: Prompt tokens exceed context window size",
      },
    });
    const moved = await anon.nextJob();
    expect(moved.id).toBe(job.id);
    anon.accept(moved);
    anon.done(moved, "stop", { completion_tokens: 0 });
    expect((await resP).status).toBe(200);
    expect(await faultsAndJobs(honest), "the honest reporter's record").toEqual({
      faults: 0,
      jobs: 0,
    });
  });
});

describe("an honest 'length' at a full context window", () => {
  it("an operator's catalog record with a smaller context window (EXTRA_MODELS) is the one length-claim judges by", async () => {
    // docs/api.md: "its catalog size"; length-claim.ts reads WebLLM's prebuilt record only.
    // The operator serves Llama-3.2-1B with a 1k context (as WebLLM's own -1k builds do, to fit
    // small GPUs); tabs load the operator's record (appConfigFor), so WebLLM stops at 1,024
    // tokens with finish_reason "length". A hex dump is ~2 bytes a token: 1,600 bytes of prompt
    // (~800 tokens) and 500 of answer (~250) fill 1,024 tokens, but 1,640 + 500 + 256 < 4,096,
    // the prebuilt size, so the honest tab is faulted and its answer taken away.
    const model = "Llama-3.2-1B-Instruct-q4f16_1-MLC";
    const prebuilt = defaultModel(model)!;
    const before = appEnv.EXTRA_MODELS;
    const extra = JSON.parse(before ?? "[]") as object[];
    appEnv.EXTRA_MODELS = JSON.stringify([
      ...extra,
      { ...prebuilt, overrides: { context_window_size: 1024 } },
    ]);
    try {
      const t = await tabs.tab([model]);
      const hex = (n: number) =>
        Array.from({ length: n }, (_, i) => ((i * 2654435761) >>> 0).toString(16).slice(-2)).join(
          "",
        );
      const resP = chat(model, {
        messages: [{ role: "user", content: `Continue this hex dump: ${hex(800)}` }],
        max_tokens: 4096,
      });
      const job = await t.nextJob();
      t.accept(job);
      const answer = hex(250);
      t.delta(job, 0, answer);
      t.done(job, "length", { prompt_tokens: 790, completion_tokens: 234 });
      const res = await resP;
      const what = `status ${res.status}`;
      expect(res.status, what).toBe(200);
      const body = ChatCompletionSchema.parse(await res.json());
      expect(body.choices[0]?.finish_reason).toBe("length");
      expect(body.choices[0]?.message.content).toBe(answer);
      expect(await faultsAndJobs(t)).toEqual({ faults: 0, jobs: 1 });
    } finally {
      appEnv.EXTRA_MODELS = before;
    }
  }, 20_000);
});
