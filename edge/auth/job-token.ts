import { hashKey } from "./api-key.js";
import { timingSafeEqual } from "./secret.js";

/**
 * A job's read capability. The tab that runs a job learns its id (it is in `job.assign`), so the
 * id alone must not let anyone read the job: every job gets a random token, returned only to the
 * caller that created it (response header `x-tabgrid-job-token`), and reading, resuming or
 * cancelling the job needs it back in the same header — with the same API key for keyed jobs.
 * The Region object stores only the token's SHA-256. 32 random bytes, so a fast hash is enough.
 */
export const JOB_TOKEN_HEADER = "x-tabgrid-job-token";

const TOKEN_PATTERN = /^tgj_[A-Za-z0-9_-]{43}$/;

export async function newJobToken(): Promise<{ token: string; hash: string }> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  let s = "";
  for (const b of bytes) s += String.fromCharCode(b);
  const token = `tgj_${btoa(s).replaceAll("+", "-").replaceAll("/", "_").replace(/=+$/, "")}`;
  return { token, hash: await hashKey(token) };
}

/** What decides who may read a job: its creator's owner (`key:<id>` or null) and token hash. */
export interface JobAccessFacts {
  owner: string | null;
  tokenHash: string | null;
}

export type JobAccessCheck = "ok" | "missing_token" | "denied";

/**
 * Whether a request may read a job: it must present the job's token (compared in constant time,
 * after hashing), and a job created with a key is readable only with that key. A job written
 * before tokens existed (no hash) is readable by nobody through the API.
 */
export async function checkJobAccess(
  job: JobAccessFacts,
  caller: { owner: string | null },
  presented: string | undefined,
): Promise<JobAccessCheck> {
  if (!presented) return "missing_token";
  // Malformed tokens are hashed anyway so a refusal takes the same time either way.
  const hash = await hashKey(presented);
  const tokenOk = job.tokenHash !== null && timingSafeEqual(hash, job.tokenHash);
  const ownerOk = job.owner === null || job.owner === caller.owner;
  return tokenOk && ownerOk && TOKEN_PATTERN.test(presented) ? "ok" : "denied";
}
