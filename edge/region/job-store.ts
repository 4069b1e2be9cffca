import type { Location } from "../../shared/geo/distance.js";
import type {
  FinishReason,
  JobError,
  JobErrorCode,
  JobSpec,
  Sampling,
  Usage,
} from "../../shared/protocol/job.js";
import type { SlotRef } from "../auth/client-slots.js";
import type { JobReading } from "./job-reading.js";
import { JobTexts, type TextPosition } from "./job-text.js";
import { answerByteCap, utf8Bytes } from "./usage-bounds.js";

/** Lifecycle of a job; terminal states are done, failed and cancelled. */
export type JobState = "queued" | "assigned" | "streaming" | "done" | "failed" | "cancelled";
export const TERMINAL_STATES: ReadonlySet<JobState> = new Set(["done", "failed", "cancelled"]);

export interface JobRow extends Record<string, SqlStorageValue> {
  id: string;
  request_id: string;
  model: string;
  kind: string;
  node_id: string | null;
  state: JobState;
  created_at: number;
  updated_at: number;
  next_seq: number;
  finish_reason: string | null;
  error_code: string | null;
  error_message: string | null;
  prompt_tokens: number | null;
  completion_tokens: number | null;
  spec: string;
  /** The whole text delivered so far (jobs.text, its chunks and any batch not yet written). */
  text: string;
  attempts: number;
  tried: string;
  detach_grace_ms: number;
  owner: string | null;
  match: string | null;
  priority: number;
  dispatched_at: number | null;
  first_token_at: number | null;
  attempt_start_chars: number;
  /** UTF-8 bytes of `text`, kept by append. */
  text_bytes: number;
  /** Most bytes the answer may have (max_tokens × the longest token); 0 on jobs written before. */
  answer_cap_bytes: number;
  /** JSON JobReading (read token hash, answer mode); null on jobs written before. */
  reading: string | null;
  /** The ledger hold its paid queue place set aside (credits/queue-place.ts); null: none. */
  hold_id: string | null;
  /** JSON SlotRef: the caller's concurrency slot this job holds until it ends; null for none. */
  slot: string | null;
}

/** What the Worker knows about a request that matching needs (besides the model). */
export interface MatchFacts {
  /** Where the client is; null when unknown (the region's centre stands in). */
  clientLocation: Location | null;
  /** Estimated from the prompt's length (about 4 characters per token). */
  promptTokens: number;
  maxTokens: number;
  stream: boolean;
  latencyBudgetMs?: number;
}

/** What creating a job needs besides the spec. */
export interface JobMeta {
  match: MatchFacts;
  /** Queue class (shared/scheduling/wait-queue.ts QueueClass): waiting jobs go by it, then arrival. */
  priority: number;
  requestId: string;
  /** Who may read or cancel it (an API key id, or null for the anonymous tier / no auth). */
  owner: string | null;
  /** How long a job keeps running after its last reader went away, so a dropped stream can resume. */
  detachGraceMs: number;
  /** How the creator reads it back (job-reading.ts); absent for internal jobs (canaries). */
  reading?: JobReading;
  /**
   * The ledger hold of a paid queue place, minted by the Worker for this job alone
   * (credits/queue-place.ts); the Region settles it when the job ends. Absent: nothing was held.
   */
  holdId?: string;
  /**
   * The caller's concurrency slot, which the job holds until it ends (edge/auth/client-slots.ts);
   * absent for jobs that hold none (canaries, continuations: their origin job holds it).
   */
  slot?: SlotRef;
}

/** Notes kept in a job's `tried` beside tab ids (`rested`, `reportedInvalid`). */
const RESTED = "rested:";
const INVALID = "invalid:";

/** Most job rows kept in memory. */
const MAX_CACHED_ROWS = 256;
/**
 * Most characters of spec and text those rows may hold together: a spec may be up to the 1 MiB
 * body limit and a text up to 512 KiB, so 256 rows could otherwise outgrow a Durable Object's
 * 128 MB of memory. 4M characters is at most 8 MB of UTF-16; a larger row is not kept.
 */
