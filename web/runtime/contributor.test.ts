import { describe, expect, it } from "vitest";
import type { ModelRecord } from "../../shared/models/catalog.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { TabMessageSchema } from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import { DeterministicEngine, expectedOutput } from "../../test/support/deterministic-engine.js";
import {
  EngineError,
  type ChatRequest,
  type GenerationResult,
  type ScoreRequest,
  type ScoreResult,
} from "../engine/inference-engine.js";
import {
  chatJob as job,
  contributorHarness,
  TINY_MODEL,
} from "../../test/support/contributor-harness.js";
import { toEngineError } from "../engine-worker/engine-errors.js";
import type { ContributorView } from "./tab-status.js";

const model = TINY_MODEL;

function setup(engine = new DeterministicEngine(0)) {
  return contributorHarness({ engine });
}

/** An engine that loses its GPU device on whatever it runs with the first load (a job, an audit). */
class LosingEngine extends DeterministicEngine {
  loads = 0;
  override async load(m: ModelRecord, p: (x: { progress: number; text: string }) => void) {
    this.loads++;
    return super.load(m, p);
  }
  override async chat(r: ChatRequest, d: (t: string) => void): Promise<GenerationResult> {
    this.lost();
    return super.chat(r, d);
  }
  override async score(r: ScoreRequest): Promise<ScoreResult> {
    this.lost();
    return super.score(r);
  }
  private lost(): void {
    if (this.loads === 1) throw new EngineError("device_lost", "The GPU device was lost.");
  }
}

/** An engine whose first job meets a lost device and whose reload waits for `reloaded()`. */
function slowReload() {
  let release!: () => void;
  const held = new Promise<void>((r) => (release = r));
  class SlowReloadEngine extends DeterministicEngine {
    loads = 0;
    override async load(m: ModelRecord, p: (x: { progress: number; text: string }) => void) {
      if (++this.loads === 2) await held;
      return super.load(m, p);
    }
    override async chat(r: ChatRequest, d: (t: string) => void): Promise<GenerationResult> {
      if (this.loads === 1) throw new EngineError("device_lost", "The GPU device was lost.");
      return super.chat(r, d);
    }
  }
  return { engine: new SlowReloadEngine(0), reloaded: release };
}

