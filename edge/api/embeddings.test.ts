import { SELF } from "cloudflare:test";
import { OpenAIEmbeddings } from "@langchain/openai";
import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { EmbeddingResponseSchema } from "../../shared/openai/embeddings.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { ModelListSchema } from "../../shared/openai/models.js";
import { base64ToBytes, encodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { embeddingOf, embedPromptTokens } from "../../test/support/deterministic-engine.js";
import { post, useTabs } from "../../test/workerd/tab-helpers.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/**
 * POST /v1/embeddings against the coordinator in workerd: the official `openai` client and
 * LangChain's `OpenAIEmbeddings`, pointed at Tabgrid by base URL only, get the vectors of tabs
 * running the deterministic engine's embedding model (a unit vector drawn from a hash of the text);
 * scripted tabs that answer wrongly are tab faults and the job moves to another tab.
 */

/** The catalog's snowflake-arctic-embed models (WebLLM's prebuilt list): s gives 384 values, m 768. */
const SMALL = "snowflake-arctic-embed-s-q0f32-MLC-b4";
const SMALL_B32 = "snowflake-arctic-embed-s-q0f32-MLC-b32";
const MEDIUM = "snowflake-arctic-embed-m-q0f32-MLC-b4";
const MEDIUM_B32 = "snowflake-arctic-embed-m-q0f32-MLC-b32";

const fetchSelf = (url: RequestInfo | URL, init?: RequestInit) =>
  SELF.fetch(url as string, init as RequestInit);

const client = workerdOpenAI();

const engineTabs: EngineTab[] = [];
afterEach(() => engineTabs.splice(0).forEach((t) => t.close()));
async function serving(model: string): Promise<EngineTab> {
  const t = await EngineTab.connect(model);
  engineTabs.push(t);
  return t;
}
const tabs = useTabs();

/** What the deterministic model gives, as the numbers a client reads (float32 precision). */
const expected = (text: string, dims: number) => Array.from(embeddingOf(text, dims));

async function refusal(body: object): Promise<{ status: number; param: string | null }> {
  const res = await post("/embeddings", body);
  const err = OpenAIErrorBodySchema.parse(await res.json());
  return { status: res.status, param: err.error.param };
}

describe("embeddings with the openai client", () => {
  it("float: one vector per input, in order, of the model's length; usage counts the inputs", async () => {
    const tab = await serving(SMALL);
    const input = ["The quick brown fox", "jumps over", "the lazy dog"];
    const res = await client.embeddings.create({ model: SMALL, input, encoding_format: "float" });
    expect(res.object).toBe("list");
    expect(res.model).toBe(SMALL);
    expect(res.data.map((d) => d.index)).toEqual([0, 1, 2]);
    for (const [i, d] of res.data.entries()) {
      expect(d.embedding).toHaveLength(384);
      expect(d.embedding).toEqual(expected(input[i]!, 384));
    }
    // The tab's count (its own tokenizer), within the coordinator's bound.
    expect(res.usage).toEqual({
      prompt_tokens: embedPromptTokens(input),
      total_tokens: embedPromptTokens(input),
    });
    // The tab got one embedding job with the texts and the model's vector length.
    expect(tab.jobs[0]?.input).toEqual({ kind: "embedding", inputs: input, dimensions: 384 });
  });

  it("base64 (the client's default): the same vectors, decoded by the client", async () => {
    await serving(SMALL);
    const res = await client.embeddings.create({ model: SMALL, input: "one string" });
    expect(res.data).toHaveLength(1);
    expect(res.data[0]?.embedding).toEqual(expected("one string", 384));
    // On the wire: little-endian float32 bytes in base64, as OpenAI sends them.
    const raw = await post("/embeddings", {
      model: SMALL,
      input: "one string",
      encoding_format: "base64",
    });
    const body = EmbeddingResponseSchema.parse(await raw.json());
    const bytes = base64ToBytes(body.data[0]!.embedding as string)!;
    expect(Array.from(new Float32Array(bytes.buffer))).toEqual(expected("one string", 384));
  });

  it("a large batch (LangChain's default 512 inputs) comes back whole, over several frames", async () => {
    await serving(MEDIUM);
    const input = Array.from({ length: 512 }, (_, i) => `document number ${i}`);
    const res = await client.embeddings.create({ model: MEDIUM, input });
    expect(res.data).toHaveLength(512);
    expect(res.data[511]?.embedding).toEqual(expected(input[511]!, 768));
    expect(res.data.every((d, i) => d.index === i && d.embedding.length === 768)).toBe(true);
  }, 30_000);

  it("GET /v1/models says which served models are embedding models", async () => {
    await serving(SMALL);
    const models = ModelListSchema.parse(
      await (await SELF.fetch("http://tabgrid.test/v1/models")).json(),
    );
    const embed = models.data.find((m) => m.id === SMALL);
    expect(embed?.capabilities).toMatchObject({
      embeddings: true,
      chat: false,
      completions: false,
    });
  });
});

describe("embeddings with LangChain", () => {
  it("OpenAIEmbeddings embedDocuments and embedQuery, by base URL only", async () => {
    await serving(SMALL_B32);
    const embeddings = new OpenAIEmbeddings({
      model: SMALL_B32,
      apiKey: "unused-locally",
      maxRetries: 0,
      configuration: { baseURL: "http://tabgrid.test/v1", fetch: fetchSelf },
    });
    const docs = await embeddings.embedDocuments(["first document", "second document"]);
    expect(docs).toEqual([expected("first document", 384), expected("second document", 384)]);
    expect(await embeddings.embedQuery("a question")).toEqual(expected("a question", 384));
  });
});

describe("embedding requests Tabgrid refuses, naming the field", () => {
  it.each([
    ["token ids", { input: [1, 2, 3] }, "input"],
    ["arrays of token ids", { input: [[1, 2], [3]] }, "input[0]"],
    ["an empty string", { input: ["a", ""] }, "input[1]"],
    ["no input", {}, "input"],
    ["too many inputs", { input: Array.from({ length: 513 }, () => "x") }, "input"],
    ["an input over 16 KiB", { input: "x".repeat(16 * 1024 + 1) }, "input"],
    ["dimensions the model cannot give", { input: "x", dimensions: 128 }, "dimensions"],
    ["an unknown encoding", { input: "x", encoding_format: "int8" }, "encoding_format"],
    ["an unknown field", { input: "x", truncate: true }, "truncate"],
  ])("%s", async (_, body, param) => {
    const r = await refusal({ model: SMALL, ...body });
    expect(r).toEqual({ status: 400, param });
  });

  it("a chat model is not an embedding model (400), an unknown model is not found (404)", async () => {
    expect(await refusal({ model: "Qwen2.5-0.5B-Instruct-q4f32_1-MLC", input: "x" })).toEqual({
      status: 400,
      param: "model",
    });
    expect(await refusal({ model: "no-such-model", input: "x" })).toEqual({
      status: 404,
      param: "model",
    });
  });

  it("chat and completions for an embedding model are a 400 naming model", async () => {
    const messages = [{ role: "user", content: "hi" }];
    for (const [path, body] of [
      ["/chat/completions", { model: SMALL, messages }],
      ["/completions", { model: SMALL, prompt: "hi" }],
    ] as const) {
      const res = await post(path, body);
      expect(res.status).toBe(400);
      expect(OpenAIErrorBodySchema.parse(await res.json()).error.param).toBe("model");
    }
  });

  it("dimensions equal to the model's own length are honoured", async () => {
    await serving(SMALL);
    const res = await client.embeddings.create({ model: SMALL, input: "x", dimensions: 384 });
    expect(res.data[0]?.embedding).toHaveLength(384);
  });
});

/**
 * Answer an embedding job wrongly — but completely, with `job.done` — in one of the ways a faulty
 * or lying tab could; returns whether the tab is still on the job when the coordinator sees the
 * fault (then it tells the tab to stop). Inputs: "alpha", "beta".
 */
const wrongAnswers: [string, string, (t: ScriptedTab, job: JobSpec) => boolean][] = [
  [
    "vectors of the wrong length",
    MEDIUM,
    (t, job) => {
      const v = encodeVector([1, 2, 3]);
      t.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [v, v] });
      t.done(job, "stop", { completion_tokens: 0 });
      return true;
    },
  ],
  [
    "a value that is not a finite number",
    MEDIUM_B32,
    (t, job) => {
      const v = embeddingOf("alpha", 768);
      v[5] = Number.NaN;
      const ok = encodeVector(embeddingOf("beta", 768));
      t.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [encodeVector(v), ok] });
      t.done(job, "stop", { completion_tokens: 0 });
      return true;
    },
  ],
  [
    "done with fewer vectors than inputs",
    SMALL_B32,
    (t, job) => {
      const v = encodeVector(embeddingOf("alpha", 384));
      t.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [v] });
      t.done(job, "stop", { completion_tokens: 0 });
      return false;
    },
  ],
  [
    "text besides the vectors",
    SMALL,
    (t, job) => {
      t.delta(job, 0, "not a vector");
      const vectors = ["alpha", "beta"].map((s) => encodeVector(embeddingOf(s, 384)));
      t.send({ type: "job.vectors", jobId: job.id, index: 0, vectors });
      t.done(job, "stop", { completion_tokens: 0 });
      return true;
    },
  ],
];