const MAX_CACHED_CHARS = 4_000_000;

/**
 * Job records in the Region object's SQLite. A job is written before it is dispatched and every
 * transition is one UPDATE, so after eviction the record is the truth: state, attempts, which tabs
 * tried it, and the text already delivered (for failover and for resuming a client's stream).
 * The text grows through `texts` (job-text.ts): appended in batches of chunk rows, never rewritten
 * per delta; every read and transition here writes the job's pending batch first.
 */
export class JobStore {
  readonly texts: JobTexts;
  /**
   * Rows as `get` last read them (text included). A job's row is read several times per event
   * and per job (assign, hedge, accept, first token, done, learning, stats), each read a flush, a
   * `SELECT *` with the spec and text, and a read of the chunks; the object is single-threaded, so
   * a row stays true until something writes it. Only this store and its text layer write the
   * jobs table while the object runs, so each write keeps the entry current instead of dropping
   * it: a transition applies the values its UPDATE wrote (a conditional UPDATE, only when SQLite
   * says it wrote a row), a created row comes back from its INSERT (`RETURNING *`), and a batch
   * written by the text layer adds its text and counters (`written`). No row is read again right
   * after this object wrote it. Finished rows are the one kind deleted elsewhere (storage-budget.ts
   * evicts them), so a cached finished row is served only once a primary-key probe says it is
   * still there.
   */
  private readonly rows = new Map<string, JobRow>();
  /** Characters of spec and text held in `rows`. */
  private cachedChars = 0;
  /**
   * Ids of the jobs in state 'queued', read once (undefined until then). Every change of a job's
   * state is a method of this store (storage-budget.ts deletes only finished jobs), so the set is
   * exact, and with no job waiting — the usual case — `queued()` and `waitingCount()`, asked on
   * every request and every job's end, answer without a statement.
   */
  private waiting: Set<string> | undefined = undefined;

  constructor(private readonly sql: SqlStorage) {
    // The text layer writes batches behind this store: each one it writes is added to the cached
    // row (text, counters, assigned → streaming), as its UPDATE did to the stored one.
    this.texts = new JobTexts(sql, undefined, (id, w) =>
      this.patch(id, (row) => {
        row.text += w.text;
        row.next_seq = w.nextSeq;
        row.text_bytes = w.bytes;
        row.updated_at = w.at;
        if (row.state === "assigned") row.state = "streaming";
        if (row.first_token_at === null) row.first_token_at = w.firstTokenAt;
      }),
    );
  }

  /** The queued jobs' ids (read once per instance). */
  private queuedIds(): Set<string> {
    this.waiting ??= new Set(
      this.sql
        .exec<{ id: string }>(`SELECT id FROM jobs WHERE state = 'queued'`)
        .toArray()
        .map((r) => r.id),
    );
    return this.waiting;
  }

  /** The job's state is now `state` (a write of this store said so). */
  private stateIs(id: string, state: JobState | null): void {
    if (!this.waiting) return;
    if (state === "queued") this.waiting.add(id);
    else this.waiting.delete(id);
  }

  /** The job's row changed: the next `get` reads it again. */
  private changed(id: string): void {
    const held = this.rows.get(id);
    if (!held) return;
    this.cachedChars -= rowChars(held);
    this.rows.delete(id);
  }

  private forgetAll(): void {
    this.rows.clear();
    this.cachedChars = 0;
  }

  /**
   * This object just wrote the job's row: apply the same change to the cached copy (if any), so
   * the next `get` needs no read. A change that outgrows the cache's bound drops the entry.
   */
  private patch(id: string, change: (row: JobRow) => void): void {
    const held = this.rows.get(id);
    if (!held) return;
    this.changed(id); // before the change: its size is counted as it was
    change(held);
    this.keep(held);
  }

