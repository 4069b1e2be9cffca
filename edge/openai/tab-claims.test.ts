import { afterEach, describe, expect, it } from "vitest";
import { encodeVector } from "../../shared/protocol/embedding-vectors.js";
import { embeddingOf } from "../../test/support/deterministic-engine.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { faultsAndJobs } from "../../test/workerd/trust-helpers.js";
import { DELETE_ACCOUNT, PARIS, askWeather } from "../../test/workerd/weather-tool.js";

/**
 * Audit ("trust no tab", session 14): what a lying tab could put into a client's answer besides
 * the answer's text — the `finish_reason` it claims, and embedding vectors that pass the count,
 * length and finiteness checks but are no embedding. Each test's claim reached the client
 * unchecked on the code before (the "Before" comments); an honest tab is there to take the job
 * over once the liar is refused.
 */
const client = workerdOpenAI();
const tabs: ScriptedTab[] = [];
const engineTabs: EngineTab[] = [];
afterEach(() => {
  tabs.splice(0).forEach((t) => t.close());
  engineTabs.splice(0).forEach((t) => t.close());
});

async function tab(model: string): Promise<ScriptedTab> {
  const t = await ScriptedTab.connect([model]);
  tabs.push(t);
  return t;
}

/** A tab that answers its next job with `answer`, ending with "stop" (an honest tab's answer). */
async function answering(model: string, answer: string): Promise<ScriptedTab> {
  const t = await tab(model);
  void t.next("job.assign").then(({ job }) => {
    t.accept(job);
    t.delta(job, 0, answer);
    t.done(job, "stop", { completion_tokens: 8 });
  });
  return t;
}

describe("a tab's finish_reason", () => {
  it("plain text: 'length' after 5 bytes of max_tokens 256 (a tiny prompt) does not reach the client", async () => {
    // Before: structure-check.ts looked at `length` only for structured answers, so the tab's
    // word went out; it also escaped the audit of its stop (audits.ts scores "stop" answers').
    // Now edge/region/length-claim.ts: the tab stopped early, and another tab continues.
    const model = "tc-plain-length";
    const liar = await tab(model);
    const pending = client.chat.completions.create({
      model,
      messages: [{ role: "user", content: "What is the capital of France? Explain." }],
      max_tokens: 256,
    });
    const { job } = await liar.next("job.assign");
    await answering(model, "The capital of France is Paris, a city on the Seine.");
    liar.accept(job);
    liar.delta(job, 0, "Paris");
    // 5 bytes are at most 6 tokens of 256, and the prompt is far from any context window.
    liar.done(job, "length", { completion_tokens: 1 });
    const res = await pending;
    const choice = res.choices[0]!;
    const what = `"${choice.message.content}", ${res.usage?.completion_tokens} of 256 tokens`;
    // Before: "length" on "Paris", 1 of 256 tokens — the client was told its answer was cut at
    // max_tokens after one token.
    expect(choice.finish_reason, what).not.toBe("length");
  });

  it("tools with a client's stop string: 'length' after one token of 4,096 does not pass an unoffered tool call to the client", async () => {
    // Before: structure-check.ts returned null whenever the request had `stop` strings, before
    // its `length` check — but a stop string the answer reached ends it with "stop", never
    // "length". The Worker then sent the cut envelope as raw content (response-format.ts
    // toolAnswerOf), unchecked, and the tab was credited a finished job.
    const model = "tc-tools-stop-length";
    const liar = await tab(model);
    const pending = askWeather(client, model, { stop: ["\n\n"] });
    const { job } = await liar.next("job.assign");
    await answering(model, `{"tool_calls":[${PARIS}]}`);
    liar.accept(job);
    liar.delta(job, 0, DELETE_ACCOUNT);
    liar.done(job, "length", { completion_tokens: 1 });
    const res = await pending;
    // Before: status 200, finish_reason "length", message.content = the delete_account envelope.
    expect(JSON.stringify(res)).not.toContain("delete_account");
    expect(res.status).toBe(200);
    expect(await faultsAndJobs(liar)).toEqual({ faults: 1, jobs: 0 });
  });
});

describe("a tab's embedding vectors", () => {
  it("all-zero vectors (norm 0, no embedding model's output) are refused and the job fails over", async () => {
    // Before: decodeVector checked only the length and that each value is finite, so a vector
    // of zeros passed; the client's cosine similarity with it is 0/0 = NaN.
    const model = "snowflake-arctic-embed-s-q0f32-MLC-b4";
    const liar = await tab(model);
    const pending = client.embeddings.create({
      model,
      input: ["alpha", "beta"],
      encoding_format: "float",
    });
    const { job } = await liar.next("job.assign");
    const honest = await EngineTab.connect(model);
    engineTabs.push(honest);
    liar.accept(job);
    const zero = encodeVector(new Float32Array(384));
    liar.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [zero, zero] });
    liar.done(job, "stop", { completion_tokens: 0 });
    const res = await pending;
    const norms = res.data.map((d) => Math.hypot(...d.embedding));
    // Before: [0, 0] — the liar's vectors, with 200.
    expect(norms, "norms of the vectors the client got").not.toContain(0);
    expect(res.data[0]!.embedding).toEqual(Array.from(embeddingOf("alpha", 384)));
  });
});
