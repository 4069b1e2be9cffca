import type { JobSpec } from "../../shared/protocol/job.js";
import { looselyEnforced } from "../../shared/openai/json-schema.js";
import { ApiError } from "../http/api-error.js";
import { checkedJson, readToolAnswer } from "../openai/structured-answer.js";
import { noClientSawIt, type JobReading } from "./job-reading.js";
import type { JobRow } from "./job-store.js";
import { constraintSchema } from "./job-view.js";

/**
 * A finished attempt's structured answer checked where it arrives, in the Region, before the job
 * ends: a tool envelope or a `response_format` JSON answer the tab decoded under the job's grammar
 * (`sampling.constraint`). An honest tab's answer follows it; one that does not is the tab's fault,
 * and a job whose client has seen none of it yet starts again on another tab (job-reading.ts
 * `restartsOnFailover`) instead of ending with a 502. The Worker checks the answer it sends again
 * (structured-answer.ts): this is where the fault is counted and the client still gets an answer.
 */
export interface BrokenStructure {
  /** What is wrong, in the coordinator's words (the path and what the schema wanted, never the tab's text). */
  problem: string;
  /** The attempt wrote the whole answer and no client has seen it: it can start again elsewhere. */
  restart: boolean;
}

/**
 * What is wrong with the structured answer `row` holds, written whole by the attempt that just
 * said `stop` (a cut answer is not read: it goes out as text, as OpenAI returns one, and a cut no
 * honest tab could have made is length-claim.ts's); null when it follows its schema as far as the tab's grammar holds it, is plain
 * text, or is not this attempt's alone (a streamed JSON answer continued after another tab's text
 * is not one grammar's work, and a client's stop string may cut an honest one).
 */
export function brokenStructure(row: JobRow): BrokenStructure | null {
  if (!row.reading || row.attempt_start_chars > 0) return null;
  // Every finished job passes here: a plain-text one (most) costs one small parse, not the spec's.
  const reading = JSON.parse(row.reading) as JobReading;
  const { mode } = reading;
  if (mode.kind === "text") return null;
  const spec = JSON.parse(row.spec) as JobSpec;
  // A client's stop string may end an honest answer before its JSON closes.
  if (spec.sampling.stop?.length) return null;
  const restart = noClientSawIt(reading);
  // Where the grammar is looser than the schema an honest answer may fall outside it: then only
  // what the grammar always holds (JSON, the envelope's shape) is held against the tab.
  const full = constraintSchema(spec);
  const schema = full && !looselyEnforced(full) ? full : null;
  try {
    if (mode.kind === "tools") readToolAnswer(row.text, row.id, mode.contentIsJson, schema);
    else checkedJson(row.text, schema, row.id);
    return null;
  } catch (err) {
    if (!(err instanceof ApiError)) throw err;
    return { problem: err.message.replace(/\.$/, ""), restart };
  }
}