describe("Contributor", () => {
  it("loads before it connects, answers the challenge with hello and the model, and shows the assigned tab id", async () => {
    const { sockets, contributor, connect, frames, stored } = setup();
    expect(sockets.all).toHaveLength(0);
    await connect();
    expect(frames()[0]).toMatchObject({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      models: [model.model_id],
      state: "idle",
    });
    expect(stored).toEqual(["nonce-0123456789abcdef"]);
    expect(contributor.snapshot.tabId).toBe("node-assigned-1");
    expect(contributor.snapshot).toMatchObject({ connection: "connected", state: "idle" });
  });

  it("serves a job: accept, busy, ordered deltas, done with usage, idle again", async () => {
    const { sockets, contributor, until, connect, frames } = setup();
    await connect();
    const spec = job("job-1", "hello there general kenobi");
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: spec, attempt: 1 });
    await served;
    const out = frames().slice(1);
    expect(out[0]).toEqual({ type: "job.accept", jobId: "job-1" });
    expect(out[1]).toEqual({ type: "status", state: "busy", models: [model.model_id] });
    const deltas = out.filter((f) => f.type === "job.delta");
    expect(deltas.map((d) => d.seq)).toEqual(deltas.map((_, i) => i));
    const want = expectedOutput(spec.input, spec.sampling);
    expect(deltas.map((d) => d.text).join("")).toBe(want.text);
    const done = out.find((f) => f.type === "job.done");
    expect(done).toMatchObject({ jobId: "job-1", finishReason: "stop", usage: want.usage });
    expect(out.at(-1)).toEqual({ type: "status", state: "idle", models: [model.model_id] });
    expect(contributor.snapshot.lastTokensPerSecond).toBeGreaterThan(0);
  });

  it("a job asking for logprobs: each job.delta is followed by its tokens' entries, all before job.done", async () => {
    const { sockets, until, connect, frames } = setup();
    await connect();
    const spec = {
      ...job("job-lp", "one two"),
      sampling: { max_tokens: 50, logprobs: { top: 2 } },
    };
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: spec, attempt: 1 });
    await served;
    const out = frames().slice(1);
    const types = out.map((f) => f.type);
    expect(types.lastIndexOf("job.logprobs")).toBeLessThan(types.indexOf("job.done"));
    // The coordinator streams each piece with its own entries, and checks them against the text
    // it already has: so a piece's entries come right after it.
    for (const [i, f] of out.entries()) {
      if (f.type !== "job.delta") continue;
      const next = out[i + 1];
      expect(next?.type).toBe("job.logprobs");
      if (next?.type === "job.logprobs")
        expect(next.entries.map((e) => e.token).join("")).toBe(f.text);
    }
    const entries = out.flatMap((f) => (f.type === "job.logprobs" ? f.entries : []));
    expect(entries.map((e) => e.token).join("")).toBe("You said: one two");
    expect(entries.every((e) => e.top.length === 2)).toBe(true);
  });

  it("sends each delta's offset and, when asked (job.resend), the text and job.done again", async () => {
    const { sockets, until, connect, frames } = setup();
    await connect();
    const spec = job("job-r", "one two three four five six");
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: spec, attempt: 1 });
    await served;
    const want = expectedOutput(spec.input, spec.sampling);
    const deltas = frames().filter((f) => f.type === "job.delta");
    let offset = 0;
    for (const d of deltas) {
      expect(d.offset).toBe(offset);
      offset += d.text.length;
    }
    const done = frames().find((f) => f.type === "job.done");
    expect(done).toMatchObject({ jobId: "job-r", chars: want.text.length });
    // The coordinator lost what it had not written past character 3: the rest comes again.
    const before = frames().length;
    sockets.last.receive({ type: "job.resend", jobId: "job-r", offset: 3 });
    const again = frames().slice(before);
    expect(again[0]).toMatchObject({ type: "job.delta", offset: 3, text: want.text.slice(3) });
    expect(again[1]).toEqual(done);
    // A resend for a job this tab is not holding is ignored.
    sockets.last.receive({ type: "job.resend", jobId: "job-other", offset: 0 });
    expect(frames()).toHaveLength(before + 2);
  });

  it("resends a long answer in deltas the wire schema accepts, in order", async () => {
    // An 80,000-character answer: more than one job.delta may carry (64 Ki characters).
    class LongAnswer extends DeterministicEngine {
      override async chat(
        _r: ChatRequest,
        onDelta: (t: string) => void,
      ): Promise<GenerationResult> {
        for (let i = 0; i < 80; i++) onDelta(`${i % 10}`.repeat(1000));
        const usage = { prompt_tokens: 1, completion_tokens: 4000, total_tokens: 4001 };
        return { finishReason: "length", usage };
      }
    }
    const { sockets, until, connect, frames } = setup(new LongAnswer(0));
    await connect();
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: job("job-long", "x"), attempt: 1 });
    await served;
    const answer = frames()
      .flatMap((f) => (f.type === "job.delta" ? [f.text] : []))
      .join("");
    expect(answer).toHaveLength(80_000);
    // The coordinator lost the whole answer (an evicted object's unwritten batches).
    const before = frames().length;
    sockets.last.receive({ type: "job.resend", jobId: "job-long", offset: 5 });
    const again = frames().slice(before);
    for (const f of again) expect(TabMessageSchema.safeParse(f).success).toBe(true);
    const deltas = again.filter((f) => f.type === "job.delta");
    expect(deltas.length).toBeGreaterThan(1);
    let offset = 5;
    for (const d of deltas) {
      expect(d.offset).toBe(offset);
      offset += d.text.length;
    }
    expect(deltas.map((d) => d.text).join("")).toBe(answer.slice(5));
    expect(again.at(-1)).toMatchObject({ type: "job.done", chars: 80_000 });
  });

  it("shows the job it serves and its client's place while busy, and nothing once idle", async () => {
    const { sockets, contributor, until, connect } = setup();
    await connect();
    const seen: ContributorView[] = [];
    const busy = until((v) => v.state === "busy" && !!seen.push(v));
    const idle = until((v) => v.jobsServed === 1 && v.state === "idle");
    const placed: JobSpec = { ...job("job-p", "hello from afar"), clientPlace: "Frankfurt, DE" };
    sockets.last.receive({ type: "job.assign", job: placed, attempt: 1 });
    await busy;
    expect(seen[0]?.serving).toEqual({ model: model.model_id, clientPlace: "Frankfurt, DE" });
    await idle;
    expect(contributor.snapshot.serving).toBeNull();

    // Unknown place: the model only.
    const busyAgain = until((v) => v.state === "busy" && !!seen.push(v));
    sockets.last.receive({ type: "job.assign", job: job("job-q", "no place"), attempt: 1 });
    await busyAgain;
    expect(seen[1]?.serving).toEqual({ model: model.model_id, clientPlace: null });
  });

  it("refuses a second job while busy and a model it does not serve", async () => {
    const { sockets, until, connect, frames } = setup();
    await connect();
    const idle = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: job("job-1", "a b c d e f"), attempt: 1 });
    sockets.last.receive({ type: "job.assign", job: job("job-2", "x"), attempt: 1 });
    await idle;
    sockets.last.receive({
      type: "job.assign",
      job: job("job-3", "x", "Other-q4f32_1-MLC"),
      attempt: 1,
    });
    const errors = frames().filter((f) => f.type === "job.error");
    expect(errors).toEqual([
      {
        type: "job.error",
        jobId: "job-2",
        error: { code: "no_capacity", message: "this tab is busy" },
      },
      {
        type: "job.error",
        jobId: "job-3",
        error: { code: "model_not_served", message: `this tab serves ${model.model_id}` },
      },
    ]);
  });

  it("a cancel interrupts the engine and the job ends with finishReason abort", async () => {
    const { sockets, contributor, until, connect, frames } = setup(new DeterministicEngine(5));
    await connect();
    const backToIdle = until((v) => v.state === "idle");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "w ".repeat(40)), attempt: 1 });
    sockets.last.receive({ type: "job.cancel", jobId: "job-1", reason: "client went away" });
    await backToIdle;
    expect(frames().find((f) => f.type === "job.done")).toMatchObject({ finishReason: "abort" });
    expect(contributor.snapshot.jobsServed).toBe(0);
  });

  it("a lost GPU device fails the job with device_lost, reloads the model and serves again", async () => {
    const engine = new LosingEngine(0);
    const { sockets, contributor, until, connect, frames } = setup(engine);
    await connect();
    const reloading = until((v) => v.state === "loading");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "hi"), attempt: 1 });
    await reloading;
    expect(frames().find((f) => f.type === "job.error")).toMatchObject({
      error: { code: "device_lost" },
    });
    expect(frames().at(-1)).toEqual({
      type: "status",
      state: "loading",
      models: [],
      reason: "device_lost: reloading the model",
    });
    await until((v) => v.state === "idle");
    expect(engine.loads).toBe(2);
    expect(frames().at(-1)).toEqual({ type: "status", state: "idle", models: [model.model_id] });
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: job("job-2", "hi"), attempt: 1 });
    await served;
    expect(contributor.snapshot.error).toBeNull();
  });

  it("a prompt over the model's context window is the request's fault: bad_request, no reload, the tab stays idle", async () => {
    // WebLLM's own error class for it (ContextWindowSizeExceededError, 0.2.86), as the adapter
    // sees it thrown from a chat request.
    class TooLong extends Error {
      override name = "ContextWindowSizeExceededError";
    }
    class ShortContextEngine extends DeterministicEngine {
      loads = 0;
      override async load(m: ModelRecord, p: (x: { progress: number; text: string }) => void) {
        this.loads++;
        return super.load(m, p);
      }
      override async chat(r: ChatRequest, d: (t: string) => void): Promise<GenerationResult> {
        if (r.messages.some((m) => m.content.length > 100))
          throw toEngineError(
            new TooLong("Prompt tokens exceed context window size"),
            "engine_error",
          );
        return super.chat(r, d);
      }
    }
    const engine = new ShortContextEngine(0);
    const { sockets, contributor, until, connect, frames } = setup(engine);
    await connect();
    const failed = until(() => frames().some((f) => f.type === "job.error"));
    sockets.last.receive({ type: "job.assign", job: job("job-1", "x".repeat(200)), attempt: 1 });
    await failed;
    expect(frames().find((f) => f.type === "job.error")).toMatchObject({
      error: { code: "bad_request" },
    });
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: job("job-2", "hi"), attempt: 1 });
    await served;
    expect(engine.loads).toBe(1);
    expect(contributor.snapshot.error).toBeNull();
  });

  it("a lost GPU device during an audit reloads the model as after a job, and serves again", async () => {
    const engine = new LosingEngine(0);
    const { sockets, contributor, until, connect, frames } = setup(engine);
    await connect();
    const reloading = until((v) => v.state === "loading");
    sockets.last.receive({
      type: "audit.assign",
      auditId: "audit-1",
      model: model.model_id,
      input: { kind: "chat", messages: [{ role: "user", content: "hi" }] },
      sampling: { max_tokens: 8 },
      answer: "You said: hi",
      seed: 1,
      scoreStop: false,
      maxTokens: 8,
    });
    await reloading;
    expect(frames().find((f) => f.type === "audit.result")).toMatchObject({
      auditId: "audit-1",
      error: { code: "device_lost" },
      state: "loading",
    });
    await until((v) => v.state === "idle");
    expect(engine.loads).toBe(2);
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({ type: "job.assign", job: job("job-1", "hi"), attempt: 1 });
    await served;
    expect(frames().find((f) => f.type === "job.done")).toMatchObject({ jobId: "job-1" });
    expect(contributor.snapshot.error).toBeNull();
  });

  it("a rest that begins and ends while the model reloads after a lost device does not leave the tab paused", async () => {
    // The GPU share rests the tab after every job, failed ones included: at 50 % a rest as long as
    // the failed job ends well before the model is back. The tab must be idle once it is.
    const { engine, reloaded } = slowReload();
    const { sockets, contributor, until, connect, frames } = setup(engine);
    await connect();
    const reloading = until((v) => v.state === "loading");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "hi"), attempt: 1 });
    await reloading;
    contributor.pause("resting (GPU share limit)");
    contributor.resume();
    reloaded();
    await until((v) => v.state !== "loading");
    expect(contributor.snapshot).toMatchObject({ state: "idle", reason: null });
    expect(frames().at(-1)).toEqual({ type: "status", state: "idle", models: [model.model_id] });
  });

  it("a pause asked for while the model reloads holds once it is back, in its own words", async () => {
    const { engine, reloaded } = slowReload();
    const { sockets, contributor, until, connect, frames } = setup(engine);
    await connect();
    const reloading = until((v) => v.state === "loading");
    sockets.last.receive({ type: "job.assign", job: job("job-1", "hi"), attempt: 1 });
    await reloading;
    contributor.pause("paused by you");
    reloaded();
    await until((v) => v.state !== "loading");
    expect(contributor.snapshot).toMatchObject({ state: "paused", reason: "paused by you" });
    expect(frames().at(-1)).toMatchObject({
      type: "status",
      state: "paused",
      reason: "paused by you",
    });
  });

  it("after a failover, continues from the delivered text and sends only new text", async () => {
    const { sockets, until, connect, frames } = setup();
    await connect();
    const spec = job("job-9", "alpha beta gamma delta epsilon");
    const served = until((v) => v.jobsServed === 1);
    sockets.last.receive({
      type: "job.assign",
      job: spec,
      attempt: 2,
      continueFrom: "You said: alpha",
    });
    await served;
    const want = expectedOutput(spec.input, spec.sampling);
    const deltas = frames().filter((f) => f.type === "job.delta");
    expect(deltas[0]?.seq).toBe(0);
    expect("You said: alpha" + deltas.map((d) => d.text).join("")).toBe(want.text);
    // Its usage counts the tokens it generated, not the 3 it was given ("You said: alpha").
    const generated = want.usage.completion_tokens - 3;
    expect(frames().find((f) => f.type === "job.done")).toMatchObject({
      usage: { completion_tokens: generated },
    });
  });
});
