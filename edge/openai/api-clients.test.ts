import OpenAI from "openai";
import { zodFunction, zodResponseFormat } from "openai/helpers/zod";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { ChatCompletionChunkSchema } from "../../shared/openai/chat.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/**
 * The official `openai` client, pointed at Tabgrid by base URL only (its fetch reaches the
 * coordinator in workerd), against tabs running the deterministic engine, which follows the job's
 * JSON constraint as WebLLM's grammar would.
 */
const client = workerdOpenAI();

const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));
async function serving(model: string): Promise<EngineTab> {
  const t = await EngineTab.connect(model);
  tabs.push(t);
  return t;
}

const Person = z.object({
  name: z.string(),
  age: z.number().int().min(18),
  tags: z.array(z.enum(["a", "b"])),
  address: z.object({ city: z.string() }).nullable(),
});

const weather = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" }, unit: { type: "string", enum: ["c", "f"] } },
      required: ["city", "unit"],
      additionalProperties: false,
    },
  },
};
const time = {
  type: "function" as const,
  function: {
    name: "get_time",
    parameters: { type: "object", properties: { zone: { type: "string" } }, required: ["zone"] },
  },
};

describe("structured output with the openai client", () => {
  it("chat.completions.parse with a zod schema (json_schema, strict) answers a parsed object", async () => {
    const tab = await serving("api-parse");
    const completion = await client.chat.completions.parse({
      model: "api-parse",
      messages: [{ role: "user", content: "Describe a person" }],
      response_format: zodResponseFormat(Person, "person"),
    });
    const parsed = completion.choices[0]?.message.parsed;
    expect(parsed).toEqual({ name: "name", age: 18, tags: ["a"], address: { city: "city" } });
    // The schema the client sent reached the tab as the decoding constraint.
    const constraint = tab.jobs[0]?.sampling.constraint;
    expect(constraint?.kind).toBe("json");
    expect(JSON.stringify(constraint?.schema)).toContain('"minimum":18');
  });

  it("json_object mode answers a JSON object, streamed", async () => {
    await serving("api-json");
    const stream = await client.chat.completions.create({
      model: "api-json",
      messages: [{ role: "user", content: "Reply in JSON" }],
      response_format: { type: "json_object" },
      stream: true,
    });
    let text = "";
    let finish: string | null = null;
    for await (const chunk of stream) {
      text += chunk.choices[0]?.delta.content ?? "";
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(JSON.parse(text)).toEqual({ answer: "You said: Reply in JSON" });
    expect(finish).toBe("stop");
  });

  it("a schema keyword Tabgrid cannot enforce is a 400 naming it", async () => {
    const err = await client.chat.completions
      .create({
        model: "api-any",
        messages: [{ role: "user", content: "x" }],
        response_format: {
          type: "json_schema",
          json_schema: { name: "x", schema: { type: "object", not: { required: ["a"] } } },
        },
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe(
      "response_format.json_schema.schema.not",
    );
  });

  it("an unknown field is a 400 naming it, not silently dropped", async () => {
    const err = await client.chat.completions
      .create({
        model: "api-any",
        messages: [{ role: "user", content: "x" }],
        // @ts-expect-error not an OpenAI field
        top_k: 5,
      })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("top_k");
  });
});

describe("tool calling with the openai client", () => {
  it("non-streamed: message.tool_calls with id, name, JSON arguments; finish_reason tool_calls", async () => {
    const tab = await serving("api-tools");
    const completion = await client.chat.completions.create({
      model: "api-tools",
      messages: [{ role: "user", content: "Weather in Paris? call get_weather" }],
      tools: [weather, time],
    });
    const choice = completion.choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    expect(choice.message.content).toBeNull();
    const call = choice.message.tool_calls?.[0];
    expect(call?.type).toBe("function");
    expect(call?.id).toMatch(/^call_/);
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function.name).toBe("get_weather");
    expect(JSON.parse(call.function.arguments)).toEqual({ city: "city", unit: "c" });
    // The tab was told about the tools and constrained to the tool envelope.
    const job = tab.jobs[0]!;
    expect(job.input.kind === "chat" && job.input.messages[0]?.role).toBe("system");
    expect(JSON.stringify(job.sampling.constraint?.schema)).toContain('"const":"get_weather"');
  });

  it("tool_choice auto answers in text when no tool is needed; none sends no tools", async () => {
    const tab = await serving("api-tools-auto");
    const auto = await client.chat.completions.create({
      model: "api-tools-auto",
      messages: [{ role: "user", content: "hello" }],
      tools: [weather],
    });
    expect(auto.choices[0]?.message.content).toBe("You said: hello");
    expect(auto.choices[0]?.finish_reason).toBe("stop");
    const none = await client.chat.completions.create({
      model: "api-tools-auto",
      messages: [{ role: "user", content: "call get_weather" }],
      tools: [weather],
      tool_choice: "none",
    });
    expect(none.choices[0]?.message.content).toBe("You said: call get_weather");
    expect(tab.jobs[1]?.sampling.constraint).toBeUndefined();
  });

  it("tool_choice required / named forces a call", async () => {
    await serving("api-tools-forced");
    for (const tool_choice of [
      "required" as const,
      { type: "function" as const, function: { name: "get_time" } },
    ]) {
      const r = await client.chat.completions.create({
        model: "api-tools-forced",
        messages: [{ role: "user", content: "hello" }],
        tools: [weather, time],
        tool_choice,
        parallel_tool_calls: false,
      });
      const call = r.choices[0]?.message.tool_calls?.[0];
      if (call?.type !== "function") throw new Error("no function call");
      expect(call.function.name).toBe(tool_choice === "required" ? "get_weather" : "get_time");
      expect(r.choices[0]?.message.tool_calls).toHaveLength(1);
    }
  });

  it("streamed: deltas as OpenAI sends them, the stream helper assembles the call, usage last", async () => {
    await serving("api-tools-stream");
    const raw = await client.chat.completions.create({
      model: "api-tools-stream",
      messages: [{ role: "user", content: "call get_weather please" }],
      tools: [weather],
      stream: true,
      stream_options: { include_usage: true },
    });
    const chunks = [];
    for await (const c of raw) chunks.push(ChatCompletionChunkSchema.parse(c));
    const calls = chunks.flatMap((c) => c.choices[0]?.delta.tool_calls ?? []);
    expect(calls[0]).toMatchObject({
      index: 0,
      type: "function",
      function: { name: "get_weather" },
    });
    expect(calls[0]?.id).toMatch(/^call_/);
    expect(JSON.parse(calls.map((c) => c.function.arguments ?? "").join(""))).toEqual({
      city: "city",
      unit: "c",
    });
    expect(chunks.at(-2)?.choices[0]?.finish_reason).toBe("tool_calls");
    expect(chunks.at(-1)?.choices).toEqual([]);
    expect(chunks.at(-1)?.usage?.completion_tokens).toBeGreaterThan(0);

    const helper = client.chat.completions.stream({
      model: "api-tools-stream",
      messages: [{ role: "user", content: "call get_weather please" }],
      tools: [zodFunction({ name: "get_weather", parameters: z.object({ city: z.string() }) })],
    });
    const final = await helper.finalChatCompletion();
    const call = final.choices[0]?.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function.parsed_arguments).toEqual({ city: "city" });
  });

  it("tool results come back as role tool messages and the model answers", async () => {
    const tab = await serving("api-tools-result");
    const r = await client.chat.completions.create({
      model: "api-tools-result",
      messages: [
        { role: "user", content: "Weather in Paris?" },
        {
          role: "assistant",
          content: null,
          tool_calls: [
            {
              id: "call_1",
              type: "function",
              function: { name: "get_weather", arguments: '{"city":"Paris","unit":"c"}' },
            },
          ],
        },
        { role: "tool", tool_call_id: "call_1", content: "21 degrees" },
      ],
      tools: [weather],
    });
    expect(r.choices[0]?.finish_reason).toBe("stop");
    expect(r.choices[0]?.message.content).toContain("Tool result (call call_1, get_weather)");
    const job = tab.jobs[0]!;
    if (job.input.kind !== "chat") throw new Error("not chat");
    expect(job.input.messages.map((m) => m.role)).toEqual(["system", "user", "assistant", "user"]);
    expect(JSON.parse(job.input.messages[2]!.content)).toEqual({
      tool_calls: [{ name: "get_weather", arguments: { city: "Paris", unit: "c" } }],
    });
  });
});

describe("models with the openai client", () => {
  it("models.list gives OpenAI's shape plus capabilities", async () => {
    await serving("api-models");
    const page = await client.models.list();
    const model = page.data.find((m) => m.id === "api-models") as
      (OpenAI.Models.Model & { capabilities?: unknown; context_window?: unknown }) | undefined;
    expect(model).toMatchObject({ id: "api-models", object: "model", owned_by: "tabgrid" });
    expect(typeof model?.created).toBe("number");
    expect(model?.capabilities).toMatchObject({ tools: "grammar", structured_output: "grammar" });
    expect(model?.context_window).toBeNull();
  });
});
