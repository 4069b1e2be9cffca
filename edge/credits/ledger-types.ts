/** What the credit ledger (ledger-do.ts) takes and answers; plain data, so it crosses RPC. */

/** One job's credit for one identity, as a Region counted it. */
export interface Earning {
  identity: string;
  publicId: string;
  jobId: string;
  /** Credits: the tab's completion tokens × the weight of the latency tier it delivered. */
  credit: number;
  /** The tab's share of the job's completion tokens (coordinator-counted). */
  tokens: number;
  /** The Region has the identity quarantined: withhold it. */
  quarantined: boolean;
}

/** An identity's account, as the tab is told it (`credit.balance`). */
export interface AccountView {
  balance: number;
  earned: number;
  spent: number;
  withheld: number;
  quarantined: boolean;
  linked: boolean;
}

/** What an API key can spend. */
export interface KeyAccount {
  /** Balances of its linked identities that are not quarantined. */
  balance: number;
  /** Set aside for its requests waiting or running with a paid place. */
  held: number;
  /** balance − held: what a new request may set aside. */
  available: number;
  /** Public ids of the identities linked to it. */
  identities: string[];
}

/** One row of the public list (GET /v1/status `top_contributors`). */
export type { TopContributor } from "../../shared/credits/contributor-view.js";