  /**
   * This object's UPDATE just wrote these values to the job's row: the waiting line (when the
   * state is among them) and the cached copy take them too.
   */
  private wrote(id: string, values: Partial<JobRow>): void {
    if (values.state !== undefined) this.stateIs(id, values.state);
    this.patch(id, (row) => Object.assign(row, values));
  }

  /** Fold the job's chunks into jobs.text, from the cached row's whole text when it is held. */
  private fold(id: string): void {
    this.texts.fold(id, () => this.rows.get(id)?.text);
  }

  /** Cache a row that is current, within the cache's bounds. */
  private keep(row: JobRow): void {
    this.changed(row.id);
    const chars = rowChars(row);
    if (chars > MAX_CACHED_CHARS) return;
    if (this.rows.size >= MAX_CACHED_ROWS || this.cachedChars + chars > MAX_CACHED_CHARS) {
      this.forgetAll();
    }
    this.rows.set(row.id, row);
    this.cachedChars += chars;
  }

  create(spec: JobSpec, meta: JobMeta): void {
    this.changed(spec.id);
    const now = Date.now();
    // The row as written (defaults included) comes back with the INSERT: the reads that follow
    // at once (placement, assign) need no SELECT. A new job has no chunks: its text is jobs.text.
    const written = this.sql.exec<JobRow>(
      `INSERT INTO jobs (id, request_id, model, kind, state, created_at, updated_at, spec,
         detach_grace_ms, owner, match, priority, answer_cap_bytes, reading, hold_id, slot)
       VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING *`,
      spec.id,
      meta.requestId,
      spec.model,
      spec.input.kind,
      now,
      now,
      JSON.stringify(spec),
      meta.detachGraceMs,
      meta.owner,
      JSON.stringify(meta.match),
      meta.priority,
      answerByteCap(spec.sampling.max_tokens),
      meta.reading ? JSON.stringify(meta.reading) : null,
      meta.holdId ?? null,
      meta.slot ? JSON.stringify(meta.slot) : null,
    );
    const row = written.toArray()[0];
    if (row) this.keep(row);
    this.texts.fresh(spec.id);
    this.stateIs(spec.id, "queued");
  }

  /**
   * The text a continuation opened here starts from (another shard's job moved here after its tab
   * left: continuation.ts); written before its first assignment, so the attempt starts after it.
   */
  seedText(id: string, text: string): void {
    this.sql.exec(
      `UPDATE jobs SET text = ?, text_bytes = ? WHERE id = ? AND attempts = 0`,
      text,
      utf8Bytes(text),
      id,
    );
    this.changed(id);
  }

  /**
   * Where the job's current attempt stands when `tabId` is the job's current tab; undefined
   * otherwise (a stale or finished attempt). Kept in memory: constant work per delta.
   */
  position(id: string, tabId: string): TextPosition | undefined {
    const at = this.texts.position(id, () => {
      const row = this.get(id);
      return (
        row && {
          nodeId: row.node_id,
          open: row.state === "assigned" || row.state === "streaming",
          attempts: row.attempts,
          nextSeq: row.next_seq,
          text: row.text,
          attemptStart: row.attempt_start_chars,
          bytes: row.text_bytes,
          cap: row.answer_cap_bytes,
        }
      );
    });
    return at && at.open && at.nodeId === tabId ? at : undefined;
  }

  /** Bytes the answer may still grow by (usage-bounds.ts), from a position. */
  static room(at: TextPosition): number {
    return at.cap > 0 ? at.cap - at.bytes : Number.POSITIVE_INFINITY;
  }

  match(row: JobRow): MatchFacts {
    return JSON.parse(row.match ?? "{}") as MatchFacts;
  }

