import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { readSse } from "../../test/workerd/sse.js";
import { chat, jobToken } from "../../test/workerd/tab-helpers.js";
import {
  DELETE_ACCOUNT,
  PARIS,
  askWeather,
  cityFormat,
  weatherTool,
} from "../../test/workerd/weather-tool.js";
import { faultsAndJobs } from "../../test/workerd/trust-helpers.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/**
 * A tab's structured answer is checked against the request before a client sees any of it: the
 * tool envelope's call names (those offered; the named one), how many calls, each call's arguments
 * (the tool's `parameters`), and a `json_schema` answer (its schema). A wrong answer is a 502
 * `invalid_structured_output` naming where it is wrong — never a tool call the client did not
 * offer, which an agent holding more tools than it offered might run.
 */
const ORIGIN = "http://tabgrid.test";
const client = workerdOpenAI();
const tabs: ScriptedTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));

/** A tab that answers its next job with `answer`, written in two pieces, ending with `finish`. */
async function answering(
  model: string,
  answer: string,
  finish: "stop" | "length" = "stop",
): Promise<ScriptedTab> {
  const t = await ScriptedTab.connect([model]);
  tabs.push(t);
  void t.next("job.assign").then(({ job }) => write(t, job, answer, finish));
  return t;
}

/** `t` writes `answer` for `job`, in two pieces, and says it ended (`finish`). */
function write(
  t: ScriptedTab,
  job: { id: string },
  answer: string,
  finish: "stop" | "length" = "stop",
): void {
  t.accept(job);
  t.delta(job, 0, answer.slice(0, 20));
  t.delta(job, 1, answer.slice(20));
  t.done(job, finish, { completion_tokens: 1 });
}

/**
 * A lying tab takes the next job of `model` (the only tab then); once it holds it an honest tab
 * answering `right` joins, and then the liar writes `wrong`.
 */
async function liarThenHonest(
  model: string,
  wrong: string,
  right: string,
  request: () => Promise<unknown>,
): Promise<{ liar: ScriptedTab; honest: ScriptedTab; pending: Promise<unknown> }> {
  const liar = await ScriptedTab.connect([model]);
  tabs.push(liar);
  const pending = request();
  const { job } = await liar.next("job.assign");
  const honest = await answering(model, right);
  write(liar, job, wrong);
  return { liar, honest, pending };
}

interface Outcome {
  status?: number;
  calls?: unknown[];
  code?: string;
  message?: string;
}

/** The request's outcome as the `openai` client sees it. */
function outcome(
  p: Promise<{ choices: Array<{ message: { tool_calls?: unknown[] } }> }>,
): Promise<Outcome> {
  return p.then(
    (r) => ({ status: 200, calls: r.choices[0]?.message.tool_calls }),
    (e: { status?: number; code?: string; message?: string }) => ({
      status: e.status,
      code: e.code,
      message: e.message,
    }),
  );
}

const ask = { messages: [{ role: "user" as const, content: "Weather in Paris?" }] };

