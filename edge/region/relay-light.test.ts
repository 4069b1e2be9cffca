import { SELF, evictDurableObject, runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sha256Hex } from "../../shared/protocol/sha256.js";
import { ManualTimers } from "../../test/support/manual-timers.js";
import { doneFrame, firstContent, holdBatches } from "../../test/workerd/held-batches.js";
import type { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import {
  appEnv,
  chat,
  getJob,
  jobToken,
  streamText,
  useTabs,
} from "../../test/workerd/tab-helpers.js";
import { CheckpointBatcher, checkpointFrame } from "../../web/direct/checkpoints.js";
import { DeltaCoalescer } from "../../web/runtime/delta-coalescer.js";
import type { RegionParts } from "./region-parts.js";
import { regionStub } from "./region-stub.js";

/**
 * The relay-light direct path (protocol 7, docs/embed.md): while the caller reads a job over the
 * data channel, the tab sends the coordinator checkpoints instead of every coalesced delta.
 * Scripted tabs here batch with the tab runtime's own policies (DeltaCoalescer, CheckpointBatcher)
 * on a simulated clock, so the frame counts are the ones a real tab would send.
 */

const { tab } = useTabs();
/** A caller's peer id (the API checks its form; the coordinator never dials it). */
const DIRECT = { tabgrid: { peer_id: `tg-wnam-${"0".repeat(32)}` } };
const PIECES = Array.from({ length: 300 }, (_, i) => `w${i} `);
/** The simulated engine's time per token (≈ 40 tokens/s). */
const TOKEN_MS = 25;

/** Run `pieces` through a batcher on a simulated clock; returns the frames' texts in order. */
function batched(
  pieces: string[],
  make: (
    emit: (text: string) => void,
    timers: ManualTimers,
  ) => { push(t: string): void; flush(): void },
): string[] {
  const timers = new ManualTimers();
  const out: string[] = [];
  const b = make((text) => out.push(text), timers);
  for (const p of pieces) {
    b.push(p);
    timers.advance(TOKEN_MS);
  }
  b.flush();
  return out;
}

/**
 * Count, inside the Region object, the tab frames it receives per job (what the channel hands the
 * job machine after parsing); `read` returns the counts so far.
 */
async function countFramesPerJob(): Promise<{ read(jobId: string): Promise<number> }> {
  const stub = regionStub(appEnv, "wnam");
  await runInDurableObject(stub, (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    const counts = new Map<string, number>();
    const original = parts.machine.onTabEvent.bind(parts.machine);
    parts.machine.onTabEvent = (event) => {
      if (event.type === "frame" && "jobId" in event.msg) {
        counts.set(event.msg.jobId, (counts.get(event.msg.jobId) ?? 0) + 1);
      }
      return original(event);
    };
    (obj as unknown as { frameCounts: Map<string, number> }).frameCounts = counts;
  });
  return {
    read: (jobId) =>
      runInDurableObject(
        stub,
        (obj) =>
          (obj as unknown as { frameCounts: Map<string, number> }).frameCounts.get(jobId) ?? 0,
      ),
  };
}

/** Send a job's answer as `kind` frames; returns the frames this tab sent for the job. */
function answer(t: ScriptedTab, jobId: string, kind: "delta" | "checkpoint"): number {
  const texts =
    kind === "delta"
      ? batched(PIECES, (emit, timers) => new DeltaCoalescer(emit, { timers }))
      : batched(PIECES, (emit, timers) => new CheckpointBatcher(emit, { timers }));
  t.accept({ id: jobId });
  let offset = 0;
  texts.forEach((text, seq) => {
    t.send(
      kind === "delta"
        ? { type: "job.delta", jobId, seq, text, offset }
        : checkpointFrame(jobId, offset, text),
    );
    offset += text.length;
  });
  t.send({ ...doneFrame(jobId), chars: offset });
  return texts.length + 2;
}

/** The trust faults of the tabs serving `model`, in ascending order (GET /v1/nodes). */
async function faults(model: string): Promise<number[]> {
  const body = (await (await SELF.fetch("http://tabgrid.test/v1/nodes")).json()) as {
    data: Array<{ models: string[]; trust: { faults: number } }>;
  };
  return body.data
    .filter((n) => n.models.includes(model))
    .map((n) => n.trust.faults)
    .sort();
}

describe("relay-light: checkpoints instead of every frame", () => {
  it("the coordinator gets at least 10x fewer frames per direct job, and the same answer", async () => {
    const t = await tab(["rl-count"]);
    const received = await countFramesPerJob();
    const counts: Record<string, number> = {};
    for (const kind of ["delta", "checkpoint"] as const) {
      const res = chat("rl-count", { stream: true, max_tokens: 2000, ...DIRECT });
      const job = await t.nextJob();
      const sent = answer(t, job.id, kind);
      expect(await streamText(await res)).toEqual({ text: PIECES.join(""), done: true });
      expect((await getJob(job.id)).text).toBe(PIECES.join(""));
      counts[kind] = await received.read(job.id);
      expect(counts[kind]).toBe(sent);
    }
    console.log(
      `frames the Region object received per job (${PIECES.length} tokens at ${TOKEN_MS} ms): relayed ${counts.delta}, ` +
        `checkpointed ${counts.checkpoint}, ${(counts.delta! / counts.checkpoint!).toFixed(1)}x fewer`,
    );
    expect(counts.delta! / counts.checkpoint!).toBeGreaterThanOrEqual(10);
  });

  it("failover mid-job continues from the last checkpoint: nothing lost, nothing repeated", async () => {
    const first = await tab(["rl-failover"]);
    const resP = chat("rl-failover", { stream: true, ...DIRECT });
    const job = await first.nextJob();
    first.accept(job);
    first.send(checkpointFrame(job.id, 0, "Once upon "));
    first.send(checkpointFrame(job.id, 10, "a time, "));
    // "there" went to the caller directly but was never checkpointed: the tab dies with it.
    const second = await tab(["rl-failover"]);
    first.close();
    const assign = await second.next("job.assign");
    expect(assign.attempt).toBe(2);
    expect(assign.continueFrom).toBe("Once upon a time, ");
    second.accept(job);
    second.send(checkpointFrame(job.id, 0, "there was "));
    second.send(checkpointFrame(job.id, 10, "a fox."));
    second.send({ ...doneFrame(job.id), chars: 16 });
    expect(await streamText(await resP)).toEqual({
      text: "Once upon a time, there was a fox.",
      done: true,
    });
    expect((await getJob(job.id)).state).toBe("done");
  });

  it("an evicted coordinator asks for the text after its last written checkpoint", async () => {
    const t = await tab(["rl-evict"]);
    await holdBatches();
    // A batch timer armed by an earlier test would still write this job's batch: cancel it.
    await runInDurableObject(regionStub(appEnv, "wnam"), (obj) => {
      (obj as unknown as { parts: RegionParts }).parts.jobs.texts.flushAll();
    });
    const res = await chat("rl-evict", {
      stream: true,
      ...DIRECT,
      tabgrid: { ...DIRECT.tabgrid, resume_grace_ms: 30_000 },
    });
    const job = await t.nextJob();
    t.accept(job);
    // The first checkpoint is written with the first token's time; the second stays in memory.
    t.send(checkpointFrame(job.id, 0, "alpha "));
    t.send(checkpointFrame(job.id, 6, "beta "));
    expect((await firstContent(res, 2)).join("")).toBe("alpha beta ");
    await evictDurableObject(regionStub(appEnv, "wnam"));
    // The tab's job.done says 16 characters; the coordinator holds 6 and finishes nothing yet.
    t.send({ ...doneFrame(job.id), chars: 16 });
    expect(await t.next("job.resend")).toEqual({ type: "job.resend", jobId: job.id, offset: 6 });
    expect((await getJob(job.id)).state).not.toBe("done");
    t.send(checkpointFrame(job.id, 6, "beta gamma"));
    t.send({ ...doneFrame(job.id), chars: 16 });
    await expect.poll(async () => (await getJob(job.id)).state).toBe("done");
    expect((await getJob(job.id)).text).toBe("alpha beta gamma");
    const rest = await SELF.fetch(`http://tabgrid.test/v1/jobs/${job.id}/stream?after=11`, {
      headers: jobToken(res),
    });
    expect(await streamText(rest)).toEqual({ text: "gamma", done: true });
  });

  it("a checkpoint whose hash does not match its text is refused, faulted, and the job moves on", async () => {
    const liar = await tab(["rl-hash"]);
    const resP = chat("rl-hash", { stream: true, ...DIRECT });
    const job = await liar.nextJob();
    liar.accept(job);
    liar.send(checkpointFrame(job.id, 0, "Paris is "));
    const honest = await tab(["rl-hash"]);
    expect(await faults("rl-hash")).toEqual([0, 0]);
    // The text the tab committed to was "the capital"; it sends something else under that hash.
    liar.send({ ...checkpointFrame(job.id, 9, "in Spain."), sha256: sha256Hex("the capital") });
    expect((await liar.next("job.cancel")).jobId).toBe(job.id);
    const assign = await honest.next("job.assign");
    expect(assign.continueFrom).toBe("Paris is ");
    honest.accept(job);
    honest.send(checkpointFrame(job.id, 0, "the capital."));
    honest.send({ ...doneFrame(job.id), chars: 12 });
    expect(await streamText(await resP)).toEqual({ text: "Paris is the capital.", done: true });
    // The honest tab finished clean; the one whose hash lied has the fault.
    expect(await faults("rl-hash")).toEqual([0, 1]);
  });

  it("a checkpoint for a job whose caller is not on the direct path is refused too", async () => {
    const t = await tab(["rl-nodirect"]);
    const resP = chat("rl-nodirect", { stream: true });
    const job = await t.nextJob();
    const other = await tab(["rl-nodirect"]);
    t.accept(job);
    t.send(checkpointFrame(job.id, 0, "batched "));
    expect((await other.next("job.assign")).continueFrom).toBeUndefined();
    other.serve(job, ["relayed"]);
    expect(await streamText(await resP)).toEqual({ text: "relayed", done: true });
  });
});