  /** Requests waiting for their first tab (the bounded queue; failovers are not counted). */
  waitingCount(): number {
    if (this.queuedIds().size === 0) return 0;
    return this.sql
      .exec<{ n: number }>(`SELECT count(*) AS n FROM jobs WHERE state = 'queued' AND attempts = 0`)
      .one().n;
  }

  /** Note the first delta of the current attempt (for time-to-first-token observations). */
  markFirstToken(id: string, now: number): void {
    // Written at once with the batch that holds the first delta (job-text.ts).
    if (this.texts.firstToken(id, now)) return;
    const cursor = this.sql.exec(
      `UPDATE jobs SET first_token_at = ? WHERE id = ? AND first_token_at IS NULL`,
      now,
      id,
    );
    if (cursor.rowsWritten > 0) this.wrote(id, { first_token_at: now });
  }

  /** A job's state and resume grace, without its text (nothing is flushed or read at length). */
  status(id: string): Pick<JobRow, "state" | "detach_grace_ms"> | undefined {
    return this.sql
      .exec<Pick<JobRow, "state" | "detach_grace_ms">>(
        `SELECT state, detach_grace_ms FROM jobs WHERE id = ?`,
        id,
      )
      .toArray()[0];
  }

  get(id: string): JobRow | undefined {
    this.texts.flush(id);
    const held = this.rows.get(id);
    if (held && (!TERMINAL_STATES.has(held.state) || this.exists(id))) return { ...held };
    const read = this.sql.exec<JobRow>(`SELECT * FROM jobs WHERE id = ?`, id).toArray()[0];
    this.changed(id);
    if (!read) return undefined;
    const row = this.withText(read);
    // Bounded in count and size: the rows of running jobs and of jobs just finished are what is
    // read again.
    this.keep(row);
    return { ...row };
  }

  private exists(id: string): boolean {
    return this.sql.exec(`SELECT 1 FROM jobs WHERE id = ?`, id).toArray().length > 0;
  }

  /** A row read with SELECT * carries jobs.text only: add the chunks not folded in yet. */
  private withText(row: JobRow): JobRow {
    const rest = this.texts.chunks(row.id);
    return rest ? { ...row, text: row.text + rest } : row;
  }

  spec(row: JobRow): JobSpec {
    return JSON.parse(row.spec) as JobSpec;
  }

  /** A job's sampling fields, without reading (and flushing) its text as `get` does. */
  sampling(id: string): Sampling | undefined {
    const row = this.sql
      .exec<{ spec: string }>(`SELECT spec FROM jobs WHERE id = ?`, id)
      .toArray()[0];
    return row && (JSON.parse(row.spec) as JobSpec).sampling;
  }

  /** The tabs that tried the job (an attempt elsewhere as `remote:<job>`), and notes about tabs. */
  tried(row: JobRow): string[] {
    return JSON.parse(row.tried) as string[];
  }

  /** Unfinished jobs, for rebuilding in-memory state after eviction. */
  active(): JobRow[] {
    this.texts.flushAll();
    return this.sql
      .exec<JobRow>(`SELECT * FROM jobs WHERE state IN ('queued', 'assigned', 'streaming')`)
      .toArray()
      .map((row) => this.withText(row));
  }

  /**
   * Jobs waiting for a tab: failovers first, then by priority class, then arrival. Their text is
   * whole in jobs.text (requeue folds the chunks), so no chunk is read here.
   */
  queued(): JobRow[] {
    if (this.queuedIds().size === 0) return [];
    return this.sql
      .exec<JobRow>(
        `SELECT * FROM jobs WHERE state = 'queued' ORDER BY attempts > 0 DESC, priority, created_at`,
      )
      .toArray();
  }

