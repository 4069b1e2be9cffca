import type { Browser, BrowserContext, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import { useCoordinator, type TestServer } from "../support/coordinator.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { loadSdk, openFrameTab, routeTestEngine, startHostSite } from "../support/embed-harness.js";
import { freePort } from "../support/wrangler-dev.js";

/**
 * The browser SDK (/sdk/tabgrid.js) in a real page against the real coordinator and a real tab
 * runtime: non-stream and stream (chat and plain-text completions), AbortSignal, resuming a stream whose connection drops mid-way
 * (by job id, after the characters received), each typed error the API can produce here, and a
 * page on another origin importing the SDK from the coordinator.
 */
type Sdk = typeof import("../../web/sdk/index.js");
type W = { sdk: Sdk; statuses: Array<{ state: string | null }> };

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let ctx: BrowserContext;
let tab: Page;
let page: Page;
let model = "";
let coordinator = "";

beforeAll(async () => {
  ({ server, browser } = co);
  ctx = await browser.newContext();
  await routeTestEngine(ctx, co.engine());
  coordinator = `http://localhost:${server.port}`;
  tab = await openFrameTab(ctx, coordinator, { withMedia: false });
  page = await ctx.newPage();
  page.on("pageerror", (err) => console.error(`[sdk page error] ${err.message}`));
  await page.goto(`${coordinator}/v1/models`);
  model = (JSON.parse((await page.textContent("body")) ?? "{}") as { data: Array<{ id: string }> })
    .data[0]!.id;
  await loadSdk(page);
});

const want = (content: string, max_tokens = 256) =>
  expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, { max_tokens });

