import { afterEach, describe, expect, it } from "vitest";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/** The sampling fields docs/api.md says are honoured reach the tab unchanged; `user` does not. */
const client = workerdOpenAI();

const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));

describe("sampling fields", () => {
  it("seed, temperature, top_p, penalties, logit_bias and stop reach the tab's engine", async () => {
    const tab = await EngineTab.connect("sf-pass");
    tabs.push(tab);
    await client.chat.completions.create({
      model: "sf-pass",
      messages: [{ role: "user", content: "x" }],
      seed: 11,
      temperature: 0.7,
      top_p: 0.9,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      logit_bias: { "50256": -100, "7": 3 },
      stop: ["END"],
    });
    expect(tab.jobs[0]?.sampling).toEqual({
      max_tokens: 256,
      seed: 11,
      temperature: 0.7,
      top_p: 0.9,
      presence_penalty: 0.5,
      frequency_penalty: -0.25,
      logit_bias: { "50256": -100, "7": 3 },
      stop: ["END"],
    });
  });

  it("max_completion_tokens wins over max_tokens and cuts the answer with finish_reason length", async () => {
    const tab = await EngineTab.connect("sf-max");
    tabs.push(tab);
    const r = await client.chat.completions.create({
      model: "sf-max",
      messages: [{ role: "user", content: "one two three" }],
      max_tokens: 50,
      max_completion_tokens: 2,
    });
    expect(tab.jobs[0]?.sampling.max_tokens).toBe(2);
    expect(r.choices[0]?.message.content).toBe("You said:");
    expect(r.choices[0]?.finish_reason).toBe("length");
    expect(r.usage?.completion_tokens).toBe(2);
  });

  it("user and safety_identifier are never sent to tabs", async () => {
    const tab = await EngineTab.connect("sf-user");
    tabs.push(tab);
    await client.chat.completions.create({
      model: "sf-user",
      messages: [{ role: "user", content: "x" }],
      user: "end-user-4242",
      safety_identifier: "safety-4343",
    });
    const sent = JSON.stringify(tab.jobs[0]);
    expect(sent).not.toContain("end-user-4242");
    expect(sent).not.toContain("safety-4343");
  });
});
