/**
 * Typed WebSocket close codes for the contributor channel (4000–4999 is the application range).
 * The close reason is a short human-readable text; the code is what clients switch on.
 */
export const CloseCode = {
  /** Normal closure (also used to echo a peer's 1005 "no status", which cannot be sent back). */
  Normal: 1000,
  /** A frame was not valid JSON or did not match the schema. */
  BadFrame: 4000,
  /** The tab speaks an older protocol than the coordinator accepts: reload the page. */
  ProtocolTooOld: 4001,
  /** A message other than `hello` arrived before registration. */
  NotRegistered: 4002,
  /** A frame exceeded the size limit. */
  FrameTooLarge: 4003,
  /** The same node identity connected again elsewhere; this older socket is retired. */
  Replaced: 4004,
  /** The tab speaks a newer protocol than this coordinator (a deploy is rolling out): retry later. */
  ProtocolTooNew: 4005,
  /** No frame (ping or status) arrived for 1.5 status intervals: the tab is presumed gone. */
  Stale: 4006,
  /** The identity proof in `hello` did not verify. */
  IdentityRejected: 4007,
  /** The socket sent frames faster than its budget (token bucket per socket; docs/limits.md). */
  RateLimited: 4009,
  /** The socket did not send `hello` within the deadline after the upgrade. */
  HelloTimeout: 4010,
  /**
   * The tab's Region shard split and the tab now belongs to another shard (edge/region/shard-role.ts):
   * reconnect at once; the coordinator places the new socket. Sent only while the tab holds no job.
   */
  Moved: 4011,
} as const;
export type CloseCode = (typeof CloseCode)[keyof typeof CloseCode];

// 4008 was reserved for "refused" but never sent: too many connections from one address are
// refused with HTTP 429 before the upgrade. Do not reuse it for something else.

/** Close codes after which reconnecting cannot help (the tab must reload or stop). */
export const FATAL_CLOSE_CODES: ReadonlySet<number> = new Set([CloseCode.ProtocolTooOld]);