describe("the browser SDK", () => {
  it("answers a non-streaming chat completion", async () => {
    const content = "what is a tab";
    const res = await page.evaluate(
      async ({ model, content }) => {
        const client = new (window as unknown as W).sdk.Tabgrid();
        return client.chat.completions.create({ model, messages: [{ role: "user", content }] });
      },
      { model, content },
    );
    expect(res.object).toBe("chat.completion");
    expect(res.choices[0]?.message.content).toBe(want(content).text);
    expect(res.usage).toMatchObject(want(content).usage);
  });

  it("streams in several chunks with finish_reason and usage", async () => {
    const content = "one two three four five six seven eight nine ten eleven twelve";
    const r = await page.evaluate(
      async ({ model, content }) => {
        const client = new (window as unknown as W).sdk.Tabgrid();
        const stream = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content }],
          max_tokens: 8,
          stream: true,
          stream_options: { include_usage: true },
        });
        const pieces: string[] = [];
        let finish: string | null = null;
        let usage: unknown = null;
        for await (const c of stream) {
          if (c.choices[0]?.delta.content) pieces.push(c.choices[0].delta.content);
          finish = c.choices[0]?.finish_reason ?? finish;
          usage = c.usage ?? usage;
        }
        return { pieces, finish, usage };
      },
      { model, content },
    );
    expect(r.pieces.join("")).toBe(want(content, 8).text);
    expect(r.pieces.length).toBeGreaterThan(1);
    expect(r.finish).toBe("length");
    expect(r.usage).toMatchObject(want(content, 8).usage);
  });

  it("answers plain-text completions.create, streamed and whole", async () => {
    const prompt = "Once upon a time there was a tab that";
    const r = await page.evaluate(
      async ({ model, prompt }) => {
        const client = new (window as unknown as W).sdk.Tabgrid();
        const stream = await client.completions.create({
          model,
          prompt,
          max_tokens: 6,
          stream: true,
        });
        const pieces: string[] = [];
        const objects = new Set<string>();
        let finish: string | null = null;
        for await (const c of stream) {
          objects.add(c.object);
          if (c.choices[0]?.text) pieces.push(c.choices[0].text);
          finish = c.choices[0]?.finish_reason ?? finish;
        }
        const whole = await client.completions.create({ model, prompt, max_tokens: 6 });
        return { pieces, objects: [...objects], finish, whole };
      },
      { model, prompt },
    );
    const expected = expectedOutput({ kind: "completion", prompt }, { max_tokens: 6 });
    expect(r.pieces.join("")).toBe(expected.text);
    expect(r.objects).toEqual(["text_completion"]);
    expect(expected.finishReason).toBe("length");
    expect(r.finish).toBe("length");
    expect(r.whole).toMatchObject({
      object: "text_completion",
      choices: [{ index: 0, text: expected.text, finish_reason: "length" }],
      usage: expected.usage,
    });
  });

  it("stops on AbortSignal with APIUserAbortError, and the tab stops generating", async () => {
    const r = await page.evaluate(
      async ({ model }) => {
        const client = new (window as unknown as W).sdk.Tabgrid();
        const controller = new AbortController();
        const stream = await client.chat.completions.create(
          {
            model,
            messages: [{ role: "user", content: "word ".repeat(300) }],
            max_tokens: 1000,
            stream: true,
          },
          { signal: controller.signal },
        );
        let received = "";
        try {
          for await (const c of stream) {
            received += c.choices[0]?.delta.content ?? "";
            if (received.length > 10) controller.abort();
          }
          return { name: "none", received };
        } catch (err) {
          return { name: (err as Error).name, received };
        }
      },
      { model },
    );
    expect(r.name).toBe("APIUserAbortError");
    expect(r.received.length).toBeGreaterThan(10);
    // The coordinator cancels the job after the resume grace; the tab is idle again.
    await tab.waitForFunction(() => (window as unknown as W).statuses.at(-1)?.state === "idle");
  });

  it("resumes a dropped stream by job id, without duplicated or missing text", async () => {
    const content = Array.from({ length: 60 }, (_, i) => `w${i}`).join(" ");
    const r = await page.evaluate(
      async ({ model, content }) => {
        const calls: string[] = [];
        let dropped = false;
        // The first response's connection breaks after a few chunks (as a flaky network would).
        const flaky: typeof fetch = async (input, init) => {
          const url = String(input);
          calls.push(`${init?.method ?? "GET"} ${new URL(url).pathname}${new URL(url).search}`);
          const res = await fetch(input, init);
          if (dropped || !res.body || (init?.method ?? "GET") !== "POST") return res;
          dropped = true;
          const reader = res.body.getReader();
          let seen = 0;
          const body = new ReadableStream<Uint8Array>({
            async pull(c) {
              const { value, done } = await reader.read();
              if (done) return c.close();
              seen++;
              if (seen > 3) {
                await reader.cancel();
                return c.error(new TypeError("network connection was lost"));
              }
              c.enqueue(value);
            },
          });
          return new Response(body, { status: res.status, headers: res.headers });
        };
        const client = new (window as unknown as W).sdk.Tabgrid({ fetch: flaky });
        const stream = await client.chat.completions.create({
          model,
          messages: [{ role: "user", content }],
          stream: true,
          tabgrid: { resume_grace_ms: 5000 },
        });
        let text = "";
        for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
        return { text, calls, resumes: stream.stats.resumes };
      },
      { model, content },
    );
    expect(r.text).toBe(want(content).text);
    expect(r.resumes).toBe(1);
    expect(r.calls[0]).toBe("POST /v1/chat/completions");
    expect(r.calls[1]).toMatch(
      /^GET \/v1\/jobs\/job_[a-z]+_[0-9a-f]{32}\/stream\?after=\d+&include_usage=true$/,
    );
    const after = Number(/after=(\d+)/.exec(r.calls[1]!)![1]);
    expect(after).toBeGreaterThan(0);
    expect(after).toBeLessThan(r.text.length);
  });

  it("raises typed errors: 400, 401, 404, connection", async () => {
    const deadPort = await freePort();
    const r = await page.evaluate(
      async ({ model, deadPort }) => {
        const { Tabgrid } = (window as unknown as W).sdk;
        const grab = async (fn: () => Promise<unknown>) => {
          try {
            await fn();
            return null;
          } catch (err) {
            const e = err as {
              name: string;
              status?: number;
              code?: string;
              param?: string;
              requestId?: string;
            };
            return {
              name: e.name,
              status: e.status,
              code: e.code,
              param: e.param,
              hasRequestId: !!e.requestId,
            };
          }
        };
        const client = new Tabgrid();
        return {
          bad: await grab(() =>
            client.chat.completions.create({
              model,
              messages: [{ role: "wizard" as "user", content: "x" }],
            }),
          ),
          unknownModel: await grab(() =>
            client.chat.completions.create({
              model: "No-Such-Model",
              messages: [{ role: "user", content: "x" }],
            }),
          ),
          badKey: await grab(() =>
            new Tabgrid({ apiKey: `tg_000000000000_${"A".repeat(43)}` }).chat.completions.create({
              model,
              messages: [{ role: "user", content: "x" }],
            }),
          ),
          offline: await grab(() =>
            new Tabgrid({ baseURL: `http://localhost:${deadPort}/v1` }).chat.completions.create({
              model,
              messages: [{ role: "user", content: "x" }],
            }),
          ),
        };
      },
      { model, deadPort },
    );
    expect(r.bad).toMatchObject({
      name: "BadRequestError",
      status: 400,
      param: "messages[0].role",
      hasRequestId: true,
    });
    expect(r.unknownModel).toMatchObject({
      name: "NotFoundError",
      status: 404,
      code: "model_not_found",
    });
    expect(r.badKey).toMatchObject({
      name: "AuthenticationError",
      status: 401,
      code: "invalid_api_key",
    });
    expect(r.offline).toMatchObject({ name: "APIConnectionError" });
  });

  it("works from a page on another origin that imports <coordinator>/sdk/tabgrid.js", async () => {
    // An ES module import across origins needs CORS on the file itself (dist/_headers).
    const head = await fetch(`${server.origin}/sdk/tabgrid.js`, {
      headers: { origin: "http://127.0.0.1:1" },
    });
    expect(head.headers.get("access-control-allow-origin")).toBe("*");
    await head.body?.cancel();
    const site = await startHostSite({
      "/": `<!doctype html><html><body><script type="module">
import { Tabgrid } from "${coordinator}/sdk/tabgrid.js";
window.ask = async (model, content) => {
  const client = new Tabgrid({ baseURL: "${coordinator}/v1" });
  const stream = await client.chat.completions.create({
    model, messages: [{ role: "user", content }], stream: true,
  });
  let text = "";
  for await (const c of stream) text += c.choices[0]?.delta.content ?? "";
  return { text, jobId: stream.jobId, origin: location.origin };
};
</script></body></html>`,
    });
    const third = await ctx.newPage();
    try {
      third.on("pageerror", (err) => console.error(`[third-party page error] ${err.message}`));
      await third.goto(`${site.origin}/`);
      await third.waitForFunction(() => "ask" in window);
      const content = "hello from another site";
      const r = await third.evaluate(
        ({ model, content }) =>
          (
            window as unknown as {
              ask(
                m: string,
                c: string,
              ): Promise<{ text: string; jobId: string | null; origin: string }>;
            }
          ).ask(model, content),
        { model, content },
      );
      expect(r.origin).toBe(site.origin);
      expect(new URL(coordinator).origin).not.toBe(site.origin);
      expect(r.text).toBe(want(content).text);
      // The job id header (used to resume) is readable across origins.
      expect(r.jobId).toMatch(/^job_[a-z]+_[0-9a-f]{32}$/);
    } finally {
      await third.close();
      await site.close();
    }
  });
});
