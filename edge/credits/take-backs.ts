import type { AlikeTakenBack, TakeBack, TakenBack } from "./ledger-types.js";

/**
 * Credit taken back for an inflated token count (docs/credits.md, "Taken back"). A tab is credited,
 * and a paying client charged, the completion tokens the coordinator bounded at job end; an audit
 * compares that count with verifiers' counts only later. Once a second binding verifier confirms
 * that a count was inflated (edge/region/accusations.ts), the Region asks the ledger to take back
 * what it paid for the tokens over `keepTokens` — the most an honest tab could have reported — and
 * to give the client back what it was charged for them. The ledger works from its own records of
 * that job (the `earnings` row, the `charges` rows written at settlement), never from a figure
 * the Region recomputes: what is taken back is a share of what was really paid.
 *
 * Once per (job, identity): the `take_backs` row is written in the same transaction as the
 * changes, so a retried RPC or a second confirmation of the answer changes nothing. The row is also
 * the statement: the reason in the contributor's words, what was owed and what was taken.
 *
 * The identity's other answers of the last day were paid on its own counts too, and only the
 * audited one was compared. Once one count is confirmed inflated, `takeBackAlike` re-prices each
 * of them at the share of its tokens that the confirmed answer kept (kept ÷ paid, rounded up per
 * answer): a tab that reported one token per byte on the answer two verifiers counted is not
 * believed on the answers nobody counted. Rounded up, an honest short answer (1 token) keeps all.
 *
 * A balance is never driven below zero, as a settlement never charges more than a balance holds
 * (ledger-do.ts `settle`): what the identity has already spent stays spent, and the row records
 * the shortfall. An identity that inflated is quarantined by the same confirmation, so it would
 * never earn the debt back; a negative balance would only break the rule every figure here keeps.
 */

interface EarningRow extends Record<string, SqlStorageValue> {
  credit: number | null;
  tokens: number | null;
  withheld: number;
}

interface ChargeRow extends Record<string, SqlStorageValue> {
  identity: string;
  amount: number;
  tokens: number;
}

interface Balances extends Record<string, SqlStorageValue> {
  earned: number;
  spent: number;
  withheld: number;
}

/** What one settlement took from each of the key's identities, kept for a refund. */
export function recordCharges(
  sql: SqlStorage,
  jobId: string,
  tokens: number,
  parts: ReadonlyArray<{ identity: string; amount: number }>,
  now: number,
): void {
  for (const p of parts)
    sql.exec(
      `INSERT OR IGNORE INTO charges (job_id, identity, amount, tokens, at) VALUES (?, ?, ?, ?, ?)`,
      jobId,
      p.identity,
      p.amount,
      tokens,
      now,
    );
}

/** Take back and refund what was paid for `t.jobId`'s tokens over `t.keepTokens`; once. */
export function takeBack(sql: SqlStorage, t: TakeBack, now: number): TakenBack {
  const none: TakenBack = {
    fresh: false,
    tokens: 0,
    owed: 0,
    taken: 0,
    refunded: 0,
    fromWithheld: false,
    keepShare: 1,
  };
  const keep = Math.max(0, t.keepTokens);
  const earning = sql
    .exec<EarningRow>(
      `SELECT credit, tokens, withheld FROM earnings WHERE job_id = ? AND identity = ?`,
      t.jobId,
      t.identity,
    )
    .toArray()[0];
  // Paid per token at the weight of the job: the share of its credit that the tokens over bought.
  // (An earning recorded before the ledger kept amounts has none: nothing is known, none is taken.)
  const paid = earning?.credit ?? 0;
  const paidTokens = earning?.tokens ?? 0;
  const over = Math.max(0, paidTokens - keep);
  const owed = over > 0 && paid > 0 ? (paid * over) / paidTokens : 0;
  const refunds = sql
    .exec<ChargeRow>(`SELECT identity, amount, tokens FROM charges WHERE job_id = ?`, t.jobId)
    .toArray()
    .filter((c) => c.tokens > keep && c.amount > 0)
    .map((c) => ({ identity: c.identity, amount: (c.amount * (c.tokens - keep)) / c.tokens }));
  if (owed <= 0 && refunds.length === 0) return none;

  const account = sql
    .exec<Balances>(`SELECT earned, spent, withheld FROM accounts WHERE identity = ?`, t.identity)
    .toArray()[0];
  const fromWithheld = earning?.withheld === 1;
  const there = !account
    ? 0
    : fromWithheld
      ? account.withheld
      : Math.max(0, account.earned - account.spent);
  const taken = Math.min(owed, there);
  const refunded = refunds.reduce((s, r) => s + r.amount, 0);
  const fresh =
    sql.exec(
      `INSERT OR IGNORE INTO take_backs
         (job_id, identity, tokens, owed, taken, refunded, reason, at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)`,
      t.jobId,
      t.identity,
      over,
      owed,
      taken,
      refunded,
      t.reason,
      now,
    ).rowsWritten > 0;
  if (!fresh) return none;
  if (account && fromWithheld)
    sql.exec(
      `UPDATE accounts SET withheld = withheld - ?, taken_back = taken_back + ?, updated_at = ?
       WHERE identity = ?`,
      taken,
      taken,
      now,
      t.identity,
    );
  else if (account)
    // The tokens over were never served: they leave the public list's count too.
    sql.exec(
      `UPDATE accounts SET earned = earned - ?, taken_back = taken_back + ?,
         tokens = max(0, tokens - ?), updated_at = ? WHERE identity = ?`,
      taken,
      taken,
      over,
      now,
      t.identity,
    );
  for (const r of refunds)
    sql.exec(
      `UPDATE accounts SET spent = max(0, spent - ?), updated_at = ? WHERE identity = ?`,
      r.amount,
      now,
      r.identity,
    );
  const keepShare = paidTokens > 0 ? Math.min(1, keep / paidTokens) : 1;
  return { fresh, tokens: over, owed, taken, refunded, fromWithheld, keepShare };
}

