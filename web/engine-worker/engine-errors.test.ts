import { describe, expect, it } from "vitest";
import { toEngineError } from "./engine-errors.js";

/** WebLLM's error as it throws it: its own class name on a plain Error. */
function webllmError(name: string, message: string): Error {
  const e = new Error(message);
  e.name = name;
  return e;
}

describe("toEngineError", () => {
  it.each([
    ["ContextWindowSizeExceededError", "Prompt tokens exceed context window size"],
    ["EmbeddingExceedContextWindowSizeError", "only supports up to 512 context size"],
    ["EmbeddingInputEmptyError", "Embedding input cannot be empty string"],
  ])("%s is the request's fault: bad_request, with WebLLM's words", (name, message) => {
    expect(toEngineError(webllmError(name, message), "engine_error").toPayload()).toEqual({
      code: "bad_request",
      message: `${name}: ${message}`,
    });
  });

  it("any other WebLLM error stays the engine's", () => {
    const e = toEngineError(webllmError("ModelNotLoadedError", "no model"), "engine_error");
    expect(e.code).toBe("engine_error");
    expect(toEngineError(new Error("GPU device was lost"), "engine_error").code).toBe(
      "device_lost",
    );
  });
});
