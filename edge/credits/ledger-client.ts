import { readConfig } from "../config.js";
import type { AppEnv } from "../env.js";
import { CreditedModels } from "./credited-models.js";
import type { LedgerPort, RegionLedger } from "./region-credits.js";

/** The one credit ledger object (ledger-do.ts). */
export function ledgerStub(env: AppEnv) {
  return env.LEDGER.get(env.LEDGER.idFromName("global"));
}

/** What a Region object needs of the ledger (region-credits.ts), from its env. */
export function regionLedger(env: AppEnv): RegionLedger {
  const prices = readConfig(env).credits;
  return { port: ledgerPort(env), prices, models: new CreditedModels(env, prices.models) };
}

/**
 * The ledger as a long-lived Region object uses it: a fresh stub per call, since a stub whose call
 * failed (the ledger object reset, a deploy) may stay broken.
 */
function ledgerPort(env: AppEnv): LedgerPort {
  return {
    balance: (identity, publicId) => ledgerStub(env).balance(identity, publicId),
    apply: (ops) => ledgerStub(env).apply(ops),
  };
}

/** The API key id of a job's owner (`key:<id>`), whose linked credit the ledger holds; else null. */
export function ownerKeyId(owner: string | null | undefined): string | null {
  return owner?.startsWith("key:") ? owner.slice("key:".length) : null;
}
