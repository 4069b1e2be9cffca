import { z } from "zod";
import {
  CoordinatorMessageSchema,
  HelloSchema,
  TabMessageSchema,
} from "../../shared/protocol/node-messages.js";

/**
 * The typed channel between the contributor page and its tab-link Worker
 * (web/tab-link/tab-link-worker.ts), which holds the coordinator WebSocket and every timer that
 * must keep running while the tab is hidden. Both ends parse what they receive with these schemas
 * (`safeParse`): postMessage is an untrusted boundary like any other, and a bad message is dropped
 * and logged, never acted on. Frames to and from the coordinator are carried as parsed objects and
 * re-checked with the wire's own schemas.
 */

const id = z.number().int().nonnegative();
export const ConnectionSchema = z.enum([
  "connecting",
  "connected",
  "reconnecting",
  "stopped",
  "fatal",
]);

// ---- page -> tab link -------------------------------------------------------------------------

export const PageToLinkSchema = z.discriminatedUnion("type", [
  /** Open the coordinator socket (again); a socket already open is left as it is. */
  z.object({
    type: z.literal("connect"),
    url: z.string().url().max(2000),
    pingIntervalMs: z.number().int().positive().optional(),
  }),
  /** Close the socket and stop reconnecting (contributor stopped, page frozen or going away). */
  z.object({ type: z.literal("disconnect"), reason: z.string().max(120) }),
  /** A frame for the coordinator. */
  z.object({ type: z.literal("send"), msg: TabMessageSchema }),
  /** The answer to `hello.request`. */
  z.object({ type: z.literal("hello"), id, hello: HelloSchema }),
  /** The answer to `heartbeat.request`. */
  z.object({ type: z.literal("heartbeat"), id, frame: TabMessageSchema }),
  /** Run a timer in the Worker and post `timer.fire` when it falls due (see link-client.ts). */
  z.object({
    type: z.literal("timer.set"),
    id,
    ms: z
      .number()
      .nonnegative()
      .max(2 ** 31 - 1),
    repeat: z.boolean(),
  }),
  z.object({ type: z.literal("timer.clear"), id }),
]);
export type PageToLink = z.infer<typeof PageToLinkSchema>;

// ---- tab link -> page -------------------------------------------------------------------------

export const LinkToPageSchema = z.discriminatedUnion("type", [
  z.object({
    type: z.literal("connection"),
    connection: ConnectionSchema,
    detail: z.string().max(500).nullable(),
  }),
  /** A coordinator frame, already checked against the wire schema by the Worker. */
  z.object({ type: z.literal("message"), msg: CoordinatorMessageSchema }),
  /** The coordinator's challenge: the page builds and signs `hello` (it knows state and models). */
  z.object({ type: z.literal("hello.request"), id, nonce: z.string().max(100) }),
  /** The status interval fell due: the page answers with the current status frame. */
  z.object({ type: z.literal("heartbeat.request"), id }),
  z.object({ type: z.literal("timer.fire"), id }),
  z.object({ type: z.literal("log"), message: z.string().max(2000) }),
]);
export type LinkToPage = z.infer<typeof LinkToPageSchema>;

/** The slice of a Worker / DedicatedWorkerGlobalScope / MessagePort both ends use. */
export interface LinkPort {
  postMessage(message: unknown): void;
  addEventListener(type: "message", listener: (ev: MessageEvent) => void): void;
}
