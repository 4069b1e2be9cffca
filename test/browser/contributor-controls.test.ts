import OpenAI from "openai";
import type { Browser, Page } from "playwright-core";
import { beforeAll, describe, expect, it, onTestFinished } from "vitest";
import {
  contribute,
  firstQ4f32Model,
  openContributorPage,
  type ContributorPage,
} from "../support/contributor-page.js";
import { expectedOutput } from "../support/deterministic-engine.js";
import { useCoordinator, type TestServer } from "../support/coordinator.js";

/**
 * Staying in control, in the real page against the real coordinator: pause holds new jobs back and
 * turns the GPU indicator off; the GPU share spaces jobs out; a scripted Battery Status API pauses
 * the tab on battery and resumes it on charge; and a GPU device destroyed under the engine is
 * recovered from (model reloaded, coordinator told). The engine Worker is routed to the
 * deterministic engine holding a real WebGPU device (test/support/gpu-bound-engine.ts).
 */

const co = useCoordinator();
let server: TestServer;
let browser: Browser;
let tab: ContributorPage;
let page: Page;
let openai: OpenAI;
let model = "";
/** Frames the tab sent, with the time the test saw them. */
const sent: { at: number; frame: { type: string; [k: string]: unknown } }[] = [];

beforeAll(async () => {
  ({ server, browser } = co);
  tab = await openContributorPage(browser, server.port, co.engine("control"), {
    path: "/?bench-ms=300",
    // A scripted Battery Status API: charging until the test says otherwise.
    initScript: () => {
      const battery = Object.assign(new EventTarget(), { charging: true, level: 0.8 });
      Object.defineProperty(Navigator.prototype, "getBattery", {
        configurable: true,
        value: () => Promise.resolve(battery),
      });
      // Frame types with the page's own clock: the test's view of frames arrives over CDP, late
      // and bunched when the machine is busy, too coarse to time the GPU share's rests. The page
      // hands each frame to the tab-link Worker, which owns the socket.
      const pageSent: { at: number; type: string }[] = [];
      const post = Worker.prototype.postMessage;
      Worker.prototype.postMessage = function (
        this: Worker,
        message: unknown,
        options?: StructuredSerializeOptions | Transferable[],
      ) {
        const m = message as { type?: string; msg?: { type?: string } } | null;
        if (m?.type === "send" && m.msg?.type)
          pageSent.push({ at: performance.now(), type: m.msg.type });
        post.call(this, message, options as StructuredSerializeOptions);
      };
      Object.assign(globalThis, {
        tabgridTestSent: pageSent,
        tabgridTestSetCharging(charging: boolean) {
          battery.charging = charging;
          battery.dispatchEvent(new Event("chargingchange"));
        },
      });
    },
  });
  page = tab.page;
  page.on("websocket", (ws) =>
    ws.on("framesent", (f) => {
      const text = String(f.payload);
      if (text.startsWith("{")) sent.push({ at: Date.now(), frame: JSON.parse(text) });
    }),
  );
  openai = new OpenAI({ baseURL: `${server.origin}/v1`, apiKey: "unused", maxRetries: 0 });
  model = await firstQ4f32Model(page);
  await contribute(page, model);
});

const state = (s: string) => page.waitForSelector(`#status[data-state="${s}"]`);
const words = () => tab.field("state-words").textContent();
const indicator = () => page.locator("#gpu-indicator").getAttribute("data-active");
const framesOf = (type: string) => sent.filter((s) => s.frame.type === type);

async function drain(stream: AsyncIterable<OpenAI.ChatCompletionChunk>): Promise<string> {
  let text = "";
  for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
  return text;
}

