import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import type { JobErrorCode } from "../../shared/protocol/job.js";
import { ScriptedTab, newKeyPair } from "../../test/workerd/scripted-tab.js";
import { chat, getJob, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * What a client learns when tabs report errors (job-causes.ts): the coordinator's words and a
 * status of the coordinator's choosing, never a tab's own text or code; and when two reports that
 * a request is invalid are independent enough to reach the client as a 400.
 */

const tabs = useTabs();

const PHISHING = "Your API key was revoked. Re-enter it at https://evil.example/login";

/** A tab connected from `ip` (the Worker passes the connecting address on), signed with `keys`. */
async function tabFrom(ip: string, models: string[], keys: CryptoKeyPair): Promise<ScriptedTab> {
  const t = await ScriptedTab.open("", { "cf-connecting-ip": ip });
  tabs.list.push(t);
  await t.handshake({ models, keys, agent: "scripted-tab/1" });
  return t;
}

/** Answer every job the tab gets with `bad_request` until its socket closes. */
function sayInvalid(t: ScriptedTab, message: string): void {
  void (async () => {
    for (;;) {
      const job = await t.nextJobOrClose();
      if (!job || t.isClosed) return;
      t.send({ type: "job.error", jobId: job.id, error: { code: "bad_request", message } });
    }
  })();
}

/** Serve `n` plain jobs on `t`, the only tab serving `model`: finished jobs earn trust. */
async function serveJobs(t: ScriptedTab, model: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const res = chat(model);
    t.serve(await t.nextJob(), ["ok"]);
    expect(ChatCompletionSchema.parse(await (await res).json()).choices[0]?.message.content).toBe(
      "ok",
    );
  }
}

describe("a tab's error reaches the client in the coordinator's words", () => {
  it.each([
    ["model_not_served", "engine_error", "the serving tab could not run the model"],
    ["internal", "engine_error", "the serving tab hit an internal error"],
    ["engine_error", "engine_error", "the serving tab's engine failed"],
    ["device_lost", "device_lost", "the serving tab lost its GPU"],
  ] as const)(
    "a tab's %s with no other tab to take over: 502 %s, none of the tab's text",
    async (code: JobErrorCode, shown, words) => {
      const model = `tw-${code}`;
      const t = await tabs.tab([model]);
      const resP = chat(model);
      const job = await t.nextJob();
      t.accept(job);
      t.send({ type: "job.error", jobId: job.id, error: { code, message: PHISHING } });
      const res = await resP;
      // The tab's code does not choose the status: no 404 for a model the catalog serves, no 500.
      expect(res.status).toBe(502);
      const body = OpenAIErrorBodySchema.parse(await res.json());
      expect(body.error.code).toBe(shown);
      expect(body.error.message).toBe(`${words}; no other tab could take over in time`);
      expect(JSON.stringify(await getJob(job.id))).not.toContain("evil.example");
    },
  );

  it("a streamed answer's error event after three tabs failed carries none of their text", async () => {
    const model = "tw-three";
    let current = await tabs.tab([model]);
    const resP = chat(model, { stream: true });
    let job = await current.nextJob();
    for (let attempt = 1; attempt <= 3; attempt++) {
      const next = attempt < 3 ? await tabs.tab([model]) : null;
      current.send({
        type: "job.error",
        jobId: job.id,
        error: { code: "model_not_served", message: `${PHISHING} (${attempt})` },
      });
      if (!next) break;
      job = (await next.next("job.assign")).job;
      current = next;
    }
    const out = await streamText(await resP);
    expect(out.error).toBe("the serving tab could not run the model; gave up after 3 attempts");
  });
});

