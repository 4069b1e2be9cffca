import { describe, expect, it, vi } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { DeterministicEngine } from "../../test/support/deterministic-engine.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import type { ChatRequest, GenerationResult, OnDelta } from "../engine/inference-engine.js";
import { Contributor } from "./contributor.js";

const model: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

/** An engine whose prefill lasts until the test opens the gate. */
class SlowPrefillEngine extends DeterministicEngine {
  open!: () => void;
  private readonly gate = new Promise<void>((r) => (this.open = r));
  override async chat(request: ChatRequest, onDelta: OnDelta): Promise<GenerationResult> {
    await this.gate;
    return super.chat(request, onDelta);
  }
}

async function serveSlowJob(coordinatorProtocol: number) {
  const engine = new SlowPrefillEngine(0);
  const sockets = new ScriptedSockets();
  const timers = new ManualTimers();
  const contributor = new Contributor({
    engine,
    url: "ws://localhost/v1/nodes/connect",
    adapter: {
      vendor: "google",
      architecture: "swiftshader",
      description: "",
      shaderF16: false,
      maxBufferSize: 1,
      maxStorageBufferBindingSize: 1,
    },
    agent: "test",
    identity: { prove: async () => null },
    onChange: () => {},
    createSocket: sockets.create,
    timers,
  });
  await contributor.start(model, () => {});
  sockets.last.open();
  sockets.last.receive({ type: "challenge", nonce: "nonce-0123456789abcdef" });
  await vi.waitFor(() => expect(sockets.last.frames().length).toBeGreaterThan(0));
  sockets.last.receive({
    type: "welcome",
    protocol: coordinatorProtocol,
    nodeId: "node-1",
    statusIntervalMs: 10_000,
  });
  const frames = () => sockets.last.frames().filter((f): f is TabMessage => f.type !== "ping");
  const progress = () => frames().filter((f) => f.type === "job.progress");
  sockets.last.receive({
    type: "job.assign",
    job: {
      id: "job-1",
      model: model.model_id,
      input: { kind: "chat", messages: [{ role: "user", content: "hello there" }] },
      sampling: { max_tokens: 3 },
    },
    attempt: 1,
  });
  await vi.waitFor(() => expect(frames().some((f) => f.type === "job.accept")).toBe(true));
  timers.advance(16_000); // a long prefill: three half intervals
  const during = progress().length;
  engine.open();
  await vi.waitFor(() => expect(frames().some((f) => f.type === "job.done")).toBe(true));
  timers.advance(20_000);
  return { during, after: progress().length, sample: progress()[0] };
}

describe("job.progress while a job prefills", () => {
  it("is sent every half status interval from accept to the first delta, to a protocol-2 coordinator", async () => {
    const { during, after, sample } = await serveSlowJob(PROTOCOL_VERSION);
    expect(during).toBe(3);
    expect(after).toBe(3);
    expect(sample).toEqual({ type: "job.progress", jobId: "job-1", phase: "prefill" });
  });

  it("is never sent to a protocol-1 coordinator (it would close on an unknown frame)", async () => {
    const { during, after } = await serveSlowJob(1);
    expect(during + after).toBe(0);
  });
});
