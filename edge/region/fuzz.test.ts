import { SELF, listDurableObjectIds } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { createRng, type Rng } from "../../shared/scheduling/prng.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { appEnv, chat, post, regionCounts, useTabs } from "../../test/workerd/tab-helpers.js";
import { regionStub } from "./region-stub.js";

const SEED = 20261123;
/** The pool of serving tabs; a tab closed for a bad frame is replaced in place. */
const tabs = useTabs().list;

/** Random JSON-ish values, biased towards shapes the schemas almost accept. */
function junk(rng: Rng, depth = 0): unknown {
  const pick = rng.int(depth > 2 ? 6 : 9);
  switch (pick) {
    case 0:
      return null;
    case 1:
      return rng.next() * 1e6 - 5e5;
    case 2:
      return "x".repeat(rng.int(40));
    case 3:
      return rng.next() < 0.5;
    case 4:
      return -rng.int(10);
    case 5:
      return ["hello", "job.delta", "job.done", "status", "job.accept", "job.error"][rng.int(6)];
    case 6:
      return Array.from({ length: rng.int(4) }, () => junk(rng, depth + 1));
    default: {
      const keys = [
        "type",
        "jobId",
        "seq",
        "text",
        "model",
        "messages",
        "role",
        "content",
        "protocol",
        "state",
        "usage",
        "error",
        "max_tokens",
        "stream",
      ];
      const obj: Record<string, unknown> = {};
      for (let i = 0; i < rng.int(6); i++)
        obj[keys[rng.int(keys.length)] as string] = junk(rng, depth + 1);
      return obj;
    }
  }
}

function junkFrame(rng: Rng, jobId: string): string {
  switch (rng.int(5)) {
    case 0:
      return "{" + "x".repeat(rng.int(20));
    case 1:
      return JSON.stringify(junk(rng));
    case 2:
      return JSON.stringify({ type: "job.delta", jobId, seq: rng.int(5) - 1, text: junk(rng) });
    case 3:
      return JSON.stringify({ type: "job.done", jobId, finishReason: junk(rng), usage: junk(rng) });
    default:
      return JSON.stringify({
        type: ["status", "job.accept", "hello"][rng.int(3)],
        ...(junk(rng) as object),
      });
  }
}

describe("fuzz: malformed frames and bodies never crash the coordinator or lose a job", () => {
  it(`seed ${SEED}: thousands of bad inputs while real jobs run; every job ends accounted for`, async () => {
    const rng = createRng(SEED);
    const model = "fuzz-model";
    const counts0 = await regionCounts();

    // 1. Bad HTTP bodies: every one is a 4xx in OpenAI's shape, never a 500.
    for (let i = 0; i < 600; i++) {
      const body = rng.next() < 0.2 ? "{" + "z".repeat(rng.int(30)) : JSON.stringify(junk(rng));
      const path = rng.next() < 0.5 ? "chat/completions" : "completions";
      const res = await post(`/${path}`, body);
      expect(res.status, body).toBeGreaterThanOrEqual(400);
      expect(res.status, body).toBeLessThan(500);
      OpenAIErrorBodySchema.parse(await res.json());
    }

    // 2. Chaos sockets: each sends garbage and is closed with a typed code (4000–4999).
    for (let i = 0; i < 60; i++) {
      const chaos = await ScriptedTab.open();
      for (let k = 0; k < 25 && !chaos.isClosed; k++)
        chaos.send(junkFrame(rng, `job_wnam_${"f".repeat(32)}`));
      const closed = await chaos.closed;
      expect(closed.code).toBeGreaterThanOrEqual(4000);
      expect(closed.code).toBeLessThan(5000);
    }

    // 3. Real jobs served by tabs that sometimes misbehave mid-stream (and are replaced).
    for (let i = 0; i < 4; i++) tabs.push(await ScriptedTab.connect([model]));
    const results: Array<Promise<{ status: number; text: string }>> = [];
    const jobs = 40;
    for (let j = 0; j < jobs; j++) {
      const resP = chat(model, { messages: [{ role: "user", content: `q${j}` }] }).then(
        async (r) => ({ status: r.status, text: await r.text() }),
      );
      results.push(resP);
      // Serve it: find which tab got it; that tab either answers or first sends a bad frame
      // (which closes it: a fresh tab replaces it so the pool stays at four).
      const served = await Promise.race(
        tabs.map((t) => t.nextJobOrClose().then((job) => ({ t, job }))),
      );
      if (!served.job) continue;
      const { t, job } = served as { t: ScriptedTab; job: NonNullable<typeof served.job> };
      if (rng.next() < 0.25) {
        t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "partial " });
        t.send(junkFrame(rng, job.id));
        await t.closed;
        tabs.splice(tabs.indexOf(t), 1);
        tabs.push(await ScriptedTab.connect([model]));
        // The job moved to another tab, continuing after "partial " if it was accepted.
        const moved = await Promise.race(
          tabs.map((o) => o.nextJobOrClose().then((m) => ({ o, m }))),
        );
        if (moved.m) moved.o.serve(moved.m, ["rest"]);
      } else {
        t.serve(job, ["answer ", `${j}`]);
      }
    }
    const settled = await Promise.all(results);
    for (const r of settled) {
      expect([200, 502, 503]).toContain(r.status);
      if (r.status !== 200) OpenAIErrorBodySchema.parse(JSON.parse(r.text));
    }

    // 4. Accounting: every job reached a terminal state; none is stuck or lost.
    await expect
      .poll(async () => {
        const c = await regionCounts();
        return (c.queued ?? 0) + (c.assigned ?? 0) + (c.streaming ?? 0);
      })
      .toBe(0);
    const counts = await regionCounts();
    const terminal = (c: Record<string, number>) =>
      (c.done ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0);
    expect(terminal(counts) - terminal(counts0)).toBe(jobs);
    expect((counts.done ?? 0) - (counts0.done ?? 0)).toBe(
      settled.filter((r) => r.status === 200).length,
    );
  }, 60_000);
});

