import * as z from "zod/mini";

/**
 * The direct (WebRTC data channel) path of a job: tab -> calling page, over a `peerjs`
 * DataConnection with JSON serialization. The relay through the coordinator stays the durable
 * record of every job; these frames only let text arrive sooner. Each delta carries its character
 * offset in the answer, so the page merges the two paths without duplicating or losing text.
 *
 * Also what browsers need to reach the signalling (peer ids, key, ICE config). Written with
 * `zod/mini` so the lazily loaded p2p module stays small; the server's signalling frames are in
 * peerjs-messages.ts.
 */
export const P2PMessageType = { Delta: "delta", Done: "done" } as const;

/** The API key the `peerjs` client sends by default; the only one the signalling accepts. */
export const PEERJS_KEY = "peerjs";

/**
 * Peer ids name their signalling shard (`tg-<shard>-<32 hex>`), so the Worker routes a socket to
 * the right Signal object without a lookup, and two peers meet only in one shard: a tab that is
 * introduced to a caller asks for its own id in the caller's shard (`GET
 * /v1/signal/peerjs/id?shard=`). Only the server makes ids: the 32 hex are a nonce and a tag signed
 * by the coordinator (edge/signal/peer-ids.ts), and a socket for any other id is refused.
 */
export const PEER_ID_RE = /^tg-([a-z]{2,8})-([0-9a-f]{32})$/;

export function peerShard(id: string): string | null {
  return PEER_ID_RE.exec(id)?.[1] ?? null;
}

/** The id `tg-<shard>-<hex32>` (the server's issuer fills `hex32` with a nonce and its tag). */
export function peerIdIn(shard: string, hex32: string): string {
  return `tg-${shard}-${hex32}`;
}

/** RTCIceServer as operators configure it (ICE_SERVERS) and as /v1/signal/ice serves it. */
export const IceServerSchema = z.object({
  urls: z.union([
    z.string().check(z.minLength(1)),
    z.array(z.string().check(z.minLength(1))).check(z.minLength(1)),
  ]),
  username: z.optional(z.string()),
  credential: z.optional(z.string()),
});
export const IceConfigSchema = z.object({
  iceServers: z.array(IceServerSchema).check(z.maxLength(16)),
});
export type IceConfig = z.infer<typeof IceConfigSchema>;

const jobId = z.string().check(z.minLength(1), z.maxLength(64));
const count = z.number().check(z.int(), z.minimum(0));

/** The DataConnection metadata a tab sends when it connects: the job that opened the channel. */
export const DirectMetadataSchema = z.object({ jobId });
export type DirectMetadata = z.infer<typeof DirectMetadataSchema>;

export const DirectDeltaSchema = z.object({
  type: z.literal(P2PMessageType.Delta),
  jobId,
  /** Characters of the answer before this piece (after a failover, includes text from the old tab). */
  offset: count,
  text: z.string().check(z.minLength(1), z.maxLength(64 * 1024)),
});

export const DirectDoneSchema = z.object({
  type: z.literal(P2PMessageType.Done),
  jobId,
  /** Total characters of the answer; the page has all of it once it holds this many. */
  chars: count,
  /** Same values as FinishReasonSchema / UsageSchema in job.ts. */
  finishReason: z.enum(["stop", "length", "abort"]),
  usage: z.object({ prompt_tokens: count, completion_tokens: count, total_tokens: count }),
});

export const DirectMessageSchema = z.discriminatedUnion("type", [
  DirectDeltaSchema,
  DirectDoneSchema,
]);
export type DirectMessage = z.infer<typeof DirectMessageSchema>;
