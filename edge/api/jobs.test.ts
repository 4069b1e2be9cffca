import { SELF } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { ChatCompletionChunkSchema } from "../../shared/openai/chat.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { readSse } from "../../test/workerd/sse.js";
import { chat, jobToken, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

const { tab } = useTabs();
const ORIGIN = "http://tabgrid.test";

/** A request from `ip` (the anonymous tier limits and names callers by address). */
function from(ip: string, headers: Record<string, string> = {}): RequestInit {
  return { headers: { "cf-connecting-ip": ip, ...headers } };
}

async function expectRefusal(res: Response, status: number, code: string): Promise<void> {
  expect(res.status).toBe(status);
  const body = OpenAIErrorBodySchema.parse(await res.json());
  expect(body.error.code).toBe(code);
  expect(body.error.message).toContain("x-tabgrid-job-token");
}

describe("jobs are readable only by the caller that created them", () => {
  it("the tab that served an anonymous job cannot read or replay it from another address", async () => {
    const t = await tab(["acc-model"]);
    const resP = chat("acc-model", {}, { "cf-connecting-ip": "203.0.113.10" });
    // What the tab learns: the job's id (and its prompt), nothing else.
    const job = await t.nextJob();
    t.serve(job, ["text only ", "the creator sees"]);
    const created = await resP;
    expect(created.status).toBe(200);
    const token = jobToken(created);
    expect(token["x-tabgrid-job-token"]).toMatch(/^tgj_/);

    // The attack: from another address, no key, the id the tab learnt.
    const attacker = "198.51.100.66";
    await expectRefusal(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, from(attacker)),
      401,
      "missing_job_token",
    );
    await expectRefusal(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream`, from(attacker)),
      401,
      "missing_job_token",
    );
    await expectRefusal(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, { method: "DELETE", ...from(attacker) }),
      401,
      "missing_job_token",
    );
    // A made-up token (well-formed or not) is refused as clearly.
    for (const guess of [`tgj_${"A".repeat(43)}`, job.id]) {
      await expectRefusal(
        await SELF.fetch(
          `${ORIGIN}/v1/jobs/${job.id}/stream`,
          from(attacker, { "x-tabgrid-job-token": guess }),
        ),
        403,
        "job_access_denied",
      );
    }

    // The creator reads and replays it with the token it was given.
    const view = await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}`, from("203.0.113.10", token));
    expect(view.status).toBe(200);
    expect(((await view.json()) as { text: string }).text).toBe("text only the creator sees");
    const replay = await SELF.fetch(
      `${ORIGIN}/v1/jobs/${job.id}/stream?after=10`,
      from("203.0.113.10", token),
    );
    expect(await streamText(replay)).toEqual({ text: "the creator sees", done: true });
  });

  it("a running job's creator can resume it; the tab still cannot", async () => {
    const t = await tab(["acc-run"]);
    const res = await chat("acc-run", { stream: true, tabgrid: { resume_grace_ms: 10_000 } });
    const job = await t.nextJob();
    t.send({ type: "job.delta", jobId: job.id, seq: 0, text: "part one " });
    const reader = res.body!.getReader();
    let seen = "";
    while (!seen.includes("part one"))
      seen += new TextDecoder().decode((await reader.read()).value);
    await reader.cancel();
    await expectRefusal(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=9`),
      401,
      "missing_job_token",
    );
    const resumed = SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream?after=9`, {
      headers: jobToken(res),
    });
    t.send({ type: "job.delta", jobId: job.id, seq: 1, text: "part two" });
    t.done(job, "stop");
    expect(await streamText(await resumed)).toEqual({ text: "part two", done: true });
  });
});

describe("resuming after a number of characters", () => {
  it("an `after` beyond what any answer can hold is a 400 in the API's error shape", async () => {
    const t = await tab(["acc-after"]);
    const resP = chat("acc-after");
    t.serve(await t.nextJob(), ["short"]);
    const created = await resP;
    const id = created.headers.get("x-tabgrid-job-id");
    const resume = (after: string) =>
      SELF.fetch(`${ORIGIN}/v1/jobs/${id}/stream?after=${after}`, { headers: jobToken(created) });
    for (const after of ["1e300", "524289", "-1", "1.5"]) {
      const res = await resume(after);
      const text = await res.text();
      expect({ after, status: res.status }).toEqual({ after, status: 400 });
      const body = OpenAIErrorBodySchema.parse(JSON.parse(text)).error;
      expect({ after, status: res.status, param: body.param, code: body.code }).toEqual({
        after,
        status: 400,
        param: "after",
        code: "invalid_value",
      });
    }
    // The most an answer can hold (4096 tokens × 128 bytes) is still a valid place to resume.
    expect(await streamText(await resume("524288"))).toEqual({ text: "", done: true });
  });
});

const weather = {
  type: "function",
  function: {
    name: "get_weather",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
    },
  },
};

/** An SSE body's chunks without `created` (the second read may fall in a later second). */
async function chunksOf(res: Response): Promise<unknown[]> {
  return (await readSse(res)).map((d) => {
    if (d === "[DONE]") return d;
    const { created: _created, ...rest } = ChatCompletionChunkSchema.parse(JSON.parse(d));
    return rest;
  });
}

describe("resuming a tool-call answer", () => {
  it("replays tool_calls as the first response gave them, not the raw envelope", async () => {
    const t = await tab(["acc-tools"]);
    const resP = chat("acc-tools", { stream: true, tools: [weather] });
    const job = await t.nextJob();
    t.serve(job, ['{"tool_calls": [{"name": "get_weather", ', '"arguments": {"city": "Paris"}}]}']);
    const first = await resP;
    const token = jobToken(first);
    const original = await chunksOf(first);
    const calls = original.flatMap((c) =>
      c === "[DONE]"
        ? []
        : ((c as { choices: { delta: { tool_calls?: unknown } }[] }).choices[0]?.delta.tool_calls ??
          []),
    );
    expect(calls.length).toBeGreaterThan(0);

    const replay = await chunksOf(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${job.id}/stream`, { headers: token }),
    );
    expect(replay).toEqual(original);
    expect(JSON.stringify(replay)).not.toContain('tool_calls\\":');
  });
});
