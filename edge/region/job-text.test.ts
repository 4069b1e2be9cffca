import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { appEnv } from "../../test/workerd/tab-helpers.js";
import { JobTexts } from "./job-text.js";
import { regionStub } from "./region-stub.js";

/**
 * The timer's flush writes every streaming job's batch in shared statements (job-text.ts): more
 * jobs than fit one statement's bound parameters must still each get their own chunk and counters.
 */
describe("batches of many jobs written together", () => {
  it("40 streaming jobs flushed at once each keep their text, delta count, bytes and state", async () => {
    const out = await runInDurableObject(regionStub(appEnv, "eeur"), (_obj, ctx) => {
      const sql = ctx.storage.sql;
      const ids = Array.from({ length: 40 }, (_, i) => `job_texttest_${i}`);
      for (const id of ids) {
        sql.exec(
          `INSERT INTO jobs (id, request_id, model, kind, state, created_at, updated_at, node_id)
           VALUES (?, 'r', 'm', 'chat', 'assigned', 0, 0, 'tab')`,
          id,
        );
      }
      const texts = new JobTexts(sql, { maxDeltas: 1000, maxDelayMs: Infinity });
      const load = () => ({
        nodeId: "tab",
        open: true,
        attempts: 1,
        nextSeq: 0,
        text: "",
        attemptStart: 0,
        bytes: 0,
        cap: 0,
      });
      ids.forEach((id, i) => {
        texts.position(id, load);
        // Job 0 sends only an empty delta: its counters move, no chunk is written.
        if (i === 0) return texts.append(id, "", 0);
        texts.append(id, `é${i} `, 1 + String(i).length + 2);
        texts.append(id, `x${i}`, 1 + String(i).length);
      });
      texts.flushAll();
      // A second batch for one job lands in the next chunk row.
      texts.append(ids[5]!, "!", 1);
      texts.flush(ids[5]!);
      return ids.map((id) => ({
        row: sql
          .exec<{ next_seq: number; text_bytes: number; state: string }>(
            `SELECT next_seq, text_bytes, state FROM jobs WHERE id = ?`,
            id,
          )
          .one(),
        chunks: sql
          .exec<{ n: number }>(`SELECT count(*) AS n FROM job_chunks WHERE job_id = ?`, id)
          .one().n,
        text: texts.chunks(id),
      }));
    });
    expect(out[0]).toEqual({
      row: { next_seq: 1, text_bytes: 0, state: "streaming" },
      chunks: 0,
      text: "",
    });
    out.slice(1).forEach((got, k) => {
      const i = k + 1;
      const text = `é${i} x${i}${i === 5 ? "!" : ""}`;
      const bytes = 2 * (1 + String(i).length) + 2 + (i === 5 ? 1 : 0);
      expect(got).toEqual({
        row: { next_seq: i === 5 ? 3 : 2, text_bytes: bytes, state: "streaming" },
        chunks: i === 5 ? 2 : 1,
        text,
      });
    });
  });
});
