import { log } from "../http/log.js";
import type { LedgerOp, LedgerOpDone, LedgerOpResult } from "./ledger-types.js";

/** Operations per ledger call: one RPC carries a batch, so a busy Region is not one call per job. */
export const OUTBOX_BATCH = 64;
/**
 * Operations kept while the ledger cannot be reached. Each is a few hundred bytes; beyond this the
 * newest is dropped with a warning (storage is bounded, and a ledger down that long is an outage
 * the operator sees in the logs, not a queue to grow without end).
 */
export const OUTBOX_MAX_ROWS = 10_000;
/** The first retry after a failed call, doubled per failure in a row up to `OUTBOX_MAX_DELAY_MS`. */
export const OUTBOX_FIRST_DELAY_MS = 1_000;
export const OUTBOX_MAX_DELAY_MS = 5 * 60_000;
/**
 * A call not answered by then counts as failed: the line is sent one batch at a time, so a call
 * that never settles would hold every later change back until the object is evicted.
 */
export const OUTBOX_CALL_TIMEOUT_MS = 30_000;

interface OutboxRow extends Record<string, SqlStorageValue> {
  seq: number;
  op: string;
}

/** What the outbox needs of its Region object. */
export interface OutboxDeps {
  sql: SqlStorage;
  /** The ledger's batch entry point (ledger-do.ts `apply`). */
  apply(ops: LedgerOp[]): Promise<LedgerOpResult[]>;
  /** Arm the Region's `ledger` timer, whose handler calls `flush` (region-alarms.ts). */
  retryAt(at: number): Promise<void>;
  /** The ledger did `op`: tell the tab its balance, lower the Region's figure (region-credits.ts). */
  done(op: LedgerOp, result: LedgerOpDone): void;
  /** `OUTBOX_CALL_TIMEOUT_MS` unless a test needs it shorter. */
  callTimeoutMs?: number;
}

/**
 * A Region's changes to the credit ledger — earnings, settlements, quarantines, take-backs — in a
 * durable line. Each is written to the Region's SQLite in the event that decides it, then sent; it
 * leaves the line only once the ledger answered for it. A call that fails (the ledger object
 * resetting, a deploy, an overloaded object) is retried with backoff from the Region's alarm, and a
 * Region evicted with operations in its line sends them when it wakes. Before this, a failed call
 * was logged and lost: a contributor's credit never reached the ledger, a held amount stayed held,
 * and a take-back or a quarantine confirmed by two verifiers never happened — a liar kept credit
 * because a call failed once.
 *
 * In order, one batch at a time: an earning reaches the ledger before the take-back of the same
 * job (the take-back finds nothing to take from an earning not yet written). Safe to send twice:
 * every operation is idempotent in the ledger (ledger-types.ts `LedgerOp`).
 */
export class LedgerOutbox {
  /** The flush running now; pushes meanwhile are sent by it (it reads the line until empty). */
  private flushing: Promise<void> | null = null;
  /** Failed calls in a row: the next retry's backoff. 0 while the ledger answers. */
  private failures = 0;
  private rows: number;

  constructor(private readonly d: OutboxDeps) {
    this.rows = this.count();
  }

  private count(): number {
    return this.d.sql.exec<{ n: number }>(`SELECT count(*) AS n FROM ledger_outbox`).one().n;
  }

  /** Operations waiting for the ledger. */
  get size(): number {
    return this.rows;
  }

  /**
   * Add an operation to the line, durably, and send it — at once while the ledger answers; while a
   * retry is waiting, with that retry (a failing ledger is not called once per job meanwhile).
   */
  push(op: LedgerOp): void {
    if (this.rows >= OUTBOX_MAX_ROWS) {
      log("warn", "ledger outbox full: operation dropped", { kind: op.kind, rows: this.rows });
      return;
    }
    this.d.sql.exec(
      `INSERT INTO ledger_outbox (op, at) VALUES (?, ?)`,
      JSON.stringify(op),
      Date.now(),
    );
    this.rows += 1;
    if (this.failures === 0) void this.flush();
  }

  /**
   * Send the line to the ledger, a batch at a time, until it is empty or a call fails (then the
   * retry is armed). Returns when this flush ends; never throws.
   */
  flush(): Promise<void> {
    this.flushing ??= this.drain().finally(() => (this.flushing = null));
    return this.flushing;
  }

  /** The Region woke: operations left from before its eviction are sent. */
  resume(): void {
    if (this.rows > 0) void this.flush();
  }

  /** Wait for the flush running now, if any (tests; what was pushed meanwhile is in it). */
  async idle(): Promise<void> {
    while (this.flushing) await this.flushing;
  }

  private async drain(): Promise<void> {
    for (;;) {
      const batch = this.d.sql
        .exec<OutboxRow>(`SELECT seq, op FROM ledger_outbox ORDER BY seq LIMIT ?`, OUTBOX_BATCH)
        .toArray();
      if (batch.length === 0) return;
      const ops = batch.map((r) => JSON.parse(r.op) as LedgerOp);
      let results: LedgerOpResult[];
      try {
        results = await withTimeout(
          this.d.apply(ops),
          this.d.callTimeoutMs ?? OUTBOX_CALL_TIMEOUT_MS,
        );
      } catch (err) {
        this.failures += 1;
        const delay = Math.min(
          OUTBOX_MAX_DELAY_MS,
          OUTBOX_FIRST_DELAY_MS * 2 ** (this.failures - 1),
        );
        log("warn", "credit ledger call failed; retrying", {
          waiting: this.rows,
          failures: this.failures,
          retryInMs: delay,
          error: String(err),
        });
        try {
          await this.d.retryAt(Date.now() + delay);
        } catch (e) {
          // The rows are durable: the next push or wake-up sends them.
          this.failures = 0;
          log("error", "ledger outbox: retry not armed", { error: String(e) });
        }
        return;
      }
      this.failures = 0;
      const last = batch[batch.length - 1]!.seq;
      this.d.sql.exec(`DELETE FROM ledger_outbox WHERE seq <= ?`, last);
      this.rows = this.count();
      ops.forEach((op, i) => {
        const result = results[i];
        if (!result?.ok) return;
        try {
          this.d.done(op, result);
        } catch (err) {
          // What follows a delivered change (telling a tab) must not stop the line.
          log("warn", "ledger outbox: after-delivery step failed", {
            kind: op.kind,
            error: String(err),
          });
        }
      });
    }
  }
}

/** `p`, or a rejection once `ms` passed without it settling. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer in ${ms} ms`)), ms);
  });
  return Promise.race([p, late]).finally(() => clearTimeout(timer));
}
