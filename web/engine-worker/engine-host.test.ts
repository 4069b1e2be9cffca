import * as Comlink from "comlink";
import { afterEach, describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import { EngineError, type LoadProgress } from "../engine/inference-engine.js";
import { WorkerEngine } from "../engine-client/worker-engine.js";
import { exposeEngine } from "./engine-host.js";

/**
 * The comlink boundary for real, over a MessageChannel: the page-side WorkerEngine talks to
 * exposeEngine() exactly as it does across the Worker boundary in the browser.
 */
const model: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

const channels: MessageChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) {
    c.port1.close();
    c.port2.close();
  }
});

function connect(engine = new DeterministicEngine(1)) {
  const channel = new MessageChannel();
  channels.push(channel);
  exposeEngine(engine, channel.port1 as unknown as Comlink.Endpoint);
  // WorkerEngine only needs postMessage/addEventListener/terminate from its Worker.
  const port = channel.port2 as unknown as Worker;
  (port as { terminate?: () => void }).terminate = () => channel.port2.close();
  return new WorkerEngine(port);
}

describe("engine host over comlink", () => {
  it("forwards progress, streams every delta before the result, and returns usage", async () => {
    const engine = connect();
    const progress: LoadProgress[] = [];
    await engine.load(model, (p) => progress.push(p));
    expect(progress.at(-1)?.progress).toBe(1);

    const request = {
      messages: [{ role: "user" as const, content: "alpha beta gamma delta" }],
      sampling: { max_tokens: 20 },
    };
    const deltas: string[] = [];
    const result = await engine.chat(request, (t) => deltas.push(t));
    const want = expectedOutput({ kind: "chat", messages: request.messages }, request.sampling);
    expect(deltas.join("")).toBe(want.text);
    expect(deltas.length).toBeGreaterThan(1);
    expect(result.usage).toEqual(want.usage);
    expect((await engine.stats()).generations).toBe(1);
  });

  it("turns failures into typed EngineErrors on the page side", async () => {
    const engine = connect();
    const err = await engine
      .chat({ messages: [{ role: "user", content: "x" }], sampling: { max_tokens: 5 } }, () => {})
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineError);
    expect(err).toMatchObject({ code: "not_loaded", message: "no model is loaded" });
  });

  it("abort reaches the engine while a generation runs", async () => {
    const engine = connect(new DeterministicEngine(5));
    await engine.load(model, () => {});
    let aborted = false;
    const result = await engine.complete(
      { prompt: "w ".repeat(50), sampling: { max_tokens: 60 } },
      () => {
        if (!aborted) {
          aborted = true;
          void engine.abort();
        }
      },
    );
    expect(result.finishReason).toBe("abort");
    expect(result.usage.completion_tokens).toBeLessThan(10);
  });
});