/** Jobs that ended (terminal) or were evicted for the storage budget, in the default region. */
async function accountedJobs(): Promise<number> {
  const c = await regionCounts();
  const usage = await regionStub(appEnv, "wnam").storageUsage();
  return (c.done ?? 0) + (c.failed ?? 0) + (c.cancelled ?? 0) + usage.evicted;
}

const enc = new TextEncoder();

/** A chat body sent in random-sized chunks without content-length, as a stranger can. */
function streamedBody(rng: Rng, text: string): ReadableStream<Uint8Array> {
  const bytes = enc.encode(text);
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      const n = 1 + rng.int(64 * 1024);
      controller.enqueue(bytes.slice(at, at + n));
      at += n;
    },
  });
}

function postStreamed(
  path: string,
  body: ReadableStream<Uint8Array>,
  headers: Record<string, string> = {},
): Promise<Response> {
  return SELF.fetch(`http://tabgrid.test/v1${path}`, {
    method: "POST",
    headers: { "content-type": "application/json", ...headers },
    body,
    duplex: "half",
  } as RequestInit);
}

const KEY_CHARS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

describe("fuzz: streamed bodies, rejected callers and frame floods", () => {
  it(`seed ${SEED + 1}: jobs all accounted for, no object for a rejected caller, storage in budget`, async () => {
    const rng = createRng(SEED + 1);
    const model = "fuzz-flood";
    const before = await accountedJobs();
    const clients0 = (await listDurableObjectIds(appEnv.CLIENT)).length;
    const serving = await ScriptedTab.connect([model]);
    tabs.push(serving);
    let jobs = 0;

    for (let i = 0; i < 24; i++) {
      const kind = rng.int(4);
      if (kind === 0) {
        // Over the byte limit in multi-byte characters whose UTF-16 length is under it: 413.
        const unit = ["€", "😀", "é"][rng.int(3)] as string;
        const chars = Math.ceil((1_048_576 + rng.int(2_000_000)) / enc.encode(unit).byteLength);
        const body = `{"model":"${model}","messages":[{"role":"user","content":"${unit.repeat(chars)}"}]}`;
        const res = await postStreamed("/chat/completions", streamedBody(rng, body));
        expect(res.status).toBe(413);
        expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe("request_too_large");
      } else if (kind === 1) {
        // Under the limit but not a request: 400, and no job.
        const body = JSON.stringify(junk(rng)).repeat(1 + rng.int(3));
        const res = await postStreamed("/chat/completions", streamedBody(rng, body));
        expect(res.status).toBeGreaterThanOrEqual(400);
        expect(res.status).toBeLessThan(500);
        OpenAIErrorBodySchema.parse(await res.json());
      } else if (kind === 2) {
        // A made-up, well-formed key: 401, and no per-key object is created for it.
        const id = Array.from({ length: 12 }, () => "0123456789abcdef"[rng.int(16)]).join("");
        const secret = Array.from({ length: 43 }, () => KEY_CHARS[rng.int(64)]).join("");
        const res = await chat(model, {}, { authorization: `Bearer tg_${id}_${secret}` });
        expect(res.status).toBe(401);
        expect(OpenAIErrorBodySchema.parse(await res.json()).error.code).toBe("invalid_api_key");
      } else {
        // A real request, streamed in chunks with multi-byte text: one job, served.
        const content = "ünïcødé €😀 ".repeat(1 + rng.int(2000));
        const body = JSON.stringify({ model, messages: [{ role: "user", content }] });
        const resP = postStreamed("/chat/completions", streamedBody(rng, body));
        serving.serve(await serving.nextJob(), ["ok ", `${i}`]);
        const res = await resP;
        expect(res.status).toBe(200);
        await res.json();
        jobs++;
      }
    }

    // A tab flooding frames is closed with a typed code while a job on another tab goes on.
    const flooder = await ScriptedTab.connect(["fuzz-flooder"]);
    tabs.push(flooder);
    const during = chat(model);
    jobs++;
    const job = await serving.nextJob();
    // Well-formed status frames (the flood the issue saw slow others down), past the budget.
    for (let i = 0; i < 3000 && !flooder.isClosed; i++) {
      flooder.send({ type: "status", state: "idle", models: ["fuzz-flooder"] });
    }
    expect((await flooder.closed).code).toBe(CloseCode.RateLimited);
    serving.serve(job, ["still ", "served"]);
    expect((await during).status).toBe(200);

    // Every job is accounted for, no object was made for a rejected caller, storage within budget.
    await expect.poll(accountedJobs).toBe(before + jobs);
    expect((await listDurableObjectIds(appEnv.CLIENT)).length).toBe(clients0 + (clients0 ? 0 : 1));
    const usage = await regionStub(appEnv, "wnam").storageUsage();
    expect(usage.bytes).toBeLessThanOrEqual(usage.maxBytes);
    expect(usage.jobs).toBeLessThanOrEqual(usage.maxJobs);
  }, 60_000);
});
