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
  /** Credit taken back for token counts confirmed inflated (take-backs.ts); already out of `earned`. */
  takenBack: number;
  /** The latest take-back's reason, in the contributor's words; absent when none. */
  lastTakeBack?: string;
  quarantined: boolean;
  linked: boolean;
}

/**
 * A Region's request to take back what a job paid for tokens over `keepTokens`, once a second
 * binding verifier confirmed that the serving identity's count of it was inflated.
 */
export interface TakeBack {
  jobId: string;
  /** The identity credited for the job (the audited tab's). */
  identity: string;
  /** The most completion tokens an honest tab could have reported for the answer. */
  keepTokens: number;
  /** The statement's line, in the contributor's words. */
  reason: string;
}

/** What a take-back did; all zero (and `fresh` false) when already done or nothing was paid. */
export interface TakenBack {
  /** This call took it back (false for a repeat: the first one did). */
  fresh: boolean;
  /** Tokens paid for over `keepTokens`. */
  tokens: number;
  /** The credit paid for them, and what of it the balance held and was taken. */
  owed: number;
  taken: number;
  /** Given back to the client's key's identities that paid for them. */
  refunded: number;
  /** The credit was paid while the identity was quarantined (withheld), not to its balance. */
  fromWithheld: boolean;
  /** Tokens kept ÷ tokens paid for this answer (1 when nothing was over or nothing was paid). */
  keepShare: number;
}

/** A take-back's answer from the ledger: this job's, and the identity's other answers re-priced. */
export interface TakenBackAll extends TakenBack {
  alike: AlikeTakenBack;
}

/** What re-pricing an identity's other answers took, summed over them. */
export interface AlikeTakenBack {
  /** Answers something was taken back for. */
  answers: number;
  tokens: number;
  owed: number;
  /** Taken from the spendable balance (`earned`), and from withheld credit. */
  taken: number;
  takenWithheld: number;
  refunded: number;
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

/**
 * One change a Region asks of the ledger, as its outbox keeps it (ledger-outbox.ts) until the
 * ledger has taken it. Each kind is idempotent in the ledger — an earning once per (job, identity),
 * a settlement once per hold, a take-back once per (job, identity), a quarantine a flag — so a
 * call that reached the ledger but whose answer was lost may be sent again.
 */
export type LedgerOp =
  | { kind: "earn"; earning: Earning }
  | { kind: "quarantine"; identity: string; publicId: string }
  | {
      kind: "settle";
      holdId: string;
      keyId: string;
      charge: number;
      job?: { jobId: string; tokens: number };
    }
  /** `publicId`: the identity's public id, for the Region's log line only. */
  | { kind: "takeBack"; takeBack: TakeBack; publicId: string };

/**
 * What the ledger did with one operation of a batch, in the batch's order. An operation the ledger
 * refused (`ok: false`: it threw) is not retried — the same call would throw again — and does not
 * hold up the ones after it.
 */
export type LedgerOpResult =
  | { ok: true; kind: "earn"; account: AccountView }
  | { ok: true; kind: "quarantine"; account: AccountView }
  | { ok: true; kind: "settle"; charged: number }
  | { ok: true; kind: "takeBack"; done: TakenBackAll & { account: AccountView } }
  | { ok: false; error: string };

/** An operation the ledger carried out (what follows it in the Region: region-credits.ts). */
export type LedgerOpDone = Extract<LedgerOpResult, { ok: true }>;
