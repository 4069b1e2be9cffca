import type { FinishReason, JobError, Usage } from "../../shared/protocol/job.js";
import type { TokenLogprob } from "../../shared/protocol/logprobs.js";

/**
 * Events a Region object streams to the Worker for one job, as NDJSON over the RPC stream. Both
 * ends are this coordinator, so these are plain types rather than a parsed boundary.
 */
export type JobEvent =
  | { type: "delta"; text: string }
  /**
   * Checked entries of the serving tab's log-probabilities (a job that asked for them), as the tab
   * sends them: after the delta of the text they belong to, so a stream gives each chunk its own.
   */
  | { type: "logprobs"; entries: TokenLogprob[] }
  /**
   * The answer so far is dropped and starts again on another tab (a tool envelope whose tab failed:
   * a grammar cannot resume after another tab's text, and no client has seen an envelope yet).
   */
  | { type: "restart" }
  | {
      type: "done";
      finishReason: FinishReason;
      usage: Usage;
      /**
       * Only for a job that asked for logprobs: the checked entries of the tab that wrote the
       * whole answer, or null when none can be given (the answer was continued on another tab
       * after a failover, or the finishing tab's entries failed the coordinator's checks).
       */
      logprobs?: TokenLogprob[] | null;
    }
  | { type: "error"; error: JobError };

const encoder = new TextEncoder();

export function encodeEvent(event: JobEvent): Uint8Array {
  return encoder.encode(JSON.stringify(event) + "\n");
}

/** What `RegionDurableObject.openJob` answers. */
export type OpenJobResult =
  | {
      ok: true;
      jobId: string;
      /** The serving tab's public id (header x-tabgrid-node), or "queued". */
      tab: string;
      readerId: string;
      events: ReadableStream<Uint8Array>;
    }
  /** `offerMs`: the region declined a request asked with `acceptUpToMs`, offering this. */
  | { ok: false; error: JobError; offerMs?: number };

/** What `RegionDurableObject.subscribe` answers. */
export type SubscribeResult =
  | { ok: true; readerId: string; events: ReadableStream<Uint8Array> }
  | { ok: false; error: JobError };
