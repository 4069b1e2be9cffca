import { SELF } from "cloudflare:test";
import { HumanMessage } from "@langchain/core/messages";
import { ChatOpenAI } from "@langchain/openai";
import { afterEach, describe, expect, it } from "vitest";
import { z } from "zod";
import { EngineTab } from "../../test/workerd/api-tab.js";

/**
 * LangChain JS (`@langchain/openai`'s ChatOpenAI), pointed at Tabgrid by base URL only (its fetch
 * reaches the coordinator in workerd), against tabs running the deterministic engine, which
 * follows the job's JSON constraint as WebLLM's grammar would.
 */
function chatModel(model: string, extra: Record<string, unknown> = {}): ChatOpenAI {
  return new ChatOpenAI({
    model,
    apiKey: "unused-locally",
    maxRetries: 0,
    configuration: {
      baseURL: "http://tabgrid.test/v1",
      fetch: (url: RequestInfo | URL, init?: RequestInit) => SELF.fetch(url as string, init),
    },
    ...extra,
  });
}

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
});

const weatherTool = {
  type: "function" as const,
  function: {
    name: "get_weather",
    description: "Current weather in a city",
    parameters: {
      type: "object",
      properties: { city: { type: "string" } },
      required: ["city"],
      additionalProperties: false,
    },
  },
};

describe("LangChain ChatOpenAI against Tabgrid", () => {
  it("invoke answers text with token usage", async () => {
    await serving("lc-chat");
    const reply = await chatModel("lc-chat").invoke("hello there");
    expect(reply.content).toBe("You said: hello there");
    expect(reply.usage_metadata?.output_tokens).toBe(4);
    expect(reply.response_metadata.finish_reason).toBe("stop");
  });

  it("stream yields the text in pieces and ends with usage", async () => {
    await serving("lc-stream");
    const stream = await chatModel("lc-stream").stream("one two three");
    let text = "";
    let pieces = 0;
    let usage: number | undefined;
    for await (const chunk of stream) {
      if (typeof chunk.content === "string" && chunk.content) {
        text += chunk.content;
        pieces++;
      }
      usage = chunk.usage_metadata?.output_tokens ?? usage;
    }
    expect(text).toBe("You said: one two three");
    expect(pieces).toBeGreaterThan(1);
    expect(usage).toBe(5);
  });

  it("withStructuredOutput (json_schema by default) answers a parsed object", async () => {
    const tab = await serving("lc-structured");
    const structured = chatModel("lc-structured").withStructuredOutput(Person, { name: "person" });
    const person = await structured.invoke("Describe a person");
    expect(person).toEqual({ name: "name", age: 18, tags: ["a"] });
    expect(tab.jobs[0]?.sampling.constraint?.kind).toBe("json");
  });

  it("withStructuredOutput with the tools method (functionCalling) answers a parsed object", async () => {
    const tab = await serving("lc-structured-tools");
    const structured = chatModel("lc-structured-tools").withStructuredOutput(Person, {
      name: "person",
      method: "functionCalling",
    });
    const person = await structured.invoke("Describe a person");
    expect(person).toEqual({ name: "name", age: 18, tags: ["a"] });
    // The named tool_choice reached the tab as the tool envelope with that one tool.
    expect(JSON.stringify(tab.jobs[0]?.sampling.constraint?.schema)).toContain('"const":"person"');
  });

  it("bindTools: the model calls a tool, and the tool result goes back", async () => {
    await serving("lc-tools");
    const model = chatModel("lc-tools").bindTools([weatherTool]);
    const first = await model.invoke("Weather in Paris? call get_weather");
    expect(first.tool_calls).toHaveLength(1);
    const call = first.tool_calls![0]!;
    expect(call.name).toBe("get_weather");
    expect(call.args).toEqual({ city: "city" });
    expect(call.id).toMatch(/^call_/);

    const second = await model.invoke([
      { role: "user", content: "Weather in Paris?" },
      first,
      { role: "tool", tool_call_id: call.id!, content: "21 degrees" },
    ]);
    expect(second.tool_calls ?? []).toHaveLength(0);
    expect(second.content).toContain(`Tool result (call ${call.id}, get_weather)`);
  });

  it("bindTools streamed: tool call chunks assemble into the call", async () => {
    await serving("lc-tools-stream");
    const model = chatModel("lc-tools-stream").bindTools([weatherTool]);
    let whole: Awaited<ReturnType<typeof model.invoke>> | undefined;
    for await (const chunk of await model.stream("call get_weather now")) {
      whole = whole ? whole.concat(chunk) : chunk;
    }
    expect(whole?.tool_calls?.[0]).toMatchObject({ name: "get_weather", args: { city: "city" } });
    expect(whole?.response_metadata.finish_reason).toBe("tool_calls");
  });

  it("n: 2 gives two generations; logprobs come back in response_metadata", async () => {
    await serving("lc-n");
    const two = await chatModel("lc-n", { n: 2 }).generate([[new HumanMessage("a b")]]);
    expect(two.generations[0]?.map((g) => g.text)).toEqual(["You said: a b", "You said: a b"]);

    const reply = await chatModel("lc-n", { logprobs: true, topLogprobs: 2 }).invoke("a b");
    const content = (reply.response_metadata.logprobs as { content: { token: string }[] }).content;
    expect(content.map((e) => e.token).join("")).toBe("You said: a b");
  });
});
