import * as z from "zod/mini";

/**
 * postMessage between the embed widget (on the host page) and the hidden contributor frame (on the
 * coordinator's origin). Both sides check the sender's origin and window first, then parse with
 * these schemas; anything else is ignored. Every message carries `tabgrid: 1` so unrelated
 * messages on a busy host page are told apart cheaply. Written with `zod/mini` (tree-shakable) so
 * embed.js stays small.
 */
export const EMBED_CHANNEL_VERSION = 1;

/** Models an embedded tab may serve by default: browsers partition caches per site, so keep small. */
export const EMBED_MAX_VRAM_MB = 1100;

const base = { tabgrid: z.literal(EMBED_CHANNEL_VERSION) };
const modelId = z.string().check(z.minLength(1), z.maxLength(200));

// ---- widget -> frame --------------------------------------------------------------------------

/**
 * The host page asks the frame to contribute with its settings. This is not consent: the frame
 * starts only if the visitor consented inside the frame itself (a click in the coordinator's own
 * document, remembered per host origin where the browser lets the frame store it); otherwise it
 * answers with phase "consent" and shows its own question.
 */
export const EmbedStartSchema = z.object({
  ...base,
  type: z.literal("start"),
  /** Models the site allows (empty: any small model the GPU can serve). */
  models: z.array(modelId).check(z.maxLength(32)),
  /** Share of wall time the GPU may work, 1–100: the frame rests between jobs (web/control). */
  gpuShare: z.number().check(z.int(), z.minimum(1), z.maximum(100)),
});

/**
 * Withdrawal or `Tabgrid.contributor.stop()`: stop serving and close the socket. `forget`
 * (withdrawal): the frame also forgets the consent it stored for this host origin, so contributing
 * again asks again.
 */
export const EmbedStopSchema = z.object({
  ...base,
  type: z.literal("stop"),
  forget: z.optional(z.boolean()),
});

export const WidgetToFrameSchema = z.discriminatedUnion("type", [
  EmbedStartSchema,
  EmbedStopSchema,
]);
export type WidgetToFrame = z.infer<typeof WidgetToFrameSchema>;

// ---- frame -> widget --------------------------------------------------------------------------

/**
 * `consent`: the frame waits for the visitor's click in its own document (the widget shows it);
 * `declined`: the visitor said no there.
 */
export const EmbedPhaseSchema = z.enum([
  "ready",
  "consent",
  "declined",
  "loading",
  "contributing",
  "stopped",
  "unsupported",
  "failed",
]);
export type EmbedPhase = z.infer<typeof EmbedPhaseSchema>;

export const EmbedStatusSchema = z.object({
  ...base,
  type: z.literal("status"),
  phase: EmbedPhaseSchema,
  /** The runtime's own state and connection, when running. */
  state: z.nullable(z.enum(["loading", "idle", "busy", "paused"])),
  connection: z.nullable(z.string().check(z.maxLength(40))),
  model: z.nullable(modelId),
  jobsServed: z.number().check(z.int(), z.minimum(0)),
  /** Model loading progress 0–1, while loading. */
  progress: z.nullable(z.number().check(z.minimum(0), z.maximum(1))),
  /** Why the frame cannot contribute (no WebGPU, no small model, load failure). */
  detail: z.nullable(z.string().check(z.maxLength(500))),
  /**
   * Height in CSS px of what the frame shows (its consent question, or its running notice with
   * Stop), 0 when it shows nothing: the widget sizes the frame to it, since the frame counts a
   * click, and takes jobs, only while all of it is visible (where the browser can tell).
   */
  height: z.optional(z.number().check(z.int(), z.minimum(0), z.maximum(2000))),
});
export type EmbedStatus = z.infer<typeof EmbedStatusSchema>;

export const FrameToWidgetSchema = z.discriminatedUnion("type", [EmbedStatusSchema]);
export type FrameToWidget = z.infer<typeof FrameToWidgetSchema>;

// ---- consent window -> frame ------------------------------------------------------------------

/**
 * Where the frame cannot tell whether its question is visible (no IntersectionObserver v2), the
 * visitor answers in a top-level window on the coordinator's origin (`/consent/`), which the host
 * page cannot cover; that window sends the answer to the frame that opened it (its `opener`, same
 * origin). The frame accepts it only from that window, from its own origin, with the nonce it put
 * in the window's address, for the host and share it asked about. A message, not storage: the
 * window's storage is first-party, the frame's is partitioned under the host site.
 */
export const ConsentWindowAnswerSchema = z.object({
  ...base,
  type: z.literal("consent"),
  nonce: z.string().check(z.minLength(16), z.maxLength(64)),
  host: z.string().check(z.maxLength(300)),
  /** The GPU share (10–100 %) the window's question named. */
  share: z.number().check(z.int(), z.minimum(10), z.maximum(100)),
  answer: z.enum(["yes", "no"]),
});
export type ConsentWindowAnswer = z.infer<typeof ConsentWindowAnswerSchema>;
