import { runInDurableObject } from "cloudflare:test";
import type { RegionParts } from "../../edge/region/region-parts.js";
import { regionStub } from "../../edge/region/region-stub.js";
import { sseData } from "../../web/sdk/sse.js";
import { appEnv } from "./tab-helpers.js";

/**
 * Helpers of the cheap-frames tests (edge/region/cheap-frames*.test.ts): batches of job text kept
 * unwritten so an eviction loses them, as a crash between batches would.
 */

/**
 * Hold batches of job text in memory with no timer to write them: an eviction then loses the
 * batch, as a crash between batches would (a graceful eviction waits for the timer).
 */
export async function holdBatches(): Promise<void> {
  await runInDurableObject(regionStub(appEnv, "wnam"), (obj) => {
    const { parts } = obj as unknown as { parts: RegionParts };
    parts.jobs.texts.bounds.maxDeltas = 1_000_000;
    parts.jobs.texts.bounds.maxDelayMs = Number.POSITIVE_INFINITY;
  });
}

/** Read a streamed answer until `n` pieces of content arrived, then drop the stream. */
export async function firstContent(res: Response, n: number): Promise<string[]> {
  const pieces: string[] = [];
  for await (const data of sseData(res.body!)) {
    const content = (JSON.parse(data) as { choices?: Array<{ delta?: { content?: string } }> })
      .choices?.[0]?.delta?.content;
    if (content) pieces.push(content);
    if (pieces.length === n) break;
  }
  // An object is only evicted with no request in flight: the client drops its stream.
  await res.body!.cancel();
  return pieces;
}

/** A tab's `job.done` for a three-token answer (add `chars` to say how much was sent). */
export function doneFrame(jobId: string) {
  return {
    type: "job.done",
    jobId,
    finishReason: "stop",
    usage: { prompt_tokens: 5, completion_tokens: 3, total_tokens: 8 },
  };
}
