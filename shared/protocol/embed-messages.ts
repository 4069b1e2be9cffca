import { z } from "zod";

/**
 * postMessage between the embed widget (on the host page) and the hidden contributor frame (on the
 * coordinator's origin). Both sides check the sender's origin and window first, then parse with
 * these schemas; anything else is ignored. Every message carries `tabgrid: 1` so unrelated
 * messages on a busy host page are told apart cheaply.
 */
export const EMBED_CHANNEL_VERSION = 1;

/** Models an embedded tab may serve by default: browsers partition caches per site, so keep small. */
export const EMBED_MAX_VRAM_MB = 1100;

const base = { tabgrid: z.literal(EMBED_CHANNEL_VERSION) };
const modelId = z.string().min(1).max(200);

// ---- widget -> frame --------------------------------------------------------------------------

/** The visitor consented: start contributing with the host page's settings. */
export const EmbedStartSchema = z.object({
  ...base,
  type: z.literal("start"),
  /** Models the site allows (empty: any small model the GPU can serve). */
  models: z.array(modelId).max(32),
  /** Share of the GPU the site asks for, 1–100 (reported to the runtime; see docs/embed.md). */
  gpuShare: z.number().int().min(1).max(100),
});

/** Withdrawal or `Tabgrid.contributor.stop()`: stop serving and close the socket. */
export const EmbedStopSchema = z.object({ ...base, type: z.literal("stop") });

export const WidgetToFrameSchema = z.discriminatedUnion("type", [
  EmbedStartSchema,
  EmbedStopSchema,
]);
export type WidgetToFrame = z.infer<typeof WidgetToFrameSchema>;

// ---- frame -> widget --------------------------------------------------------------------------

export const EmbedPhaseSchema = z.enum([
  "ready",
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
  state: z.enum(["loading", "idle", "busy", "paused"]).nullable(),
  connection: z.string().max(40).nullable(),
  model: modelId.nullable(),
  jobsServed: z.number().int().nonnegative(),
  /** Model loading progress 0–1, while loading. */
  progress: z.number().min(0).max(1).nullable(),
  /** Why the frame cannot contribute (no WebGPU, no small model, load failure). */
  detail: z.string().max(500).nullable(),
});
export type EmbedStatus = z.infer<typeof EmbedStatusSchema>;

export const FrameToWidgetSchema = z.discriminatedUnion("type", [EmbedStatusSchema]);
export type FrameToWidget = z.infer<typeof FrameToWidgetSchema>;
