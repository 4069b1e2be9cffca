import { describe, expect, it, vi } from "vitest";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { contributorHarness, TINY_MODEL } from "../../test/support/contributor-harness.js";
import { DeterministicEngine } from "../../test/support/deterministic-engine.js";
import type { ChatRequest, GenerationResult, OnDelta } from "../engine/inference-engine.js";

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
  const { engine, sockets, timers, connect, frames } = contributorHarness({
    engine: new SlowPrefillEngine(0),
    protocol: coordinatorProtocol,
    nodeId: "node-1",
    statusIntervalMs: 10_000,
  });
  await connect();
  const progress = () => frames().filter((f) => f.type === "job.progress");
  sockets.last.receive({
    type: "job.assign",
    job: {
      id: "job-1",
      model: TINY_MODEL.model_id,
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
