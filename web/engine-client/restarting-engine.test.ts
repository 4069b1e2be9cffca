import * as Comlink from "comlink";
import { afterEach, describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { DeterministicEngine } from "../../test/support/deterministic-engine.js";
import { EngineError } from "../engine/inference-engine.js";
import { WorkerEngine } from "../engine-client/worker-engine.js";
import { exposeEngine } from "../engine-worker/engine-host.js";
import { RestartingEngine } from "./restarting-engine.js";

/** A "Worker" over a MessageChannel serving the deterministic engine; `crash()` kills it. */
const model: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};
const channels: MessageChannel[] = [];
afterEach(() => {
  for (const c of channels.splice(0)) (c.port1.close(), c.port2.close());
});

function spawnable() {
  const ports: MessagePort[] = [];
  const spawn = () => {
    const channel = new MessageChannel();
    channels.push(channel);
    exposeEngine(new DeterministicEngine(0), channel.port1 as unknown as Comlink.Endpoint);
    const port = channel.port2 as unknown as Worker & { terminate(): void };
    port.terminate = () => channel.port2.close();
    ports.push(channel.port2);
    return new WorkerEngine(port);
  };
  // What the browser does when a Worker dies: an "error" event on the Worker object.
  const crash = (i: number) => ports[i]!.dispatchEvent(new Event("error"));
  return { spawn, crash, ports };
}

describe("RestartingEngine", () => {
  it("reports a dead Worker once and loads into a fresh one on the next load", async () => {
    const { spawn, crash, ports } = spawnable();
    const engine = new RestartingEngine(spawn);
    const crashes: EngineError[] = [];
    engine.onCrash((e) => crashes.push(e));
    await engine.load(model, () => {});
    crash(0);
    await expect.poll(() => crashes.length).toBe(1);
    expect(crashes[0]?.code).toBe("worker_crashed");
    await expect(
      engine.chat(
        { messages: [{ role: "user", content: "x" }], sampling: { max_tokens: 3 } },
        () => {},
      ),
    ).rejects.toMatchObject({ code: "worker_crashed" });

    await engine.load(model, () => {});
    expect(engine.restarts).toBe(1);
    expect(ports).toHaveLength(2);
    const result = await engine.chat(
      { messages: [{ role: "user", content: "hello again" }], sampling: { max_tokens: 3 } },
      () => {},
    );
    expect(result.usage.completion_tokens).toBe(3);
  });
});
