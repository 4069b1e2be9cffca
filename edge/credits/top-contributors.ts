import type { TopContributor } from "../../shared/credits/contributor-view.js";
import type { AppEnv } from "../env.js";
import { log } from "../http/log.js";
import { ledgerStub } from "./ledger-client.js";

/** Rows in GET /v1/status `top_contributors`. */
export const TOP_CONTRIBUTORS = 10;
/** GET /v1/status is cacheable for 5 s: an isolate asks the one ledger object at most that often. */
const CACHE_MS = 5_000;

let cached: { at: number; rows: TopContributor[] } | null = null;

/** The public list for the status API; empty (and logged) when the ledger cannot be read. */
export async function topContributors(env: AppEnv): Promise<TopContributor[]> {
  const now = Date.now();
  if (cached && now - cached.at < CACHE_MS) return cached.rows;
  try {
    const rows = await ledgerStub(env).top(TOP_CONTRIBUTORS);
    cached = { at: now, rows };
    return rows;
  } catch (err) {
    log("warn", "credit ledger: top contributors unavailable", { error: String(err) });
    return [];
  }
}

/** Tests: forget the isolate's copy. */
export function forgetTopContributors(): void {
  cached = null;
}
