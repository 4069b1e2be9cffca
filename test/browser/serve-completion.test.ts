import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { Sampling } from "../../shared/protocol/job.js";
import {
  contribute,
  firstQ4f32Model,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * The foundation path end to end: the real contributor page, served by `wrangler dev`, runs in
 * headless Chromium with SwiftShader WebGPU; the contributor consents through the UI, the page's
 * real runtime (socket, coalescer, comlink host) registers with the real coordinator, and the
 * official `openai` client gets completions generated in that tab. Only the engine differs from
 * production: assets/engine-worker.js is routed to a bundle of the deterministic test engine.
 */

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let tab: ContributorPage;
let page: Page;
let openai: OpenAI;
let model = "";
let sockets: string[] = [];
const transcript: string[] = [];

function field(name: string) {
  return tab.field(name);
}

beforeAll(async () => {
  ({ server, browser } = co);
  // A short GPU benchmark (?bench-ms=): the tab measures before it connects.
  tab = await openContributorPage(browser, server.port, co.engine(), { path: "/?bench-ms=300" });
  page = tab.page;
  sockets = tab.sockets;
  openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
});

afterAll(() => {
  if (transcript.length) console.log(`openai client transcript:\n${transcript.join("\n")}`);
});

describe("a browser tab serves OpenAI-compatible completions", () => {
  it("shows the real WebGPU adapter (SwiftShader) and runs a compute shader on it", async () => {
    await page.waitForSelector('#adapter[data-webgpu="ok"]');
    expect(await field("architecture").textContent()).toMatch(/swiftshader/i);
    expect(await field("vendor").textContent()).not.toBe("");
    expect(await field("shader-f16").textContent()).toBe("no");
    expect(await field("max-storage-buffer-binding-size").textContent()).toMatch(/iB$/);

    // The adapter is real, not a report: double an array on it with WGSL.
    const doubled = await page.evaluate(async () => {
      // GPUBufferUsage / GPUMapMode flag values (TypeScript's DOM lib declares only the types).
      const STORAGE = 0x80,
        COPY_SRC = 0x04,
        COPY_DST = 0x08,
        MAP_READ = 0x01,
        READ = 0x01;
      const adapter = await navigator.gpu.requestAdapter();
      const device = await adapter!.requestDevice();
      const module = device.createShaderModule({
        code: `@group(0) @binding(0) var<storage, read_write> v: array<u32>;
               @compute @workgroup_size(4) fn main(@builtin(global_invocation_id) id: vec3u) {
                 v[id.x] = v[id.x] * 2u; }`,
      });
      const pipeline = device.createComputePipeline({
        layout: "auto",
        compute: { module, entryPoint: "main" },
      });
      const data = new Uint32Array([1, 2, 3, 21]);
      const buf = device.createBuffer({
        size: 16,
        usage: STORAGE | COPY_SRC | COPY_DST,
      });
      device.queue.writeBuffer(buf, 0, data);
      const read = device.createBuffer({
        size: 16,
        usage: MAP_READ | COPY_DST,
      });
      const enc = device.createCommandEncoder();
      const pass = enc.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(
        0,
        device.createBindGroup({
          layout: pipeline.getBindGroupLayout(0),
          entries: [{ binding: 0, resource: { buffer: buf } }],
        }),
      );
      pass.dispatchWorkgroups(1);
      pass.end();
      enc.copyBufferToBuffer(buf, 0, read, 0, 16);
      device.queue.submit([enc.finish()]);
      await read.mapAsync(READ);
      const out = [...new Uint32Array(read.getMappedRange())];
      device.destroy();
      return out;
    });
    expect(doubled).toEqual([2, 4, 6, 42]);
  });

  it("lists the models this GPU can serve, and excludes f16 ones with the reason", async () => {
    model = await firstQ4f32Model(page);
    const options = await page
      .locator("#model-select option")
      .evaluateAll((els) => els.map((e) => (e as HTMLOptionElement).value));
    expect(options.every((id) => !/q\d+f16/.test(id))).toBe(true);
    const excluded = await page.locator("#excluded-models li").allTextContents();
    expect(excluded.some((t) => /f16/.test(t) && /shader-f16/.test(t))).toBe(true);
  });

  it("connects only after consent, then loads the model and reports connected", async () => {
    expect(sockets).toEqual([]);
    await contribute(page, model);
    expect(await field("model").textContent()).toBe(model);
    expect(await page.locator("#load-progress").getAttribute("value")).toBe("100");
    expect(sockets).toHaveLength(1);
    expect(sockets[0]).toMatch(/\/v1\/nodes\/connect$/);

    const listed = await openai.models.list();
    const ids = listed.data.map((m) => m.id);
    transcript.push(`models.list() -> ${JSON.stringify(ids)}`);
    expect(ids).toContain(model);
  });

  it("answers a non-streaming chat completion with usage from the tab", async () => {
    const content = "Tell me about the tab that answers this question";
    const sampling: Sampling = { max_tokens: 64, temperature: 0, seed: 7 };
    const res = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content }],
      max_tokens: sampling.max_tokens,
      temperature: 0,
      seed: 7,
    });
    const want = expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, sampling);
    transcript.push(
      `chat.completions.create (non-stream) -> ${JSON.stringify({
        content: res.choices[0]?.message.content,
        finish_reason: res.choices[0]?.finish_reason,
        usage: res.usage,
      })}`,
    );
    expect(res.object).toBe("chat.completion");
    expect(res.model).toBe(model);
    expect(res.choices[0]?.message.content).toBe(want.text);
    expect(res.choices[0]?.finish_reason).toBe("stop");
    expect(res.usage).toMatchObject(want.usage);
  });

  it("streams a chat completion in several chunks, with a usage chunk", async () => {
    const content = "one two three four five six seven eight nine ten eleven twelve thirteen";
    const stop = ["twelve"];
    const stream = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content }],
      max_tokens: 100,
      stop,
      stream: true,
      stream_options: { include_usage: true },
    });
    const pieces: string[] = [];
    let usage: OpenAI.CompletionUsage | null | undefined;
    let finish: string | null | undefined;
    for await (const chunk of stream) {
      const c = chunk.choices[0];
      if (c?.delta.content) pieces.push(c.delta.content);
      if (c?.finish_reason) finish = c.finish_reason;
      if (chunk.usage) usage = chunk.usage;
    }
    const want = expectedOutput(
      { kind: "chat", messages: [{ role: "user", content }] },
      { max_tokens: 100, stop },
    );
    transcript.push(
      `chat.completions.create (stream) -> ${pieces.length} content chunks ${JSON.stringify(pieces)}, finish_reason=${finish}, usage=${JSON.stringify(usage)}`,
    );
    expect(pieces.join("")).toBe(want.text);
    expect(want.text.endsWith("eleven ")).toBe(true);
    expect(pieces.length).toBeGreaterThan(1);
    expect(finish).toBe("stop");
    expect(usage).toMatchObject(want.usage);
  });

  it("answers a plain-text completion and honours max_tokens", async () => {
    const prompt = "The quick brown fox jumps over the lazy dog";
    const res = await openai.completions.create({ model, prompt, max_tokens: 5 });
    const want = expectedOutput({ kind: "completion", prompt }, { max_tokens: 5 });
    transcript.push(
      `completions.create -> ${JSON.stringify({
        text: res.choices[0]?.text,
        finish_reason: res.choices[0]?.finish_reason,
        usage: res.usage,
      })}`,
    );
    expect(res.object).toBe("text_completion");
    expect(res.choices[0]?.text).toBe(want.text);
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(res.usage).toMatchObject(want.usage);
  });

  it("counts the jobs it served and shows the last job's speed", async () => {
    await expect.poll(() => field("jobs-served").textContent()).toBe("3");
    expect(Number(await field("tokens-per-second").textContent())).toBeGreaterThan(0);
  });

  it("stops generating in the tab when the client abandons a stream", async () => {
    // ~400 tokens at ~15 ms each (~6 s): far longer than the coordinator takes to cancel.
    const content = "word ".repeat(400).trim();
    const controller = new AbortController();
    const stream = await openai.chat.completions.create(
      { model, messages: [{ role: "user", content }], max_tokens: 1000, stream: true },
      { signal: controller.signal },
    );
    await page.waitForSelector('#status[data-state="busy"]');
    let received = "";
    try {
      for await (const chunk of stream) {
        received += chunk.choices[0]?.delta.content ?? "";
        if (received.length > 20) controller.abort();
      }
    } catch (err) {
      if (!controller.signal.aborted) throw err;
    }
    const started = Date.now();
    // The coordinator sends job.cancel, the tab interrupts its engine and is idle again; an
    // aborted job does not count as served.
    await page.waitForSelector('#status[data-state="idle"]');
    transcript.push(
      `chat.completions.create (stream, aborted by the client after ${received.length} chars) -> tab idle again after ${Date.now() - started} ms`,
    );
    expect(await field("jobs-served").textContent()).toBe("3");
  });
});

describe("a browser without WebGPU", () => {
  it("says so clearly and offers nothing to consent to", async () => {
    const context = await browser.newContext();
    // Hide WebGPU before the page's scripts run, as in a browser that lacks it.
    await context.addInitScript(() => {
      Object.defineProperty(Navigator.prototype, "gpu", { get: () => undefined });
    });
    const plain = await context.newPage();
    await plain.goto(`http://localhost:${server.port}/`);
    const alert = plain.locator('#adapter[data-webgpu="missing"] [role="alert"]');
    await alert.waitFor();
    expect(await alert.textContent()).toMatch(/no WebGPU/);
    expect(await plain.locator("#consent").count()).toBe(0);
    await context.close();
  });
});
