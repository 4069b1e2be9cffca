/**
 * Tabgrid's browser SDK (served as /sdk/tabgrid.js, and as `window.Tabgrid` by embed.js api mode).
 * The official `openai` client remains the recommended client on servers.
 */
export { Tabgrid } from "./client.js";
export { Stream } from "./stream.js";
export type {
  Arrival,
  ChatCompletion,
  ChatCompletionChunk,
  ChatCompletionParams,
  ChatMessageParam,
  ChatStream,
  CommonParams,
  Completion,
  CompletionParams,
  CompletionStream,
  DirectStop,
  RequestOptions,
  TabgridOptions,
  TransportStats,
} from "./types.js";
export * from "./errors.js";
