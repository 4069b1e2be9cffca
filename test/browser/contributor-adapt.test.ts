import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import {
  contribute,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { TEST_GPU_MEMORY_MB } from "../support/paced-engine.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * The tab adapts to its machine and its contributor, in the real page against the real
 * coordinator: a model too big for the GPU falls back to a smaller one with a message; the
 * dashboard says whom it serves ("serving … to a client in Frankfurt, DE"); with "pause while I
 * use this page" on, input pauses the tab and it resumes once the contributor is away; a sustained
 * drop of tokens/s against the tab's own baseline makes it back off. The engine Worker is routed to
 * the paced deterministic engine (test/support/paced-engine.ts: a 1024 MB pretend GPU whose speed
 * the test sets over a BroadcastChannel). `?idle-ms=` and `?backoff-ms=` shorten the waits.
 */
const IDLE_MS = 1500;
const BACKOFF_MS = 1500;
/** Needs a little more than the pretend GPU has: loading it runs out of memory. */
const TOO_BIG = "Qwen2.5-0.5B-Instruct-q4f32_1-MLC";

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let tab: ContributorPage;
let page: Page;
let openai: OpenAI;
let catalog: ModelRecord[] = [];
/** The model the tab serves after the fallback. */
let model = "";
/** Frames the tab sent, with the time the test saw them. */
const sent: { at: number; frame: { type: string; [k: string]: unknown } }[] = [];

beforeAll(async () => {
  ({ server, browser } = co);
  tab = await openContributorPage(browser, server.port, co.engine("paced"), {
    path: `/?bench-ms=300&idle-ms=${IDLE_MS}&backoff-ms=${BACKOFF_MS}`,
  });
  page = tab.page;
  page.on("websocket", (ws) =>
    ws.on("framesent", (f) => {
      const text = String(f.payload);
      if (text.startsWith("{")) sent.push({ at: Date.now(), frame: JSON.parse(text) });
    }),
  );
  openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
  catalog = ((await (await fetch(`${server.origin}/v1/catalog`)).json()) as { data: ModelRecord[] })
    .data;
});

const state = (s: string) => page.waitForSelector(`#status[data-state="${s}"]`);
const words = () => tab.field("state-words").textContent();
const statusFrames = () => sent.filter((s) => s.frame.type === "status");
const vram = (id: string) => catalog.find((m) => m.model_id === id)?.vram_required_MB;

/** Idle tabs for the model as the coordinator sees them (its view lags the tab's own a little). */
async function idleTabs(): Promise<number> {
  const list = (await (await fetch(`${server.origin}/v1/models`)).json()) as {
    data: { id: string; tabgrid: { idle: number } }[];
  };
  return list.data.find((m) => m.id === model)?.tabgrid.idle ?? 0;
}

/** Set the engine's pause between tokens (ms); resolves once the engine Worker confirms it. */
function pace(ms: number): Promise<void> {
  return page.evaluate(
    (ms) =>
      new Promise<void>((done) => {
        const channel = new BroadcastChannel("tabgrid-test");
        channel.onmessage = (e: MessageEvent<{ paced?: number }>) => {
          if (e.data?.paced === ms) (channel.close(), done());
        };
        channel.postMessage({ pace: ms });
      }),
    ms,
  );
}

/** One non-streamed job of `tokens` tokens (the deterministic engine answers word by word). */
function job(tokens: number, headers?: Record<string, string>) {
  const content = Array.from({ length: tokens }, (_, i) => `w${i}`).join(" ");
  return openai.chat.completions.create(
    { model, messages: [{ role: "user", content }], max_tokens: tokens },
    headers ? { headers } : {},
  );
}

describe("the tab adapts to its GPU and its contributor", () => {
  it("out of memory while loading: falls back to a smaller model and says so", async () => {
    expect(vram(TOO_BIG)).toBeGreaterThan(TEST_GPU_MEMORY_MB);
    await contribute(page, TOO_BIG);
    const note = (await page.locator("#load-notes").textContent()) ?? "";
    const m = /^(\S+) did not fit in this GPU's memory; trying the smaller (\S+) instead\.$/.exec(
      note,
    );
    expect(m?.[1], note).toBe(TOO_BIG);
    model = m?.[2] ?? "";
    console.log(`out-of-memory fallback: ${note}`);
    expect(vram(model)).toBeLessThanOrEqual(TEST_GPU_MEMORY_MB);
    expect(await tab.field("model").textContent()).toBe(model);
    // The coordinator was only ever offered the model that loaded.
    const hello = sent.find((s) => s.frame.type === "hello");
    expect(hello?.frame.models).toEqual([model]);
    expect(await page.locator("#status [role=alert]").count()).toBe(0);
  });

  it('says whom it serves: "serving <model> to a client in Frankfurt, DE"', async () => {
    await pace(200);
    const serving = `serving ${model} to a client in Frankfurt, DE`;
    const answer = job(6, { "x-tabgrid-place": "Frankfurt, DE" });
    await page.locator('[data-field="state-words"]', { hasText: serving }).waitFor();
    expect(await words()).toBe(serving);
    expect(await page.locator("#gpu-indicator").textContent()).toBe(`GPU working: ${serving}`);
    expect((await answer).choices[0]?.message.content).toBe("You said: w0 w1 w2 w3");
    await state("idle");
    expect(await words()).toBe(`ready: waiting for requests for ${model}`);
    await pace(10);
  });

  it("pause while I use this page: input pauses the tab, it resumes after the idle period", async () => {
    const from = sent.length;
    const reasonSent = () =>
      sent
        .slice(from)
        .some((s) => s.frame.type === "status" && s.frame.reason === "you are using this page");
    // Ticking the box is itself input on the page: the tab pauses at once.
    await page.locator("#pause-while-active").check();
    await expect.poll(reasonSent).toBe(true);
    // No input for IDLE_MS: the contributor is away, the tab serves again.
    await state("idle");
    expect(statusFrames().at(-1)?.frame).toMatchObject({ state: "idle" });

    // Moving the pointer over the page pauses it again, with the reason shown and sent.
    const again = sent.length;
    const inputAt = Date.now();
    await page.mouse.move(40, 40);
    await page.mouse.move(80, 60);
    await state("paused");
    expect(await words()).toBe("paused: you are using this page");
    expect(sent.slice(again).some((s) => s.frame.reason === "you are using this page")).toBe(true);
    await state("idle");
    const pausedMs = Date.now() - inputAt;
    console.log(`paused while active: serving again ${pausedMs} ms after the pointer moved`);
    expect(pausedMs).toBeGreaterThanOrEqual(IDLE_MS * 0.9);

    // Turned off: input no longer pauses (unticking is input too).
    const off = sent.length;
    await page.locator("#pause-while-active").uncheck();
    await page.mouse.move(10, 10);
    await expect
      .poll(
        () =>
          sent
            .slice(off)
            .filter((s) => s.frame.type === "status")
            .at(-1)?.frame.state,
      )
      .toBe("idle");
    await expect.poll(idleTabs).toBe(1);
    const res = await job(3);
    expect(res.choices[0]?.message.content).toBe("You said: w0");
    expect(await page.locator("#status").getAttribute("data-state")).toBe("idle");
  });

  it("backs off on a sustained drop of tokens/s against its own baseline", async () => {
    const from = sent.length;
    await pace(10);
    // Baseline: the median speed of the first jobs of at least 8 tokens.
    for (let i = 0; i < 3; i++) await job(10);
    // The "GPU" slows to a quarter; three slow jobs in a row are a sustained drop.
    await pace(40);
    for (let i = 0; i < 3; i++) await job(10);
    const dones = sent.slice(from).filter((s) => s.frame.type === "job.done");
    const speeds = dones.map((s) => Math.round(s.frame.decodeTokensPerSecond as number));
    console.log(`decode tok/s: baseline jobs ${speeds.slice(0, 3)}, slowed ${speeds.slice(3)}`);
    // The last slow job ends with the pause already decided, so no job is offered meanwhile.
    expect(dones.at(-1)?.frame.state).toBe("paused");
    await state("paused");
    const headline = "backing off: the GPU slowed down (thermal or power throttling?)";
    expect(await words()).toBe(`paused: ${headline}`);
    expect(await page.locator("#controls").getAttribute("data-causes")).toMatch(/\bthrottle\b/);
    expect(await page.locator("#control-status").textContent()).toMatch(
      /GPU share lowered to 50% while the GPU is slower than usual\. Speed: \d+% of this tab's own baseline\./,
    );
    expect(sent.slice(from).some((s) => s.frame.reason === headline)).toBe(true);

    // After the back-off period it serves again; at full speed it gets its share back.
    await state("idle");
    await expect.poll(idleTabs).toBe(1);
    await pace(10);
    const lowered = async () =>
      /lowered/.test((await page.locator("#control-status").textContent()) ?? "");
    // Each job near the baseline doubles the share again (timer jitter may need a second one).
    for (let i = 0; i < 3 && (await lowered()); i++) await job(10);
    expect(await lowered()).toBe(false);
    expect(await page.locator("#controls").getAttribute("data-causes")).toBe("");
  });
});