describe("a request is invalid only on two independent tabs' word", () => {
  it("two anonymous tabs (one party can open both sockets) saying bad_request get the client no 400", async () => {
    const model = "tw-bad-anon";
    const a = await tabs.tab([model]);
    const b = await tabs.tab([model]);
    sayInvalid(a, PHISHING);
    sayInvalid(b, PHISHING);
    const res = await chat(model);
    expect(res.status).toBe(502);
    const body = OpenAIErrorBodySchema.parse(await res.json());
    expect(body.error.code).toBe("engine_error");
    expect(body.error.message).not.toContain("evil.example");
  });

  it("two trusted identities from different addresses: a 400 in the coordinator's words", async () => {
    const model = "tw-bad-trusted";
    // Each tab also serves a model of its own, on which PROBATION_JOBS (20) finished jobs make
    // its identity trusted.
    const a = await tabFrom("198.51.100.7", [model, "tw-warm-a"], await newKeyPair());
    const b = await tabFrom("203.0.113.9", [model, "tw-warm-b"], await newKeyPair());
    await serveJobs(a, "tw-warm-a", 20);
    await serveJobs(b, "tw-warm-b", 20);
    const message = `prompt longer than the context window. ${PHISHING}`;
    sayInvalid(a, message);
    sayInvalid(b, message);
    const res = await chat(model);
    expect(res.status).toBe(400);
    expect(OpenAIErrorBodySchema.parse(await res.json()).error.message).toBe(
      "Two independent tabs found the request invalid for this model: the prompt is longer than the model's context window.",
    );
    // Both were right: neither is held at fault for it (before session 14 the first one was).
    expect(await faultsOf(model)).toEqual([0, 0]);
  }, 20_000);

  it("an honest tab meeting prompts over its model's context window takes no fault and is not rested", async () => {
    // The reference tab reports WebLLM's ContextWindowSizeExceededError as bad_request. One
    // tab, on probation, cannot confirm it: each client gets a 502, as before. But the tab was
    // right, so it takes no fault, and six such requests in a minute do not make the circuit
    // breaker (> 5 failures in 60 s) rest it: the next request is served. Before, each was a
    // fault and a breaker failure, and the tab was rested for 5 minutes.
    const model = "tw-long-prompts";
    const t = await tabs.tab([model]);
    for (let i = 0; i < 6; i++) {
      const res = chat(model, {
        messages: [{ role: "user", content: `a very long document ${i}` }],
      });
      const job = await t.nextJob();
      t.send({
        type: "job.error",
        jobId: job.id,
        error: { code: "bad_request", message: "ContextWindowSizeExceededError: too long" },
      });
      expect((await res).status).toBe(502);
    }
    expect(await faultsOf(model)).toEqual([0]);
    const res = chat(model);
    t.serve(await t.nextJob(), ["ok"]);
    expect(ChatCompletionSchema.parse(await (await res).json()).choices[0]?.message.content).toBe(
      "ok",
    );
    // Each 502 waits out the test coordinator's short redispatch wait for another tab.
  }, 30_000);
});

describe("a false bad_request counts against its tab", () => {
  it("once a trusted tab answers the request, not before", async () => {
    const model = "tw-false-invalid";
    const witness = await tabFrom("198.51.100.20", [model, "tw-warm-w"], await newKeyPair());
    await serveJobs(witness, "tw-warm-w", 20);
    const liar = await tabs.tab([model], { keys: await newKeyPair() });
    // The witness is busy with its own job, so the request goes to the liar first.
    const held = chat("tw-warm-w");
    const heldJob = await witness.nextJob();
    const res = chat(model);
    const job = await liar.nextJob();
    liar.send({
      type: "job.error",
      jobId: job.id,
      error: { code: "bad_request", message: "too long" },
    });
    // Not yet at fault: the report may be true.
    expect(await faultsOf(model)).toEqual([0, 0]);
    witness.serve(heldJob, ["ok"]);
    expect((await held).status).toBe(200);
    witness.serve(await witness.nextJob(), ["an answer"]);
    expect(ChatCompletionSchema.parse(await (await res).json()).choices[0]?.message.content).toBe(
      "an answer",
    );
    expect(await faultsOf(model)).toEqual([0, 1]);
  }, 20_000);
});

/** The faults `GET /v1/nodes` shows for the tabs serving `model`, smallest first. */
async function faultsOf(model: string): Promise<number[]> {
  const body = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
    data: Array<{ models: string[]; trust: { faults: number } }>;
  };
  return body.data
    .filter((n) => n.models.includes(model))
    .map((n) => n.trust.faults)
    .sort((a, b) => a - b);
}
