import type { AppEnv } from "../env.js";

/** The one credit ledger object (ledger-do.ts). */
export function ledgerStub(env: AppEnv) {
  return env.LEDGER.get(env.LEDGER.idFromName("global"));
}