describe("a tab's tool envelope is checked against the request", () => {
  it("a call to a tool the request did not offer is a 502, not a tool call", async () => {
    await answering("sa-name", DELETE_ACCOUNT);
    const res = await outcome(
      client.chat.completions.create({
        model: "sa-name",
        ...ask,
        tools: [weatherTool],
        tool_choice: "required",
      }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(res.message).toContain('tool_calls[0].name must be "get_weather"');
    // The tab's own words never reach the client, even in the error.
    expect(res.message).not.toContain("delete_account");
  });

  it("tool_choice naming one function: two calls are a 502", async () => {
    await answering("sa-count", `{"tool_calls":[${PARIS},${PARIS.replace("Paris", "Rome")}]}`);
    const res = await outcome(
      client.chat.completions.create({
        model: "sa-count",
        ...ask,
        tools: [weatherTool],
        tool_choice: { type: "function", function: { name: "get_weather" } },
      }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(res.message).toContain("tool_calls must have at most 1 items");
  });

  it("parallel_tool_calls false: two calls are a 502; one passes", async () => {
    const tools = { ...ask, tools: [weatherTool], parallel_tool_calls: false };
    await answering("sa-parallel", `{"tool_calls":[${PARIS},${PARIS}]}`);
    const two = await outcome(client.chat.completions.create({ model: "sa-parallel", ...tools }));
    await answering("sa-single", `{"tool_calls":[${PARIS}]}`);
    const one = await outcome(client.chat.completions.create({ model: "sa-single", ...tools }));
    expect(two).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(one).toMatchObject({ status: 200, calls: [{ function: { name: "get_weather" } }] });
  });

  it("arguments outside the tool's parameters are a 502", async () => {
    await answering("sa-args", '{"tool_calls":[{"name":"get_weather","arguments":{"city":3}}]}');
    const res = await outcome(
      client.chat.completions.create({ model: "sa-args", ...ask, tools: [weatherTool] }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(res.message).toContain("tool_calls[0].arguments.city must be of type string");
  });

  it("streamed: the stream ends with the error, and no tool call was sent", async () => {
    await answering("sa-stream", DELETE_ACCOUNT);
    const res = await chat("sa-stream", { stream: true, tools: [weatherTool] });
    const data = await readSse(res);
    expect(data.join("\n")).not.toContain('"tool_calls":');
    expect(data.at(-1)).not.toBe("[DONE]");
    const error = OpenAIErrorBodySchema.parse(JSON.parse(data.at(-1)!)).error;
    expect(error.code).toBe("invalid_structured_output");

    // Read back later, the job shows neither the calls nor the envelope, but that error.
    const id = res.headers.get("x-tabgrid-job-id");
    const view = (await (
      await SELF.fetch(`${ORIGIN}/v1/jobs/${id}`, { headers: jobToken(res) })
    ).json()) as { text: string; tool_calls?: unknown; error: { code: string } | null };
    expect(view).toMatchObject({ text: "", error: { code: "invalid_structured_output" } });
    expect(view).not.toHaveProperty("tool_calls");
    // Resumed, it ends with the same error.
    const resumed = await readSse(
      await SELF.fetch(`${ORIGIN}/v1/jobs/${id}/stream`, { headers: jobToken(res) }),
    );
    expect(resumed.join("\n")).not.toContain('"tool_calls":');
    expect(resumed.at(-1)).toContain("invalid_structured_output");
  });
});

describe("a response_format json_schema answer is checked against its schema", () => {
  const format = cityFormat;

  it("non-streamed: an answer outside the schema is a 502", async () => {
    await answering("sa-json", '{"town": "Paris", "admin": true}');
    const res = await outcome(
      client.chat.completions.create({ model: "sa-json", ...ask, response_format: format }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(res.message).toContain("city is required");
  });

  it("streamed: the text went out as written, and the stream ends with the error, not stop", async () => {
    await answering("sa-json-stream", '{"city": "Paris", "admin": true}');
    const res = await chat("sa-json-stream", { stream: true, response_format: format });
    const data = await readSse(res);
    const last = OpenAIErrorBodySchema.parse(JSON.parse(data.at(-1)!)).error;
    expect(last.code).toBe("invalid_structured_output");
    expect(data.join("\n")).not.toContain('"finish_reason":"stop"');
  });

  it("an answer that follows the schema passes, streamed or not", async () => {
    await answering("sa-json-ok", '{"city": "Lyon"}');
    const whole = await client.chat.completions.create({
      model: "sa-json-ok",
      ...ask,
      response_format: format,
    });
    expect(JSON.parse(whole.choices[0]?.message.content ?? "")).toEqual({ city: "Lyon" });
    await answering("sa-json-ok-stream", '{"city": "Lyon"}');
    const data = await readSse(
      await chat("sa-json-ok-stream", { stream: true, response_format: format }),
    );
    expect(data.at(-1)).toBe("[DONE]");
  });
});

/**
 * Checked where it arrives too (edge/region/structure-check.ts): a wrong structured answer is
 * the tab's fault, and a job no client has seen any of starts again on another tab, so the client
 * gets an answer rather than a 502. Before, the Worker's check alone caught it: the client got a
 * 502 although an honest tab was free, and the lying tab kept its record clean and was credited.
 */
describe("a wrong structured answer counts against its tab, and another tab answers", () => {
  it("tool calls, not streamed: the second tab's call reaches the client", async () => {
    const { liar, honest, pending } = await liarThenHonest(
      "sa-retry-tools",
      DELETE_ACCOUNT,
      `{"tool_calls":[${PARIS}]}`,
      () =>
        outcome(
          client.chat.completions.create({ model: "sa-retry-tools", ...ask, tools: [weatherTool] }),
        ),
    );
    const res = (await pending) as Outcome;
    expect(res).toMatchObject({ status: 200, calls: [{ function: { name: "get_weather" } }] });
    expect(JSON.stringify(res.calls)).not.toContain("delete_account");
    expect(await faultsAndJobs(liar)).toEqual({ faults: 1, jobs: 0 });
    expect(await faultsAndJobs(honest)).toEqual({ faults: 0, jobs: 1 });
  });

  it("tool calls, streamed: the stream carries only the second tab's call and ends with [DONE]", async () => {
    const { liar, pending } = await liarThenHonest(
      "sa-retry-stream",
      DELETE_ACCOUNT,
      `{"tool_calls":[${PARIS}]}`,
      () => chat("sa-retry-stream", { stream: true, tools: [weatherTool] }),
    );
    const data = await readSse((await pending) as Response);
    expect(data.at(-1)).toBe("[DONE]");
    expect(data.join("\n")).toContain("get_weather");
    expect(data.join("\n")).not.toContain("delete_account");
    expect((await faultsAndJobs(liar)).faults).toBe(1);
  });

  it("json_schema, not streamed: the second tab's answer reaches the client", async () => {
    const { liar, pending } = await liarThenHonest(
      "sa-retry-json",
      '{"town": "Paris", "admin": true}',
      '{"city": "Lyon"}',
      () =>
        client.chat.completions.create({
          model: "sa-retry-json",
          ...ask,
          response_format: cityFormat,
        }),
    );
    const whole = (await pending) as { choices: Array<{ message: { content: string | null } }> };
    expect(JSON.parse(whole.choices[0]?.message.content ?? "")).toEqual({ city: "Lyon" });
    expect(await faultsAndJobs(liar)).toEqual({ faults: 1, jobs: 0 });
  });

  it("json_schema, streamed: the client saw the text, so the stream ends with the error; the tab is at fault", async () => {
    const liar = await answering("sa-fault-json-stream", '{"city": "Paris", "admin": true}');
    const data = await readSse(
      await chat("sa-fault-json-stream", { stream: true, response_format: cityFormat }),
    );
    expect(OpenAIErrorBodySchema.parse(JSON.parse(data.at(-1)!)).error.code).toBe(
      "invalid_structured_output",
    );
    expect(await faultsAndJobs(liar)).toEqual({ faults: 1, jobs: 0 });
  });

  it("said to end at length after one token of 4,096: held against its tab, and the honest tab answers", async () => {
    const model = "sa-length-liar";
    const liar = await ScriptedTab.connect([model]);
    tabs.push(liar);
    const pending = askWeather(client, model);
    const { job } = await liar.next("job.assign");
    const honest = await ScriptedTab.connect([model]);
    tabs.push(honest);
    void honest.next("job.assign").then(({ job: j }) => {
      honest.accept(j);
      honest.delta(j, 0, `{"tool_calls":[${PARIS}]}`);
      honest.done(j, "stop", { completion_tokens: 12 });
    });
    liar.accept(job);
    liar.delta(job, 0, DELETE_ACCOUNT);
    // One token of 4096, yet "length": nothing a grammar-bound honest tab would say.
    liar.done(job, "length", { completion_tokens: 1 });
    const res = (await pending) as {
      status: number;
      choice?: { message: { tool_calls?: unknown[] } };
    };
    expect(JSON.stringify(res)).not.toContain("delete_account");
    expect(res.status).toBe(200);
    expect(res.choice?.message.tool_calls).toMatchObject([{ function: { name: "get_weather" } }]);
    expect(await faultsAndJobs(liar)).toEqual({ faults: 1, jobs: 0 });
  });

  it("an honest cut at max_tokens is not held against the tab: the client gets it as text, finish length", async () => {
    // 8 tokens write at least 8 bytes: 31 here, as a cut envelope would.
    const tab = await answering("sa-honest-length", '{"tool_calls":[{"name":"get_wea', "length");
    const res = await client.chat.completions.create({
      model: "sa-honest-length",
      ...ask,
      tools: [weatherTool],
      max_tokens: 8,
    });
    expect(res.choices[0]?.finish_reason).toBe("length");
    expect(await faultsAndJobs(tab)).toEqual({ faults: 0, jobs: 1 });
  });

  it("a schema the grammar holds only loosely: an answer outside it is refused, not held against the tab", async () => {
    // xgrammar does not enforce an allOf of two schemas, so an honest model may miss `zip`.
    const loose = {
      type: "json_schema" as const,
      json_schema: {
        name: "place",
        schema: {
          type: "object",
          allOf: [
            { properties: { city: { type: "string" } }, required: ["city"] },
            { properties: { zip: { type: "string" } }, required: ["zip"] },
          ],
        },
      },
    };
    const tab = await answering("sa-loose", '{"city": "Paris"}');
    const res = await outcome(
      client.chat.completions.create({ model: "sa-loose", ...ask, response_format: loose }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(await faultsAndJobs(tab)).toEqual({ faults: 0, jobs: 1 });
  });

  it("a client's stop string that cuts the JSON is not held against the tab", async () => {
    const tab = await answering("sa-stop", '{"city": "Par');
    const res = await outcome(
      client.chat.completions.create({
        model: "sa-stop",
        ...ask,
        response_format: cityFormat,
        stop: ["is"],
      }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(await faultsAndJobs(tab)).toEqual({ faults: 0, jobs: 1 });
  });

  it("when no other tab takes it, the client gets the 502 naming what was wrong", async () => {
    await answering("sa-retry-none", DELETE_ACCOUNT);
    const res = await outcome(
      client.chat.completions.create({ model: "sa-retry-none", ...ask, tools: [weatherTool] }),
    );
    expect(res).toMatchObject({ status: 502, code: "invalid_structured_output" });
    expect(res.message).toContain('tool_calls[0].name must be "get_weather"');
    expect(res.message).not.toContain("delete_account");
  });
});
