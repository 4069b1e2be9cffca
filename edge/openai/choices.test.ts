import OpenAI from "openai";
import { afterEach, describe, expect, it } from "vitest";
import { MAX_CHOICES } from "../../shared/openai/request-fields.js";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/** `n` > 1 with the official `openai` client: one job per choice, fanned out to the tabs there are. */
const client = workerdOpenAI();

const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));
async function serving(model: string, count: number): Promise<EngineTab[]> {
  const opened = await Promise.all(Array.from({ length: count }, () => EngineTab.connect(model)));
  tabs.push(...opened);
  return opened;
}

describe("n > 1", () => {
  it("non-streamed: n choices with distinct index, usage counts the prompt once", async () => {
    const served = await serving("n-whole", 2);
    const { data: r, response } = await client.chat.completions
      .create({
        model: "n-whole",
        messages: [{ role: "user", content: "one two" }],
        n: 3,
        seed: 7,
      })
      .withResponse();
    expect(r.choices.map((c) => c.index)).toEqual([0, 1, 2]);
    for (const c of r.choices) {
      expect(c.message.content).toBe("You said: one two");
      expect(c.finish_reason).toBe("stop");
    }
    // "You said: one two" is 4 tokens per answer; the prompt (2 words) is counted once.
    expect(r.usage).toEqual({ prompt_tokens: 2, completion_tokens: 12, total_tokens: 14 });
    expect(response.headers.get("x-tabgrid-job-id")?.split(",")).toHaveLength(3);
    // Each choice is its own job, its seed moved by its index so seeded answers differ.
    const seeds = served.flatMap((t) => t.jobs.map((j) => j.sampling.seed)).sort();
    expect(seeds).toEqual([7, 8, 9]);
  });

  it("streamed: fanned out to several tabs, each choice ends with its finish_reason, usage summed", async () => {
    const served = await serving("n-stream", 2);
    const stream = await client.chat.completions.create({
      model: "n-stream",
      messages: [{ role: "user", content: "a b c" }],
      n: 2,
      stream: true,
      stream_options: { include_usage: true },
    });
    const text = ["", ""];
    const finish: (string | null)[] = [null, null];
    let usage: OpenAI.CompletionUsage | undefined;
    let chunks = 0;
    for await (const chunk of stream) {
      chunks++;
      for (const c of chunk.choices) {
        text[c.index] += c.delta.content ?? "";
        finish[c.index] = c.finish_reason ?? finish[c.index]!;
      }
      usage = chunk.usage ?? usage;
    }
    expect(text).toEqual(["You said: a b c", "You said: a b c"]);
    expect(finish).toEqual(["stop", "stop"]);
    expect(usage).toEqual({ prompt_tokens: 3, completion_tokens: 10, total_tokens: 13 });
    expect(chunks).toBeGreaterThan(4);
    // Both tabs served one choice each.
    expect(served.map((t) => t.jobs.length)).toEqual([1, 1]);
  });

  it("plain completions take n too", async () => {
    await serving("n-completion", 2);
    const r = await client.completions.create({ model: "n-completion", prompt: "go", n: 2 });
    expect(r.choices.map((c) => [c.index, c.text])).toEqual([
      [0, "Continuing: go"],
      [1, "Continuing: go"],
    ]);
  });

  it(`n above ${MAX_CHOICES} is a 400 naming n`, async () => {
    const err = await client.chat.completions
      .create({ model: "n-any", messages: [{ role: "user", content: "x" }], n: MAX_CHOICES + 1 })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OpenAI.BadRequestError);
    expect((err as InstanceType<typeof OpenAI.BadRequestError>).param).toBe("n");
  });
});