/** Most of an identity's other answers re-priced by one confirmation (one transaction's work). */
export const ALIKE_MAX_ANSWERS = 2_000;

/** Nothing re-priced. */
export function noneAlike(): AlikeTakenBack {
  return { answers: 0, tokens: 0, owed: 0, taken: 0, takenWithheld: 0, refunded: 0 };
}

/**
 * Re-price the identity's other answers still in `earnings` (the last day; none taken back
 * before) at `keepShare` of their tokens, each once, as `takeBack` does for the confirmed one.
 * Newest first, at most ALIKE_MAX_ANSWERS: a later confirmation re-prices the rest.
 */
export function takeBackAlike(
  sql: SqlStorage,
  confirmed: { jobId: string; identity: string; keepShare: number },
  now: number,
): AlikeTakenBack {
  const sum = noneAlike();
  const share = Math.max(0, Math.min(1, confirmed.keepShare));
  if (share >= 1) return sum;
  const others = sql
    .exec<{ job_id: string; tokens: number }>(
      `SELECT e.job_id, e.tokens FROM earnings e
       WHERE e.identity = ? AND e.job_id != ? AND e.tokens > 0
         AND NOT EXISTS (SELECT 1 FROM take_backs t WHERE t.job_id = e.job_id AND t.identity = e.identity)
       ORDER BY e.at DESC LIMIT ?`,
      confirmed.identity,
      confirmed.jobId,
      ALIKE_MAX_ANSWERS,
    )
    .toArray();
  for (const o of others) {
    const keepTokens = Math.ceil(o.tokens * share);
    if (keepTokens >= o.tokens) continue;
    const done = takeBack(
      sql,
      {
        jobId: o.job_id,
        identity: confirmed.identity,
        keepTokens,
        reason:
          `credit taken back: token count of job ${o.job_id} re-priced at the share confirmed ` +
          `honest on job ${confirmed.jobId} (${keepTokens} of ${o.tokens} kept)`,
      },
      now,
    );
    if (!done.fresh) continue;
    sum.answers += 1;
    sum.tokens += done.tokens;
    sum.owed += done.owed;
    if (done.fromWithheld) sum.takenWithheld += done.taken;
    else sum.taken += done.taken;
    sum.refunded += done.refunded;
  }
  return sum;
}

/** The latest take-back's reason for an identity's statement, if any. */
export function lastTakeBack(sql: SqlStorage, identity: string): string | null {
  return (
    sql
      .exec<{ reason: string }>(
        // Within one confirmation (one `at`), the confirmed answer's row: it was written first.
        `SELECT reason FROM take_backs WHERE identity = ? ORDER BY at DESC, rowid ASC LIMIT 1`,
        identity,
      )
      .toArray()[0]?.reason ?? null
  );
}
