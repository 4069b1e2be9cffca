import type { JobError, JobErrorCode } from "../../shared/protocol/job.js";
import type { JobRow } from "./job-store.js";
import type { SocketAttachment, TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";

/**
 * How a tab's `job.error` is read (job-machine.ts): the cause a job keeps when its tab reports an
 * error, when two reports that a request is invalid may reach the client, and the refusal that is
 * no failure at all.
 */

/**
 * What the coordinator says of each error a tab may report, in its own words and codes. A tab's
 * message is a stranger's free text ("Your API key was revoked. Re-enter it at https://…"), so it
 * never reaches a client — it is logged, bounded, with the tab's fault (tab-trust.ts RejectLog) —
 * and a tab's code does not choose the client's status either: whatever a tab reports, its attempt
 * failed, and the client sees that as the coordinator shows every tab failure, 502 `engine_error`,
 * `device_lost` or `node_gone` (edge/http/api-error.ts). So a tab's `model_not_served` for a model
 * the catalog serves is no 404, and its `internal` no 500. The cause is stored as the client will
 * see it (the job view shows a waiting job's cause too), so no later step has to translate it.
 */
const TAB_CAUSES: Partial<Record<JobErrorCode, JobError>> = {
  engine_error: { code: "engine_error", message: "the serving tab's engine failed" },
  device_lost: { code: "device_lost", message: "the serving tab lost its GPU" },
  node_gone: { code: "node_gone", message: "the serving tab stopped serving" },
  model_not_served: { code: "engine_error", message: "the serving tab could not run the model" },
  internal: { code: "engine_error", message: "the serving tab hit an internal error" },
  // A refusal of a job it was offered as free, not resting (resting refusals: `resting` below).
  no_capacity: { code: "engine_error", message: "the serving tab refused the job" },
  // Not a verdict on the request on one tab's word (`independentReports` below).
  bad_request: {
    code: "engine_error",
    message: "one tab reported the request invalid for this model and no second tab confirmed it",
  },
};

/** The cause a job keeps when its tab reported `error`: the coordinator's words, never the tab's. */
export function tabCause(error: JobError): JobError {
  return (
    TAB_CAUSES[error.code] ?? {
      code: "engine_error",
      message: `the serving tab reported ${error.code}`,
    }
  );
}

/** Who reported a request invalid, as the coordinator itself knows them. */
export interface Reporter {
  tabId: string;
  /** The address its socket came from (the Worker's `x-tabgrid-node-ip`); null when unknown. */
  address: string | null;
  trusted: boolean;
}

export function reporterOf(tab: TabRecord, trust: TabTrust): Reporter {
  const ip = (tab.ws.deserializeAttachment() as SocketAttachment | null)?.ip;
  return {
    tabId: tab.tabId,
    address: ip && ip !== "unknown" ? ip : null,
    trusted: trust.state(tab.tabId) === "trusted",
  };
}

/**
 * Whether two tabs' reports that a request is invalid (`bad_request`) end the client's job with a
 * 400. "Two tabs agree" alone is one attacker with two sockets: an anonymous id (`a_…`) is minted
 * per connection and a signed identity per key, both free. So the two must be distinct signed
 * identities, both trusted (PROBATION_JOBS finished client jobs with few faults: real, audited
 * work to earn, and lost to quarantine), connected from different known addresses (one party's
 * two identities on one machine are still one witness). Anything less leaves the job to fail over
 * as after any tab error; no other tab in time gives the client a 502 (`TAB_CAUSES`), which it may
 * retry. The reference tab reports `bad_request` for WebLLM's ContextWindowSizeExceededError, a
 * prompt longer than the model's context window (web/engine-worker/engine-errors.ts), and a report
 * counts against its tab only once another tab answers the request (job-machine.ts
 * `falseInvalidReports`).
 */
export function independentReports(a: Reporter, b: Reporter): boolean {
  const signed = (r: Reporter) => !isAnonymous(r.tabId);
  return (
    a.tabId !== b.tabId &&
    signed(a) &&
    signed(b) &&
    a.trusted &&
    b.trusted &&
    a.address !== null &&
    b.address !== null &&
    a.address !== b.address
  );
}

/**
 * Categories of an invalid request the client may be told, in the coordinator's words. The tab's
 * message only picks one of these (bounded, no text of its own gets through): the protocol carries
 * no structured reason.
 */
const INVALID_KINDS: ReadonlyArray<readonly [RegExp, string]> = [
  [/context|too long|too many tokens/i, "the prompt is longer than the model's context window"],
  [/schema|grammar|response.?format/i, "the response format cannot be used with this model"],
];

/** The 400 a client gets when two independent tabs found its request invalid. */
export function invalidRequest(tabMessage: string): JobError {
  const kind = INVALID_KINDS.find(([re]) => re.test(tabMessage.slice(0, 300)))?.[1];
  return {
    code: "bad_request",
    message: `Two independent tabs found the request invalid for this model: ${kind ?? "it is not one this model can take"}.`,
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

/**
 * The cause a job keeps after a resting refusal: a refusal is no failure, so the cause of its last
 * failed attempt stands, if it had one (what the client learns if no tab takes over in time).
 */
export function causeAfterRest(row: JobRow): JobError {
  if (row.error_code === null) {
    return { code: "no_capacity", message: "the tab offered the job was resting" };
  }
  return { code: row.error_code as JobErrorCode, message: row.error_message ?? "" };
}