  /**
   * Bind the job to a tab for one more attempt; the delta sequence restarts at 0. `dispatchedAt`:
   * when the tab was sent the job (earlier than now for a hedge that won its race; hedging.ts).
   */
  assign(id: string, tabId: string, dispatchedAt = Date.now()): void {
    const row = this.get(id);
    if (!row) return;
    const tried = this.tried(row);
    if (!tried.includes(tabId)) tried.push(tabId);
    this.texts.settle(id);
    const now = Date.now();
    const triedJson = JSON.stringify(tried);
    this.sql.exec(
      `UPDATE jobs SET state = 'assigned', node_id = ?, attempts = attempts + 1, next_seq = 0,
         tried = ?, updated_at = ?, dispatched_at = ?, first_token_at = NULL,
         attempt_start_chars = ? WHERE id = ?`,
      tabId,
      triedJson,
      now,
      dispatchedAt,
      // In UTF-16 units, as JavaScript slices the text (SQLite's length() counts code points).
      row.text.length,
      id,
    );
    this.wrote(id, {
      state: "assigned",
      node_id: tabId,
      attempts: row.attempts + 1,
      next_seq: 0,
      tried: triedJson,
      updated_at: now,
      dispatched_at: dispatchedAt,
      first_token_at: null,
      attempt_start_chars: row.text.length,
    });
  }

  /**
   * The tab could not start the job because it is resting (job-machine.ts): no attempt was spent,
   * so the one `assign` counted is given back. The first time for this tab it is also taken off
   * `tried`, so it may be offered the job again once idle; a note (`rested:<tab>`, never a tab id,
   * which has no ':') remembers that, so after a second refusal it stays tried.
   */
  rested(id: string, tabId: string): void {
    const row = this.get(id);
    if (!row) return;
    const tried = this.tried(row);
    const note = `${RESTED}${tabId}`;
    const again = !tried.includes(note);
    const kept = again ? [...tried.filter((t) => t !== tabId), note] : tried;
    const json = JSON.stringify(kept);
    const attempts = Math.max(0, row.attempts - 1);
    this.sql.exec(`UPDATE jobs SET tried = ?, attempts = ? WHERE id = ?`, json, attempts, id);
    this.wrote(id, { tried: json, attempts });
  }

  /** The tab reported the request invalid (`bad_request`): noted in `tried` as `invalid:<tab>`. */
  reportedInvalid(id: string, tabId: string): void {
    const row = this.get(id);
    if (!row) return;
    const tried = this.tried(row);
    const note = `${INVALID}${tabId}`;
    if (tried.includes(note)) return;
    const json = JSON.stringify([...tried, note]);
    this.sql.exec(`UPDATE jobs SET tried = ? WHERE id = ?`, json, id);
    this.wrote(id, { tried: json });
  }

  /** Tabs that reported the job's request invalid (`reportedInvalid`). */
  invalidReporters(row: JobRow): string[] {
    return this.tried(row)
      .filter((t) => t.startsWith(INVALID))
      .map((t) => t.slice(INVALID.length));
  }

  /** A requeued job's answer starts again from nothing (job-reading.ts, restartsOnFailover). */
  clearText(id: string): void {
    this.texts.drop(id);
    this.sql.exec(`UPDATE jobs SET text = '', text_bytes = 0 WHERE id = ?`, id);
    this.wrote(id, { text: "", text_bytes: 0 });
  }

  /** The tab lost the job (left, failed, stalled): back to the queue, text kept. */
  requeue(id: string, cause: JobError): void {
    // The cause is kept so that, if no tab takes over, the client learns what went wrong first.
    // Its text so far is folded into jobs.text, so waiting jobs never have chunks (queued()).
    this.fold(id);
    const now = Date.now();
    const cursor = this.sql.exec(
      `UPDATE jobs SET state = 'queued', node_id = NULL, error_code = ?, error_message = ?,
         updated_at = ? WHERE id = ? AND state IN ('assigned', 'streaming')`,
      cause.code,
      cause.message,
      now,
      id,
    );
    if (cursor.rowsWritten === 0) return;
    this.wrote(id, {
      state: "queued",
      node_id: null,
      error_code: cause.code,
      error_message: cause.message,
      updated_at: now,
    });
  }

