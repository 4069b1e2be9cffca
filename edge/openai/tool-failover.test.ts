import { afterEach, describe, expect, it } from "vitest";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";
import { cityFormat, weatherTool } from "../../test/workerd/weather-tool.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/**
 * A tool-calling answer whose tab fails mid-envelope starts again on the next tab, under the same
 * grammar: the envelope cannot be continued after another tab's text, and no client has seen any
 * of it. The `openai` client gets the replacement's calls, streamed or not.
 */
const client = workerdOpenAI();

const tabs: ScriptedTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));
async function scripted(model: string): Promise<ScriptedTab> {
  const t = await ScriptedTab.connect([model]);
  tabs.push(t);
  return t;
}

const ENVELOPE = '{"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]}';

/** The first tab writes half an envelope and leaves; the second must start over, constrained. */
async function failOverMidEnvelope(first: ScriptedTab, model: string): Promise<void> {
  const { job } = await first.next("job.assign");
  first.accept(job);
  first.delta(job, 0, '{"tool_calls": [{"name": "get_wea');
  const second = await scripted(model);
  first.close();
  const assign = await second.next("job.assign");
  expect(assign.continueFrom).toBeUndefined();
  expect(assign.job.sampling.constraint?.schema).toBeDefined();
  second.accept(assign.job);
  second.delta(assign.job, 0, ENVELOPE.slice(0, 30));
  second.delta(assign.job, 1, ENVELOPE.slice(30));
  second.done(assign.job, "stop", { completion_tokens: 20 });
}

describe("failover of a tool-calling answer", () => {
  it("non-streamed: the replacement's envelope alone is read", async () => {
    const first = await scripted("tf-whole");
    const answer = client.chat.completions.create({
      model: "tf-whole",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool],
      tool_choice: "required",
    });
    await failOverMidEnvelope(first, "tf-whole");
    const choice = (await answer).choices[0]!;
    expect(choice.finish_reason).toBe("tool_calls");
    const call = choice.message.tool_calls?.[0];
    if (call?.type !== "function") throw new Error("no function call");
    expect(call.function).toEqual({ name: "get_weather", arguments: '{"city":"Paris"}' });
  });

  it("streamed: the call streams once, from the replacement", async () => {
    const first = await scripted("tf-stream");
    const answer = client.chat.completions.create({
      model: "tf-stream",
      messages: [{ role: "user", content: "Weather in Paris?" }],
      tools: [weatherTool],
      tool_choice: "required",
      stream: true,
    });
    await failOverMidEnvelope(first, "tf-stream");
    const calls: Array<{ name?: string; arguments?: string }> = [];
    let finish: string | null = null;
    for await (const chunk of await answer) {
      for (const d of chunk.choices[0]?.delta.tool_calls ?? []) calls.push(d.function ?? {});
      finish = chunk.choices[0]?.finish_reason ?? finish;
    }
    expect(finish).toBe("tool_calls");
    expect(calls.map((c) => c.name ?? "").join("")).toBe("get_weather");
    expect(calls.map((c) => c.arguments ?? "").join("")).toBe('{"city":"Paris"}');
  });
});

describe("failover of a response_format JSON answer", () => {
  const format = cityFormat;

  it("non-streamed: starts again on the next tab under the same grammar, and the answer parses", async () => {
    const first = await scripted("rf-whole");
    const answer = client.chat.completions.create({
      model: "rf-whole",
      messages: [{ role: "user", content: "A city?" }],
      response_format: format,
    });
    const { job } = await first.next("job.assign");
    first.accept(job);
    first.delta(job, 0, '{"city": "Par');
    const second = await scripted("rf-whole");
    first.close();
    const assign = await second.next("job.assign");
    // Restarted, constrained: not a continuation of the first tab's half object.
    expect(assign.continueFrom).toBeUndefined();
    expect(assign.job.sampling.constraint?.schema).toBeDefined();
    second.accept(assign.job);
    second.delta(assign.job, 0, '{"city": "Lyon"}');
    second.done(assign.job, "stop", { completion_tokens: 6 });
    const content = (await answer).choices[0]?.message.content ?? "";
    expect(JSON.parse(content)).toEqual({ city: "Lyon" });
  });

  it("streamed: continues after the text the client already holds", async () => {
    const first = await scripted("rf-stream");
    const answer = client.chat.completions.create({
      model: "rf-stream",
      messages: [{ role: "user", content: "A city?" }],
      response_format: format,
      stream: true,
    });
    const { job } = await first.next("job.assign");
    first.accept(job);
    first.delta(job, 0, '{"city": "Par');
    const stream = await answer;
    const read = (async () => {
      let text = "";
      for await (const chunk of stream) text += chunk.choices[0]?.delta.content ?? "";
      return text;
    })();
    const second = await scripted("rf-stream");
    first.close();
    const assign = await second.next("job.assign");
    expect(assign.continueFrom).toBe('{"city": "Par');
    second.accept(assign.job);
    second.delta(assign.job, 0, 'is"}');
    second.done(assign.job, "stop", { completion_tokens: 3 });
    expect(JSON.parse(await read)).toEqual({ city: "Paris" });
  });
});
