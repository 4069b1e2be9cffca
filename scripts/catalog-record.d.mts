import type { ModelRecord } from "@mlc-ai/web-llm";
export function fromWebLLMRecord(r: ModelRecord): Record<string, unknown>;
