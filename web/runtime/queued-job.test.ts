import { describe, expect, it, vi } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { ScriptedSockets } from "../../test/support/scripted-socket.js";
import {
  EngineError,
  type ChatRequest,
  type GenerationResult,
} from "../engine/inference-engine.js";
import { Contributor } from "./contributor.js";
import type { ContributorView } from "./tab-status.js";

const model: ModelRecord = {
  model: "https://example.org/Tiny-q4f32_1-MLC",
  model_id: "Tiny-q4f32_1-MLC",
  model_lib: "https://example.org/tiny.wasm",
};

function job(id: string, content: string, modelId = model.model_id): JobSpec {
  return {
    id,
    model: modelId,
    input: { kind: "chat", messages: [{ role: "user", content }] },
    sampling: { max_tokens: 50 },
  };
}

function setup(engine = new DeterministicEngine(0)) {
  const sockets = new ScriptedSockets();
  const timers = new ManualTimers();
  const waiters: { pred: (v: ContributorView) => boolean; resolve: () => void }[] = [];
  const stored: string[] = [];
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
    identity: {
      prove: async (nonce: string) => {
        stored.push(nonce);
        return null;
      },
    },
    onChange: (v) => {
      for (const w of [...waiters])
        if (w.pred(v)) (waiters.splice(waiters.indexOf(w), 1), w.resolve());
    },
    createSocket: sockets.create,
    timers,
  });
  /** Resolves on the first view change that satisfies `pred` (an event, not a sleep). */
  const until = (pred: (v: ContributorView) => boolean) =>
    new Promise<void>((resolve) => waiters.push({ pred, resolve }));
  const connect = async () => {
    await contributor.start(model, () => {});
    sockets.last.open();
    sockets.last.receive({ type: "challenge", nonce: "nonce-0123456789abcdef" });
    // The hello is built asynchronously (signing); wait until it has been sent.
    await vi.waitFor(() => expect(sockets.last.frames().length).toBeGreaterThan(0));
    sockets.last.receive({
      type: "welcome",
      protocol: PROTOCOL_VERSION,
      nodeId: "node-assigned-1",
      statusIntervalMs: 15_000,
    });
  };
  const frames = () => sockets.last.frames().filter((f): f is TabMessage => f.type !== "ping");
  return { sockets, contributor, until, connect, frames, stored };
}

/**
 * Protocol 3: a busy tab holds one job the coordinator queued behind its running one and starts
 * it the moment the running job ends, without showing idle in between.
 */
describe("a job queued behind the running one", () => {
  it("starts when the running job ends, without the tab going idle in between", async () => {
    const { sockets, until, connect, frames } = setup(new DeterministicEngine(2));
    await connect();
    const both = until((v) => v.jobsServed === 2);
    sockets.last.receive({ type: "job.assign", job: job("job-1", "a b c d e f"), attempt: 1 });
    sockets.last.receive({
      type: "job.assign",
      job: job("job-2", "x y"),
      attempt: 1,
      queued: true,
    });
    await both;
    const out = frames().slice(1);
    expect(out.filter((f) => f.type === "job.error")).toEqual([]);
    const kinds = out
      .filter((f) => f.type !== "job.delta")
      .map((f) => ("jobId" in f ? `${f.type} ${f.jobId}` : `${f.type} ${f.state}`));
    expect(kinds).toEqual([
      "job.accept job-1",
      "status busy",
      "job.done job-1",
      "job.accept job-2",
      "job.done job-2",
      "status idle",
    ]);
    expect(out.find((f) => f.type === "job.done" && f.jobId === "job-1")).toMatchObject({
      state: "busy",
    });
    const want = expectedOutput(job("job-2", "x y").input, { max_tokens: 50 });
    const text = out
      .filter((f) => f.type === "job.delta" && f.jobId === "job-2")
      .map((f) => (f.type === "job.delta" ? f.text : ""))
      .join("");
    expect(text).toBe(want.text);
  });

  it("is dropped when cancelled, holds only one, and the running job goes on", async () => {
    const { sockets, until, connect, frames } = setup(new DeterministicEngine(2));
    await connect();
    const idle = until((v) => v.jobsServed === 1 && v.state === "idle");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "a b c d"), attempt: 1 });
    sockets.last.receive({ type: "job.assign", job: job("job-2", "x"), attempt: 1, queued: true });
    sockets.last.receive({ type: "job.assign", job: job("job-3", "y"), attempt: 1, queued: true });
    sockets.last.receive({ type: "job.cancel", jobId: "job-2", reason: "client went away" });
    await idle;
    const out = frames().slice(1);
    expect(out.filter((f) => f.type === "job.error").map((f) => f.jobId)).toEqual(["job-3"]);
    expect(out.filter((f) => f.type === "job.accept").map((f) => f.jobId)).toEqual(["job-1"]);
    expect(out.find((f) => f.type === "job.done")).toMatchObject({
      jobId: "job-1",
      finishReason: "stop",
    });
  });
});
