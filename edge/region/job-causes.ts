import type { JobError, JobErrorCode } from "../../shared/protocol/job.js";
import type { JobRow } from "./job-store.js";

/**
 * How a tab's `job.error` is read (job-machine.ts): the cause a job keeps when its tab reports an
 * error, the cause the client may see, and the refusal that is no failure at all.
 */

/**
 * Errors a tab may report that say something about the tab (its engine, its GPU, its state): the
 * job moves to another tab with the error as its cause. Any other code a tab sends (bad_request,
 * cancelled, …) is not the tab's to decide: the job moves on too, and the client never sees that
 * code on one tab's word (bad_request needs a second tab to agree; see job-machine.ts onFrame).
 */
const TAB_CAUSES: ReadonlySet<JobErrorCode> = new Set([
  "engine_error",
  "device_lost",
  "node_gone",
  "model_not_served",
  "internal",
  // A tab refusing a job it was offered (it had just paused): another tab, or the queue, takes it.
  "no_capacity",
]);

/** What a job keeps as its cause when a tab reported `error` (the tab's own word about itself). */
export function tabCause(error: JobError): JobError {
  if (TAB_CAUSES.has(error.code) || error.code === "bad_request") {
    return { code: error.code, message: error.message.slice(0, 300) };
  }
  return { code: "engine_error", message: `the serving tab reported ${error.code}` };
}

/** A cause as the client may see it: one tab's bad_request is not a verdict on the request. */
export function clientCause(cause: JobError): JobError {
  if (cause.code !== "bad_request") return cause;
  return {
    code: "engine_error",
    message: "one tab reported the request invalid for this model and no second tab confirmed it",
  };
}

/**
 * A refusal that says only "not now": no capacity, from a tab that says it is resting (paused or
 * loading), for a job it never accepted (no text, still assigned).
 */
export function resting(row: JobRow, msg: { error: { code: string }; state?: string }): boolean {
  return (
    msg.error.code === "no_capacity" &&
    (msg.state === "paused" || msg.state === "loading") &&
    row.state === "assigned" &&
    row.first_token_at === null
  );
}
