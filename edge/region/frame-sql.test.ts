import { runInDurableObject } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { sseData } from "../../web/sdk/sse.js";
import { regionStub } from "./region-stub.js";
import { appEnv, chat, useTabs } from "../../test/workerd/tab-helpers.js";

const { tab } = useTabs();

type Log = { q: string[] };

/** Count every SQLite statement the Region object runs from now on. */
async function countStatements(): Promise<void> {
  await runInDurableObject(regionStub(appEnv, "wnam"), (_obj, ctx) => {
    const sql = ctx.storage.sql as SqlStorage & { __log?: Log; __exec?: SqlStorage["exec"] };
    if (!sql.__exec) {
      sql.__exec = sql.exec.bind(sql);
      sql.__log = { q: [] };
      const log = sql.__log;
      (sql as { exec: unknown }).exec = (query: string, ...b: unknown[]) => {
        log.q.push(query.replace(/\s+/g, " ").slice(0, 90));
        return sql.__exec!(query, ...(b as []));
      };
    }
    sql.__log!.q = [];
  });
}

async function taken(): Promise<string[]> {
  return runInDurableObject(regionStub(appEnv, "wnam"), (_obj, ctx) => {
    const sql = ctx.storage.sql as SqlStorage & { __log?: Log };
    const q = sql.__log!.q;
    sql.__log!.q = [];
    return q;
  });
}

describe("experiment", () => {
  it("statements per phase", async () => {
    const t = await tab(["fs-model"]);
    await countStatements();
    const res = await chat("fs-model", { stream: true });
    const job = await t.nextJob();
    const reader = sseData(res.body!)[Symbol.asyncIterator]();
    console.log("OPEN", await taken());
    t.accept(job);
    await new Promise((r) => setTimeout(r, 50));
    console.log("ACCEPT", await taken());
    let offset = 0;
    for (let i = 0; i < 6; i++) {
      const text = `t${i} `;
      t.send({ type: "job.delta", jobId: job.id, seq: i, text, offset });
      offset += text.length;
      await reader.next();
      console.log("DELTA", i, await taken());
    }
    await new Promise((r) => setTimeout(r, 150));
    console.log("TIMER", await taken());
    t.send({ type: "job.done", jobId: job.id, finishReason: "stop", chars: offset,
      usage: { prompt_tokens: 5, completion_tokens: 6, total_tokens: 11 } });
    while (!(await reader.next()).done);
    console.log("DONE", await taken());
    expect(1).toBe(1);
  });
});
