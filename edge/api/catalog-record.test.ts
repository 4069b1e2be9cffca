import { describe, expect, it } from "vitest";
import type { AppEnv } from "../env.js";
import { refuseEmbeddingModel } from "./embeddings.js";

/** The catalog is built once per EXTRA_MODELS value (embeddings.ts): a new value is seen at once. */
describe("the chat routes' catalog lookup", () => {
  const extra = JSON.stringify([
    {
      model: "https://example.test/op-embed",
      model_id: "op-embed-model",
      model_lib: "https://example.test/op-embed.wasm",
      model_type: 1,
      embedding_dimensions: 8,
    },
  ]);
  const env = (raw: string | undefined) => ({ EXTRA_MODELS: raw }) as unknown as AppEnv;

  it("follows the operator's EXTRA_MODELS when it changes, in both directions", () => {
    expect(() => refuseEmbeddingModel(env(undefined), "op-embed-model")).not.toThrow();
    expect(() => refuseEmbeddingModel(env(extra), "op-embed-model")).toThrow(/embedding model/);
    expect(() => refuseEmbeddingModel(env(extra), "op-embed-model")).toThrow(/embedding model/);
    expect(() => refuseEmbeddingModel(env(undefined), "op-embed-model")).not.toThrow();
  });
});