  markStreaming(id: string): void {
    this.texts.flush(id);
    // The accept of a job already streaming (a hedge's, or an embedding's next vectors) writes
    // nothing: the cached row says so without a statement.
    const held = this.rows.get(id);
    if (held && held.state !== "assigned") return;
    const now = Date.now();
    const cursor = this.sql.exec(
      `UPDATE jobs SET state = 'streaming', updated_at = ? WHERE id = ? AND state = 'assigned'`,
      now,
      id,
    );
    if (cursor.rowsWritten > 0) this.wrote(id, { state: "streaming", updated_at: now });
  }

  /**
   * Append a delta's text to the attempt at `position` (found by `position()` just before): in
   * memory at once, in SQLite with its batch (job-text.ts). Which deltas are new (seq or offset)
   * is the caller's check.
   */
  append(id: string, text: string, bytes: number): void {
    this.texts.append(id, text, bytes);
  }

  /**
   * A running job's answer is complete. `waiting`: a job waiting for its next attempt is ended
   * as it stands (the coordinator's budget left no tab to give it to: job-machine.ts onWaitDue).
   */
  finish(id: string, finishReason: FinishReason, usage: Usage, waiting = false): void {
    this.fold(id);
    const now = Date.now();
    const cursor = this.sql.exec(
      // An earlier attempt's error (kept for a failover that never finished) is no longer true.
      `UPDATE jobs SET state = 'done', finish_reason = ?, prompt_tokens = ?, completion_tokens = ?,
         error_code = NULL, error_message = NULL, updated_at = ?
       WHERE id = ? AND state IN ('assigned', 'streaming', ?)`,
      finishReason,
      usage.prompt_tokens,
      usage.completion_tokens,
      now,
      id,
      waiting ? "queued" : "assigned",
    );
    if (cursor.rowsWritten === 0) return;
    this.wrote(id, {
      state: "done",
      finish_reason: finishReason,
      prompt_tokens: usage.prompt_tokens,
      completion_tokens: usage.completion_tokens,
      error_code: null,
      error_message: null,
      updated_at: now,
    });
  }

  fail(id: string, error: JobError): boolean {
    this.fold(id);
    const now = Date.now();
    const cursor = this.sql.exec(
      `UPDATE jobs SET state = 'failed', error_code = ?, error_message = ?, updated_at = ?
       WHERE id = ? AND state NOT IN ('done', 'failed', 'cancelled')`,
      error.code,
      error.message,
      now,
      id,
    );
    if (cursor.rowsWritten === 0) return false;
    this.wrote(id, {
      state: "failed",
      error_code: error.code,
      error_message: error.message,
      updated_at: now,
    });
    return true;
  }

  cancel(id: string): boolean {
    this.fold(id);
    const now = Date.now();
    const cursor = this.sql.exec(
      `UPDATE jobs SET state = 'cancelled', updated_at = ? WHERE id = ?
         AND state NOT IN ('done', 'failed', 'cancelled')`,
      now,
      id,
    );
    if (cursor.rowsWritten === 0) return false;
    this.wrote(id, { state: "cancelled", updated_at: now });
    return true;
  }

  delete(id: string): void {
    this.texts.drop(id);
    this.sql.exec(`DELETE FROM jobs WHERE id = ?`, id);
    this.stateIs(id, null);
    this.changed(id);
  }

  countByState(): Record<string, number> {
    const out: Record<string, number> = {};
    for (const r of this.sql.exec<{ state: string; n: number }>(
      `SELECT state, count(*) AS n FROM jobs GROUP BY state`,
    )) {
      out[r.state] = r.n;
    }
    return out;
  }
}

export type { JobErrorCode };

/** What a cached row weighs: its spec and text, the parts that grow with the request. */
function rowChars(row: JobRow): number {
  return row.spec.length + row.text.length;
}
