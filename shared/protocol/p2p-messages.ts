import { z } from "zod";
import { FinishReasonSchema, UsageSchema } from "./job.js";

/**
 * The direct (WebRTC data channel) path of a job: tab -> calling page, over a `peerjs`
 * DataConnection with JSON serialization. The relay through the coordinator stays the durable
 * record of every job; these frames only let text arrive sooner. Each delta carries its character
 * offset in the answer, so the page merges the two paths without duplicating or losing text.
 */
export const P2PMessageType = { Delta: "delta", Done: "done" } as const;

/** The DataConnection metadata a tab sends when it connects: which job it serves. */
export const DirectMetadataSchema = z.object({
  jobId: z.string().min(1).max(64),
});
export type DirectMetadata = z.infer<typeof DirectMetadataSchema>;

export const DirectDeltaSchema = z.object({
  type: z.literal(P2PMessageType.Delta),
  jobId: z.string().min(1).max(64),
  /** Characters of the answer before this piece (after a failover, includes text from the old tab). */
  offset: z.number().int().nonnegative(),
  text: z
    .string()
    .min(1)
    .max(64 * 1024),
});

export const DirectDoneSchema = z.object({
  type: z.literal(P2PMessageType.Done),
  jobId: z.string().min(1).max(64),
  /** Total characters of the answer; the page has all of it once it holds this many. */
  chars: z.number().int().nonnegative(),
  finishReason: FinishReasonSchema,
  usage: UsageSchema,
});

export const DirectMessageSchema = z.discriminatedUnion("type", [
  DirectDeltaSchema,
  DirectDoneSchema,
]);
export type DirectMessage = z.infer<typeof DirectMessageSchema>;
