import { describe, expect, it, vi } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import { decodeVector } from "../../shared/protocol/embedding-vectors.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { MAX_FRAME_BYTES } from "../../shared/protocol/node-messages.js";
import { vectorFrames } from "../../shared/protocol/vector-frames.js";
import {
  DeterministicEngine,
  embeddingOf,
  embedPromptTokens,
} from "../../test/support/deterministic-engine.js";
import { contributorHarness } from "../../test/support/contributor-harness.js";
import type { EmbedRequest, EmbedResult } from "../engine/inference-engine.js";

/**
 * The tab runtime serving an embedding job (protocol 6) through the real Contributor and
 * JobRunner over a scripted socket: accept, progress while the model reads, the vectors in
 * `job.vectors` frames under the frame limit, then `job.done`; a cancelled job sends no vectors.
 */

const model: ModelRecord = {
  model: "https://example.org/Embed-MLC",
  model_id: "Embed-MLC",
  model_lib: "https://example.org/embed.wasm",
  model_type: 1,
};

/** An engine whose embedding lasts until the test opens the gate. */
class GatedEngine extends DeterministicEngine {
  open!: () => void;
  private readonly gate = new Promise<void>((r) => (this.open = r));
  override async embed(request: EmbedRequest): Promise<EmbedResult> {
    await this.gate;
    return super.embed(request);
  }
}

async function tab() {
  const { engine, sockets, timers, connect, frames } = contributorHarness({
    engine: new GatedEngine(0),
    model,
    nodeId: "node-1",
    statusIntervalMs: 10_000,
  });
  await connect();
  const assign = (inputs: string[], dimensions = 8) => {
    const job: JobSpec = {
      id: "job-1",
      model: model.model_id,
      input: { kind: "embedding", inputs, dimensions },
      sampling: { max_tokens: 1 },
    };
    sockets.last.receive({ type: "job.assign", job, attempt: 1 });
  };
  return { engine, sockets, timers, frames, assign };
}

describe("an embedding job in the tab", () => {
  it("accepts, reports progress while embedding, sends the vectors in order, then done with the tokens read", async () => {
    const t = await tab();
    const inputs = ["alpha", "beta gamma", "delta"];
    t.assign(inputs);
    await vi.waitFor(() => expect(t.frames().some((f) => f.type === "job.accept")).toBe(true));
    t.timers.advance(11_000); // two half status intervals
    expect(t.frames().filter((f) => f.type === "job.progress")).toHaveLength(2);
    t.engine.open();
    await vi.waitFor(() => expect(t.frames().some((f) => f.type === "job.done")).toBe(true));
    const vectors = t.frames().flatMap((f) => (f.type === "job.vectors" ? f.vectors : []));
    expect(
      vectors.map((v) => Array.from((decodeVector(v, 8) as { values: Float32Array }).values)),
    ).toEqual(inputs.map((s) => Array.from(embeddingOf(s, 8))));
    const done = t.frames().find((f) => f.type === "job.done");
    expect(done).toMatchObject({
      finishReason: "stop",
      usage: { prompt_tokens: embedPromptTokens(inputs), completion_tokens: 0 },
    });
    // No progress once the answer is out.
    t.timers.advance(20_000);
    expect(t.frames().filter((f) => f.type === "job.progress")).toHaveLength(2);
    // Never any text.
    expect(t.frames().some((f) => f.type === "job.delta")).toBe(false);
  });

  it("a job cancelled while embedding ends with abort and sends no vectors", async () => {
    const t = await tab();
    t.assign(["alpha"]);
    await vi.waitFor(() => expect(t.frames().some((f) => f.type === "job.accept")).toBe(true));
    t.sockets.last.receive({ type: "job.cancel", jobId: "job-1", reason: "client went away" });
    t.engine.open();
    await vi.waitFor(() => expect(t.frames().some((f) => f.type === "job.done")).toBe(true));
    expect(t.frames().find((f) => f.type === "job.done")).toMatchObject({ finishReason: "abort" });
    expect(t.frames().some((f) => f.type === "job.vectors")).toBe(false);
  });
});

describe("vectorFrames", () => {
  it("cuts a large answer into frames under the frame limit, indices continuing", () => {
    const vectors = Array.from({ length: 512 }, (_, i) => embeddingOf(`text ${i}`, 768));
    const frames = vectorFrames("job-1", vectors);
    expect(frames.length).toBeGreaterThan(1);
    let next = 0;
    for (const f of frames) {
      expect(new TextEncoder().encode(JSON.stringify(f)).length).toBeLessThanOrEqual(
        MAX_FRAME_BYTES,
      );
      expect(f.index).toBe(next);
      next += f.vectors.length;
    }
    expect(next).toBe(512);
  });
});
