import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sseData } from "../../web/sdk/sse.js";
import { regionStub } from "./region-stub.js";
import { appEnv, chat, getJob, useTabs } from "../../test/workerd/tab-helpers.js";

const { tab } = useTabs();

type Counted = SqlStorage & { counted?: { log: string[] }; uncounted?: SqlStorage["exec"] };

/**
 * Record every SQLite statement the Region object runs from now on (its `sql`, wrapped in place;
 * the object's parts hold that same object) and forget what was recorded so far.
 */
function statements(): Promise<string[]> {
  return runInDurableObject(regionStub(appEnv, "wnam"), (_obj, ctx) => {
    const sql = ctx.storage.sql as Counted;
    if (!sql.counted) {
      const exec = sql.exec.bind(sql);
      const counted = { log: [] as string[] };
      sql.counted = counted;
      (sql as { exec: unknown }).exec = (query: string, ...bindings: unknown[]) => {
        counted.log.push(query.replace(/\s+/g, " ").trim());
        return exec(query, ...(bindings as []));
      };
    }
    return sql.counted.log.splice(0);
  });
}

const fullRowReads = (q: string[]) => q.filter((s) => s.startsWith("SELECT * FROM jobs WHERE id"));
const chunkReads = (q: string[]) => q.filter((s) => s.startsWith("SELECT text FROM job_chunks"));

describe("SQLite statements of a streamed job in its Region object", () => {
  it("no job row is read back after this object wrote it, and a delta after the first runs none", async () => {
    const t = await tab(["fs-model"]);
    await statements();
    const res = await chat("fs-model", { stream: true });
    const job = await t.nextJob();
    const events = sseData(res.body!)[Symbol.asyncIterator]();
    t.accept(job);
    const phases: Record<string, string[]> = { open: await statements() };
    const later: string[][] = [];
    let offset = 0;
    const pieces = ["Hel", "lo", ", ", "wor", "ld", "!"];
    for (const [seq, text] of pieces.entries()) {
      t.send({ type: "job.delta", jobId: job.id, seq, text, offset });
      offset += text.length;
      // The client has the delta: every statement it cost has run.
      await events.next();
      if (seq === 0) phases.first = await statements();
      else later.push(await statements());
    }
    t.send({
      type: "job.done",
      jobId: job.id,
      finishReason: "stop",
      chars: offset,
      usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 },
    });
    while (!(await events.next()).done);
    phases.done = await statements();
    const all = Object.values(phases).flat();

    // The row was created, assigned, accepted, first-token-stamped, batched and finished by this
    // object: none of it is read back (6 full reads and 6 chunk reads before).
    expect(fullRowReads(all)).toEqual([]);
    expect(chunkReads(all)).toEqual([]);
    // Deltas 2–6 are memory and the relay; their batch is written by the timer or at job.done.
    expect(later).toEqual([[], [], [], [], []]);
    // No job waits, so nothing asks SQLite for the waiting line or its length (3 before).
    expect(
      all.filter((q) => /FROM jobs WHERE state = 'queued'/.test(q) && !/GROUP BY/.test(q)),
    ).toEqual([]);
    // What is durable when is unchanged: the first delta is written at once with its time, in
    // the batch's two statements (a chunk-count read and a third UPDATE before).
    expect(phases.first?.filter((q) => /job_chunks|UPDATE jobs/.test(q))).toEqual([
      expect.stringMatching(/^INSERT INTO job_chunks/),
      expect.stringMatching(/^UPDATE jobs SET next_seq .* first_token_at = coalesce/),
    ]);
    // …and the job's whole text is stored when it ends.
    expect(phases.done).toEqual(
      expect.arrayContaining([
        expect.stringMatching(/^UPDATE jobs SET text = \?/),
        expect.stringMatching(/^UPDATE jobs SET state = 'done'/),
      ]),
    );
    const view = await getJob(job.id);
    expect([view.state, view.text]).toEqual(["done", pieces.join("")]);
    const stored = await runInDurableObject(regionStub(appEnv, "wnam"), (_obj, ctx) =>
      ctx.storage.sql
        .exec<{ first: number | null; dispatched: number | null }>(
          `SELECT first_token_at AS first, dispatched_at AS dispatched FROM jobs WHERE id = ?`,
          job.id,
        )
        .one(),
    );
    expect(stored.first).toBeGreaterThanOrEqual(stored.dispatched ?? Infinity);
  });
});
