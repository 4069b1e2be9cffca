import type { ChatMessage } from "../protocol/job.js";
import type { Affinity } from "./scheduler.js";

/**
 * Conversation keys for affinity routing. A tab's engine (WebLLM) keeps the KV cache of the
 * conversation it served last and reuses it when the next chat request extends that conversation,
 * so a follow-up turn is fastest on the tab that served the turn before. The coordinator remembers
 * only a hash of each conversation (its messages and the answer), never the text. The hash is the
 * caller's (SHA-256 in the coordinator: edge/region/conversation-hash.ts), as shared/ code has no
 * Web Crypto types.
 */
export type TextHash = (text: string) => Promise<string>;

/** The messages as the engine sees them (role, name, content), for hashing. */
function canonical(messages: readonly ChatMessage[]): string {
  return JSON.stringify(messages.map((m) => [m.role, m.name ?? null, m.content]));
}

/**
 * What a tab holds after answering `messages` with `answer`: the key a follow-up turn computes
 * for its history, and its size in tokens (about 4 characters each, as the prompt's own estimate).
 */
export async function servedConversation(
  messages: readonly ChatMessage[],
  answer: string,
  hash: TextHash,
): Promise<{ key: string; tokens: number }> {
  const all: ChatMessage[] = [...messages, { role: "assistant", content: answer }];
  return { key: await hash(canonical(all)), tokens: tokensOf(all) };
}

/**
 * A follow-up turn's affinity: the key of its history (every message up to and including the last
 * assistant message) and that history's size in tokens. Null for a first turn.
 */
export async function followUpAffinity(
  messages: readonly ChatMessage[],
  hash: TextHash,
): Promise<Affinity | null> {
  let last = -1;
  messages.forEach((m, i) => {
    if (m.role === "assistant") last = i;
  });
  if (last < 0) return null;
  const history = messages.slice(0, last + 1);
  return { key: await hash(canonical(history)), cachedTokens: tokensOf(history) };
}

function tokensOf(messages: readonly ChatMessage[]): number {
  return Math.ceil(messages.reduce((n, m) => n + m.content.length, 0) / 4);
}