describe("a tab's embedding answer is checked; a wrong one is the tab's fault and fails over", () => {
  it.each(wrongAnswers)("%s", async (_, model, answerWrongly) => {
    const dims = model.startsWith("snowflake-arctic-embed-m") ? 768 : 384;
    const bad = await tabs.tab([model]);
    const input = ["alpha", "beta"];
    const pending = client.embeddings.create({ model, input, encoding_format: "float" });
    const job = await bad.nextJob();
    // A second tab joins; the job moves to it once the first answer is refused.
    const good = await serving(model);
    const moved = bad.next("job.cancel");
    bad.accept(job);
    if (answerWrongly(bad, job)) expect((await moved).jobId).toBe(job.id);
    const res = await pending;
    expect(res.data.map((d) => d.embedding)).toEqual(input.map((t) => expected(t, dims)));
    expect(good.jobs.map((j) => j.id)).toEqual([job.id]);
  });

  it("usage is the coordinator's bound, not the tab's claim", async () => {
    const liar = await tabs.tab([MEDIUM]);
    const pending = post("/embeddings", { model: MEDIUM, input: "hello world" });
    const job = await liar.nextJob();
    liar.accept(job);
    const v = encodeVector(embeddingOf("hello world", 768));
    liar.send({ type: "job.vectors", jobId: job.id, index: 0, vectors: [v] });
    liar.done(job, "stop", { prompt_tokens: 1_000_000, completion_tokens: 0 });
    const body = EmbeddingResponseSchema.parse(await (await pending).json());
    // 11 bytes, one input's markers (8) and the prompt's (32): usage-bounds.ts promptTokenCap.
    expect(body.usage).toEqual({ prompt_tokens: 51, total_tokens: 51 });
  });
});
