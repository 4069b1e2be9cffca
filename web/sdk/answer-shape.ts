import {
  WireChunkSchema,
  WireCompletionSchema,
  WireTextCompletionSchema,
  type WireChunk,
  type WireCompletion,
  type WireTextCompletion,
} from "../../shared/protocol/sdk-wire.js";

/**
 * How one job's text looks to the caller: chat and plain-text completions differ only in the path,
 * object names and where the text sits in a chunk (the coordinator's edge/openai/response-format.ts
 * is the server side of the same idea). The stream, resume, direct path and collecting code in
 * client.ts is written once against this interface.
 */
type Usage = NonNullable<WireChunk["usage"]>;
type Finish = "stop" | "length";

/** What every chunk carries besides its choices (the coordinator names chunks after the job). */
export interface ChunkHead {
  id: string;
  created: number;
  model: string;
}

export interface AnswerShape<Chunk extends ChunkHead, Whole> {
  path: "/chat/completions" | "/completions";
  parseChunk(json: unknown): Chunk | null;
  parseWhole(json: unknown): Whole | null;
  head(jobId: string | null, model: string): ChunkHead;
  /** The chunk sent before any text (chat announces the assistant role), if any. */
  opening(head: ChunkHead): Chunk | null;
  piece(head: ChunkHead, text: string | null, finish: Finish | null): Chunk;
  usage(head: ChunkHead, usage: Usage): Chunk;
  /** The text, finish reason and usage one chunk carries. */
  read(chunk: Chunk): { text: string; finish: Finish | null; usage: Usage | null };
  whole(head: ChunkHead, text: string, finish: Finish, usage: Usage | null): Whole;
}

const finishOf = (f: string | null | undefined): Finish | null =>
  f ? (f === "length" ? "length" : "stop") : null;

export const CHAT: AnswerShape<WireChunk, WireCompletion> = {
  path: "/chat/completions",
  parseChunk: (json) => {
    const r = WireChunkSchema.safeParse(json);
    return r.success ? r.data : null;
  },
  parseWhole: (json) => {
    const r = WireCompletionSchema.safeParse(json);
    return r.success ? r.data : null;
  },
  head: (jobId, model) => ({
    id: `chatcmpl-${jobId ?? "unknown"}`,
    created: Math.floor(Date.now() / 1000),
    model,
  }),
  opening: (head) => ({
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: { role: "assistant", content: "" }, finish_reason: null }],
  }),
  piece: (head, text, finish) => ({
    ...head,
    object: "chat.completion.chunk",
    choices: [{ index: 0, delta: text === null ? {} : { content: text }, finish_reason: finish }],
  }),
  usage: (head, usage) => ({ ...head, object: "chat.completion.chunk", choices: [], usage }),
  read: (chunk) => {
    const c = chunk.choices[0];
    return {
      text: c?.delta.content ?? "",
      finish: finishOf(c?.finish_reason),
      usage: chunk.usage ?? null,
    };
  },
  whole: (head, text, finish, usage) => ({
    ...head,
    object: "chat.completion",
    choices: [{ index: 0, message: { role: "assistant", content: text }, finish_reason: finish }],
    ...(usage ? { usage } : {}),
  }),
};

export const TEXT: AnswerShape<WireTextCompletion, WireTextCompletion> = {
  path: "/completions",
  parseChunk: (json) => {
    const r = WireTextCompletionSchema.safeParse(json);
    return r.success ? r.data : null;
  },
  parseWhole: (json) => TEXT.parseChunk(json),
  head: (jobId, model) => ({
    id: `cmpl-${jobId ?? "unknown"}`,
    created: Math.floor(Date.now() / 1000),
    model,
  }),
  opening: () => null,
  piece: (head, text, finish) => ({
    ...head,
    object: "text_completion",
    choices: [{ index: 0, text: text ?? "", finish_reason: finish }],
  }),
  usage: (head, usage) => ({ ...head, object: "text_completion", choices: [], usage }),
  read: (chunk) => {
    const c = chunk.choices[0];
    return { text: c?.text ?? "", finish: finishOf(c?.finish_reason), usage: chunk.usage ?? null };
  },
  whole: (head, text, finish, usage) => ({
    ...TEXT.piece(head, text, finish),
    ...(usage ? { usage } : {}),
  }),
};