describe("the contributor stays in control", () => {
  it("pause holds new jobs back and the GPU indicator off; resume serves them", async () => {
    expect(await indicator()).toBe("false");
    await page.getByRole("button", { name: "Pause" }).click();
    await state("paused");
    expect(await words()).toBe("paused: paused by you");
    expect(await indicator()).toBe("false");

    const content = "held back while the tab is paused";
    // The stream's response headers arrive once the coordinator holds the job (queued).
    const stream = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content }],
      max_tokens: 40,
      stream: true,
    });
    const acceptsBefore = framesOf("job.accept").length;
    expect(await indicator()).toBe("false");
    expect(await page.locator("#status").getAttribute("data-state")).toBe("paused");

    const resumedAt = Date.now();
    await page.getByRole("button", { name: "Resume" }).click();
    await state("idle");
    // A coordinator that queues for paused tabs serves it now; one that still assigns it to the
    // paused tab got a refusal (job.error no_capacity) instead. Either way the tab ran nothing
    // while paused.
    const held = await drain(stream).catch((err: unknown) => `refused: ${String(err)}`);
    console.log(`request made while paused -> ${held.slice(0, 80)}`);
    const refusedWhilePaused = sent.some(
      (s) =>
        s.frame.type === "job.error" &&
        s.at < resumedAt &&
        (s.frame.error as { code: string }).code === "no_capacity",
    );
    expect(held.startsWith("refused") ? refusedWhilePaused : true).toBe(true);
    const accepts = framesOf("job.accept");
    expect(accepts.slice(acceptsBefore).every((a) => a.at >= resumedAt)).toBe(true);

    // After resuming, the tab serves, and the indicator shows it while it works.
    const working = page.waitForSelector('#gpu-indicator[data-active="true"]');
    const text = await drain(
      await openai.chat.completions.create({
        model,
        messages: [{ role: "user", content }],
        max_tokens: 40,
        stream: true,
      }),
    );
    await working;
    expect(text).toBe(
      expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, { max_tokens: 40 })
        .text,
    );
    await state("idle");
    expect(await indicator()).toBe("false");
  });

  it("the GPU share spaces jobs: at 50 % the tab rests as long as the job took", async () => {
    // Keyboard only: the share slider is a native range input.
    await page.locator("#gpu-share").focus();
    for (let i = 0; i < 5; i++) await page.keyboard.press("ArrowLeft");
    expect(await page.locator("#gpu-share-value").textContent()).toBe("50%");
    // Back to 100 % whatever happens here: the setting persists, and a rest after every job would
    // change what the later tests see.
    onTestFinished(async () => {
      await page.locator("#gpu-share").focus();
      await page.keyboard.press("End");
      expect(await page.locator("#gpu-share-value").textContent()).toBe("100%");
    });

    const from = sent.length;
    const pageSent = () =>
      page.evaluate(
        () =>
          (globalThis as unknown as { tabgridTestSent: { at: number; type: string }[] })
            .tabgridTestSent,
      );
    const pageFrom = (await pageSent()).length;
    // Retries: a coordinator that assigns to a resting tab gets a refusal and the client retries.
    const patient = openai.withOptions({ maxRetries: 8 });
    const ask = (content: string) =>
      patient.chat.completions.create({
        model,
        messages: [{ role: "user", content }],
        max_tokens: 30,
      });
    const words30 = "a b c d e f g h i j k l m n o p q r s t u v w x y z aa bb cc dd";
    await Promise.all([ask(`one ${words30}`), ask(`two ${words30}`)]);
    const frames = sent.slice(from);
    const refusals = frames.filter((s) => s.frame.type === "job.error").length;
    expect(frames.filter((s) => s.frame.type === "job.accept")).toHaveLength(2);
    const timed = (await pageSent()).slice(pageFrom);
    const accepts = timed.filter((s) => s.type === "job.accept");
    const dones = timed.filter((s) => s.type === "job.done");
    expect(accepts).toHaveLength(2);
    const firstJobMs = dones[0]!.at - accepts[0]!.at;
    const gapMs = accepts[1]!.at - dones[0]!.at;
    console.log(
      `duty cycle at 50 %: first job ${Math.round(firstJobMs)} ms, rest before the next ${Math.round(gapMs)} ms (${refusals} assignments refused while resting)`,
    );
    expect(
      frames.some(
        (s) => s.frame.type === "status" && s.frame.reason === "resting (GPU share limit)",
      ),
    ).toBe(true);
    // The rest is the job's own duration (measured in the tab from its start, a little after the
    // accept frame); both figures are on the page's clock.
    expect(gapMs).toBeGreaterThanOrEqual(firstJobMs * 0.8);
  });

  it("pauses on battery and resumes when charging (Battery Status API)", async () => {
    await page.evaluate(() =>
      (
        globalThis as unknown as { tabgridTestSetCharging(c: boolean): void }
      ).tabgridTestSetCharging(false),
    );
    await state("paused");
    expect(await words()).toBe("paused: on battery");
    // The last status the coordinator heard (a ping may follow it: pings keep their own beat).
    const lastStatus = () => sent.filter((s) => s.frame.type === "status").at(-1)?.frame;
    expect(lastStatus()).toMatchObject({
      type: "status",
      state: "paused",
      reason: "on battery",
    });

    await page.evaluate(() =>
      (
        globalThis as unknown as { tabgridTestSetCharging(c: boolean): void }
      ).tabgridTestSetCharging(true),
    );
    await state("idle");
    expect(lastStatus()).toMatchObject({ type: "status", state: "idle" });
  });

  it("settings persist across a reload", async () => {
    await page.locator("#pause-while-active").check();
    await page.reload();
    await page.waitForSelector("#pause-while-active");
    expect(await page.locator("#pause-while-active").isChecked()).toBe(true);
    await page.locator("#pause-while-active").uncheck();
    expect(await page.locator("#pause-on-battery").isChecked()).toBe(true);
    await contribute(page, model);
  });

  it("recovers from a lost GPU device: tells the coordinator, reloads the model, serves again", async () => {
    const from = sent.length;
    // Test-only hook of the routed test Worker: destroy its GPU device, wait until WebGPU reports it lost.
    await page.evaluate(
      () =>
        new Promise<void>((done) => {
          const channel = new BroadcastChannel("tabgrid-test");
          channel.onmessage = (e) => {
            if (e.data === "device-lost") (channel.close(), done());
          };
          channel.postMessage("destroy-device");
        }),
    );
    // The next job meets the lost device; the coordinator may retry it on this tab once recovered.
    await openai.chat.completions
      .create({ model, messages: [{ role: "user", content: "after the loss" }], max_tokens: 10 })
      .catch(() => null);
    await expect
      .poll(() =>
        sent
          .slice(from)
          .some(
            (s) =>
              s.frame.type === "status" &&
              s.frame.state === "loading" &&
              s.frame.reason === "device_lost: reloading the model",
          ),
      )
      .toBe(true);
    const errors = sent.slice(from).filter((s) => s.frame.type === "job.error");
    expect(errors[0]?.frame).toMatchObject({ error: { code: "device_lost" } });
    await page.waitForSelector('#status[data-state="idle"][data-connection="connected"]');
    expect(await tab.field("model").textContent()).toBe(model);
    console.log(
      `device lost transcript: ${sent
        .slice(from)
        .map((s) => JSON.stringify(s.frame).slice(0, 120))
        .join(" | ")}`,
    );

    const content = "served on the new device";
    const res = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content }],
      max_tokens: 20,
    });
    expect(res.choices[0]?.message.content).toBe(
      expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, { max_tokens: 20 })
        .text,
    );
  });

  it("restarts a crashed engine Worker and serves again", async () => {
    const from = sent.length;
    await page.evaluate(() => new BroadcastChannel("tabgrid-test").postMessage("crash-worker"));
    await expect
      .poll(() =>
        sent
          .slice(from)
          .some(
            (s) =>
              s.frame.type === "status" && s.frame.reason === "worker_crashed: reloading the model",
          ),
      )
      .toBe(true);
    await page.waitForSelector('#status[data-state="idle"][data-connection="connected"]');
    const content = "served by the restarted worker";
    const res = await openai.chat.completions.create({
      model,
      messages: [{ role: "user", content }],
      max_tokens: 20,
    });
    expect(res.choices[0]?.message.content).toBe(
      expectedOutput({ kind: "chat", messages: [{ role: "user", content }] }, { max_tokens: 20 })
        .text,
    );
  });
});
