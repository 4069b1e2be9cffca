import { vectorFrames } from "../../shared/protocol/vector-frames.js";
import type { EmbeddingInput, JobSpec } from "../../shared/protocol/job.js";
import type { TabMessage } from "../../shared/protocol/node-messages.js";
import { EngineError, type InferenceEngine } from "../engine/inference-engine.js";
import { needsReload } from "./recovery.js";
import type { TabStatus } from "./tab-status.js";
import type { Timers } from "./timers.js";

export interface EmbeddingJobDeps {
  engine: InferenceEngine;
  status: TabStatus;
  send(msg: TabMessage): void;
  timers: Timers;
  progressEveryMs: number | null;
  onModelLost(e: EngineError): void;
  /** Called before job.done / job.error, so a pause it decides is announced in that frame. */
  ended(end: EmbeddingJobEnd): void;
}

/** How an embedding job ended, for the runner's ledger hook. */
export interface EmbeddingJobEnd {
  outcome: "done" | "aborted" | "failed";
  promptTokens: number;
  errorCode?: string;
}

/**
 * Serve one embedding job (protocol 3): `job.accept`, `job.progress` while the model reads (there
 * is no first token to end a prefill), the vectors in `job.vectors` frames, then `job.done` with
 * the tokens read. A cancelled job sends no vectors and ends with finishReason "abort"; an engine
 * failure is a `job.error` (and a lost model is reloaded), as for a chat job.
 */
export async function serveEmbedding(
  d: EmbeddingJobDeps,
  job: JobSpec,
  input: EmbeddingInput,
  cancelled: () => boolean,
): Promise<void> {
  const { engine, status, send, timers } = d;
  send({ type: "job.accept", jobId: job.id });
  status.setState("busy", { serving: { model: job.model, clientPlace: job.clientPlace ?? null } });
  const every = d.progressEveryMs;
  let progress =
    every === null
      ? null
      : timers.setInterval(
          () => send({ type: "job.progress", jobId: job.id, phase: "prefill" }),
          every,
        );
  const stopProgress = () => {
    if (progress !== null) timers.clearInterval(progress);
    progress = null;
  };
  try {
    const result = await engine.embed({ texts: input.inputs, dimensions: input.dimensions });
    stopProgress();
    const aborted = cancelled();
    if (!aborted) for (const frame of vectorFrames(job.id, result.vectors)) send(frame);
    d.ended({ outcome: aborted ? "aborted" : "done", promptTokens: result.promptTokens });
    send({
      type: "job.done",
      jobId: job.id,
      finishReason: aborted ? "abort" : "stop",
      usage: {
        prompt_tokens: result.promptTokens,
        completion_tokens: 0,
        total_tokens: result.promptTokens,
      },
      state: status.resting,
    });
    if (!aborted) status.update({ jobsServed: status.now.jobsServed + 1 });
  } catch (err) {
    stopProgress();
    const e = err instanceof EngineError ? err : new EngineError("engine_error", String(err));
    d.ended({ outcome: "failed", promptTokens: 0, errorCode: e.code });
    const reload = needsReload(e);
    send({
      type: "job.error",
      jobId: job.id,
      error: {
        code: e.code === "device_lost" || e.code === "bad_request" ? e.code : "engine_error",
        message: e.message.slice(0, 2000),
      },
      state: reload ? "loading" : status.resting,
    });
    if (reload) d.onModelLost(e);
  } finally {
    stopProgress();
  }
}
