import { describe, expect, it } from "vitest";
import {
  DeterministicEngine,
  expectedOutput,
  scoreClaim,
  SCORE_LOGPROBS,
} from "../../test/support/deterministic-engine.js";
import type { ModelRecord } from "../../shared/models/catalog.js";

/** The deterministic test engine's scoring path, through the InferenceEngine interface. */

const model: ModelRecord = { model: "https://x/m", model_id: "M-q4f32_1-MLC", model_lib: "x" };
const input = {
  kind: "chat" as const,
  messages: [{ role: "user" as const, content: "tell me about tides" }],
};
const sampling = { max_tokens: 32 };
const own = expectedOutput(input, sampling).text;
const req = (answer: string, seed = 1) => ({
  input,
  sampling,
  answer,
  seed,
  scoreStop: true,
  maxTokens: 256,
});

describe("DeterministicEngine.score", () => {
  it("scores its own answer high and stopping after it likely", async () => {
    const engine = new DeterministicEngine(1);
    await engine.load(model, () => {});
    const r = await engine.score(req(own));
    expect(r.tokenLogprobs).toHaveLength(own.split(" ").length);
    expect(r.tokenLogprobs.every((lp) => lp === SCORE_LOGPROBS.own)).toBe(true);
    expect(r.stopLogprob).toBeGreaterThan(-1);
  });

  it("scores foreign text low and a truncated answer's stop unlikely", async () => {
    const engine = new DeterministicEngine(1);
    await engine.load(model, () => {});
    const spam = await engine.score(req("Buy cheap watches now at our store"));
    expect(spam.tokenLogprobs.every((lp) => lp <= SCORE_LOGPROBS.foreign)).toBe(true);
    const cut = await engine.score(req(own.split(" ").slice(0, 3).join(" ")));
    expect(cut.tokenLogprobs.every((lp) => lp === SCORE_LOGPROBS.own)).toBe(true);
    expect(cut.stopLogprob).toBeLessThan(-5);
  });

  it("scores a window after its prefix where it stands in its own answer", () => {
    const words = own.split(" ");
    const prefix = words.slice(0, 3).join(" ");
    const window = ` ${words.slice(3).join(" ")}`;
    const honest = scoreClaim({ ...req(window), prefix });
    expect(honest.tokenLogprobs).toHaveLength(words.length - 3);
    expect(honest.tokenLogprobs.every((lp) => lp === SCORE_LOGPROBS.own)).toBe(true);
    expect(honest.stopLogprob).toBeGreaterThan(-1);
    // The whole answer's count (prefix and window).
    expect(honest.answerTokens).toBe(words.length);
    // A tail that is not its answer scores low, however honest the prefix.
    const tail = scoreClaim({ ...req(" Buy cheap watches now"), prefix });
    expect(tail.tokenLogprobs.every((lp) => lp <= SCORE_LOGPROBS.foreign)).toBe(true);
  });

  it("adds a GPU class's noise, reproducible from the audit seed", () => {
    const noise = { sd: 0.3, flipRate: 0.05, seed: 3 };
    const a = scoreClaim(req(own, 9), noise);
    expect(scoreClaim(req(own, 9), noise)).toEqual(a);
    expect(scoreClaim(req(own, 10), noise)).not.toEqual(a);
    expect(a.tokenLogprobs.every((lp) => lp <= 0)).toBe(true);
  });

  it("refuses to score before a model is loaded", async () => {
    await expect(new DeterministicEngine(1).score(req(own))).rejects.toMatchObject({
      code: "not_loaded",
    });
  });
});
