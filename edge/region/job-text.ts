import { utf8Bytes } from "./usage-bounds.js";

/**
 * The growing text of running jobs, appended in constant time per delta. Each delta goes to memory
 * first (readers get it at once); a batch is written as ONE row of `job_chunks` plus one small
 * UPDATE of the job's counters when it holds `maxDeltas` deltas or is `maxDelayMs` old, whichever
 * comes first — never a rewrite of the text so far. Any read of a job's whole text
 * (`JobStore.get`) and every state transition flushes the job's batch first, so SQLite is the
 * truth whenever anything but the per-delta path looks.
 *
 * What a crash can lose: the deltas of a batch not yet written (at most `maxDeltas` deltas or
 * `maxDelayMs` of text per job). A tab speaking protocol 4 sends each delta with its offset in the
 * attempt's text, so after a restart the coordinator sees the gap and asks the tab to resend from
 * the offset it holds (`job.resend`); docs/performance.md says what is durable when.
 */

/** Where a running attempt stands, kept in memory for the per-delta path. */
export interface TextPosition {
  /** The tab the job is bound to, and whether the job is assigned or streaming. */
  nodeId: string | null;
  open: boolean;
  attempts: number;
  /** Deltas accepted in this attempt (the next expected `seq` of a protocol 1–2 tab). */
  nextSeq: number;
  /** Characters (UTF-16 units) of the whole text, and where this attempt's part starts. */
  chars: number;
  attemptStart: number;
  /** UTF-8 bytes of the whole text, and the most the answer may have (0: no cap recorded). */
  bytes: number;
  cap: number;
  /** UTF-8 bytes of the text before this attempt's part (what earlier attempts delivered). */
  attemptStartBytes: number;
  /** The offset a `job.resend` last asked for, so a gap is asked about once. */
  resendAsked: number | null;
}

interface Live extends TextPosition {
  pending: string[];
  /** The attempt's first token time, written with the next batch (then cleared). */
  firstTokenAt: number | null;
  /** Index of the next chunk row. */
  nextChunk: number;
}

export interface BatchBounds {
  /** A batch is written once it holds this many deltas… */
  maxDeltas: number;
  /**
   * …or this long after its first delta arrived. A pending timer also keeps the runtime from
   * evicting the object gracefully before the batch is written. Infinity: no timer (tests use it
   * to leave a batch unwritten, as a crash would).
   */
  maxDelayMs: number;
}

export const DEFAULT_BATCH: BatchBounds = { maxDeltas: 32, maxDelayMs: 100 };

/**
 * Jobs written per statement: four bound parameters each (plus one) in the counters' UPDATE,
 * within the 100 bound parameters a Durable Object's SQLite allows per statement.
 */
const ROWS_PER_STATEMENT = 24;

/** `(?, ?, ?), …` for `rows` rows of `columns` values. */
function placeholders(rows: number, columns = 3): string {
  const row = `(${Array.from({ length: columns }, () => "?").join(", ")})`;
  return Array.from({ length: rows }, () => row).join(", ");
}

/** What loading a job's position needs from the store (the one O(length) read, once per attempt). */
export interface PositionSource {
  nodeId: string | null;
  open: boolean;
  attempts: number;
  nextSeq: number;
  text: string;
  attemptStart: number;
  bytes: number;
  cap: number;
}

/** What a batch write stored for one job: its text (appended) and counters (set). */
export interface WrittenBatch {
  text: string;
  nextSeq: number;
  bytes: number;
  /** The `updated_at` written. */
  at: number;
  /** The first token's time, when this batch wrote it (kept if one was already stored). */
  firstTokenAt: number | null;
}

export class JobTexts {
  private readonly live = new Map<string, Live>();
  private readonly dirty = new Set<string>();
  /**
   * The next chunk index of jobs between attempts whose count this instance knows (a job it
   * created has none; a settled position had its own), so loading the next position needs no
   * `max(idx)` read. Dropped when the position loads and when the job's chunks are folded.
   */
  private readonly nextChunks = new Map<string, number>();
  private timer: ReturnType<typeof setTimeout> | null = null;

  constructor(
    private readonly sql: SqlStorage,
    /** Batch bounds; tests widen them to hold a batch in memory on purpose. */
    readonly bounds: BatchBounds = { ...DEFAULT_BATCH },
    /** Told of each job's batch once it is written (JobStore keeps its cached row current). */
    private readonly onWritten?: (id: string, written: WrittenBatch) => void,
  ) {}

  /** The job's position, loaded from SQLite on first use after a transition. */
  position(id: string, load: () => PositionSource | undefined): TextPosition | undefined {
    let l = this.live.get(id);
    if (l) return l;
    const src = load();
    if (!src) return undefined;
    const next =
      this.nextChunks.get(id) ??
      this.sql
        .exec<{ n: number }>(
          `SELECT coalesce(max(idx) + 1, 0) AS n FROM job_chunks WHERE job_id = ?`,
          id,
        )
        .one().n;
    this.nextChunks.delete(id);
    l = {
      nodeId: src.nodeId,
      open: src.open,
      attempts: src.attempts,
      nextSeq: src.nextSeq,
      chars: src.text.length,
      attemptStart: src.attemptStart,
      bytes: src.bytes,
      cap: src.cap,
      // The attempt's own part is what is measured: it is empty when a new attempt loads this.
      attemptStartBytes: src.bytes - utf8Bytes(src.text.slice(src.attemptStart)),
      resendAsked: null,
      pending: [],
      firstTokenAt: null,
      nextChunk: next,
    };
    this.live.set(id, l);
    return l;
  }

  /** Append one accepted delta (constant work: memory, and a write per batch). */
  append(id: string, text: string, bytes: number): void {
    const l = this.live.get(id);
    if (!l) throw new Error(`append before position(${id})`);
    l.nextSeq += 1;
    l.resendAsked = null;
    if (text) {
      l.pending.push(text);
      l.chars += text.length;
      l.bytes += bytes;
    }
    this.dirty.add(id);
    if (l.pending.length >= this.bounds.maxDeltas) this.flush(id);
    else if (Number.isFinite(this.bounds.maxDelayMs)) {
      this.timer ??= setTimeout(() => this.flushAll(), this.bounds.maxDelayMs);
    }
  }

  /**
   * The attempt's first token arrived at `at`: its batch (that delta included) is written now,
   * with the time, in the same two statements as any batch. False when the job has no position.
   */
  firstToken(id: string, at: number): boolean {
    const l = this.live.get(id);
    if (!l) return false;
    l.firstTokenAt = at;
    this.dirty.add(id);
    this.flush(id);
    return true;
  }

  /** Text appended but not yet written, for a read that must see everything. */
  unwritten(id: string): string {
    return this.live.get(id)?.pending.join("") ?? "";
  }

  /** Write the job's batch: one chunk row and the counters. */
  flush(id: string): void {
    this.write([id]);
  }

  /** Write every pending batch (the timer's flush): one INSERT and one UPDATE for all of them. */
  flushAll(): void {
    if (this.timer !== null) clearTimeout(this.timer);
    this.timer = null;
    this.write([...this.dirty]);
  }

  /**
   * Write the batches of `ids` that are dirty. The timer flushes every streaming job at once, and
   * each SQLite write statement costs far more than its rows (profile-overhead: two statements per
   * job per flush were the Region's largest self time), so the jobs share one multi-row INSERT of
   * chunks and one UPDATE … FROM VALUES of counters, up to `ROWS_PER_STATEMENT` jobs each. Same
   * rows, same transaction (the runtime commits a turn's writes together) as a statement per job.
   */
  private write(ids: string[]): void {
    const due: [string, Live][] = [];
    for (const id of ids) {
      const l = this.live.get(id);
      if (l && this.dirty.delete(id)) due.push([id, l]);
    }
    for (let i = 0; i < due.length; i += ROWS_PER_STATEMENT) {
      this.writeGroup(due.slice(i, i + ROWS_PER_STATEMENT));
    }
  }

  private writeGroup(group: [string, Live][]): void {
    const texts = group.map(([, l]) => l.pending.join(""));
    const chunks: (string | number)[] = [];
    group.forEach(([id, l], i) => {
      if (l.pending.length === 0) return;
      chunks.push(id, l.nextChunk++, texts[i]!);
      l.pending = [];
    });
    if (chunks.length) {
      this.sql.exec(
        `INSERT INTO job_chunks (job_id, idx, text) VALUES ${placeholders(chunks.length / 3)}`,
        ...chunks,
      );
    }
    const at = Date.now();
    const params: (string | number | null)[] = [at];
    for (const [id, l] of group) params.push(id, l.nextSeq, l.bytes, l.firstTokenAt);
    this.sql.exec(
      // first_token_at: set once per attempt (assign clears it), as its own UPDATE did before.
      `UPDATE jobs SET next_seq = v.column2, text_bytes = v.column3, updated_at = ?,
         state = CASE jobs.state WHEN 'assigned' THEN 'streaming' ELSE jobs.state END,
         first_token_at = coalesce(jobs.first_token_at, v.column4)
       FROM (VALUES ${placeholders(group.length, 4)}) AS v
       WHERE jobs.id = v.column1`,
      ...params,
    );
    group.forEach(([id, l], i) => {
      const firstTokenAt = l.firstTokenAt;
      l.firstTokenAt = null;
      this.onWritten?.(id, {
        text: texts[i]!,
        nextSeq: l.nextSeq,
        bytes: l.bytes,
        at,
        firstTokenAt,
      });
    });
  }

  /** A job just created: it has no chunk yet. */
  fresh(id: string): void {
    this.nextChunks.set(id, 0);
  }

  /** The job changes state: its batch is written and its position reloaded on next use. */
  settle(id: string): void {
    const l = this.live.get(id);
    this.flush(id);
    if (l) this.nextChunks.set(id, l.nextChunk);
    this.live.delete(id);
  }

  /** The chunks written so far, in order. */
  chunks(id: string): string {
    let text = "";
    for (const r of this.sql.exec<{ text: string }>(
      `SELECT text FROM job_chunks WHERE job_id = ? ORDER BY idx`,
      id,
    )) {
      text += r.text;
    }
    return text;
  }

  /**
   * Fold a finished job's chunks into jobs.text (one rewrite per job, when it ends). `whole`: the
   * job's whole text when the caller holds it current (JobStore's cached row, once this batch is
   * written), so the chunks need not be read back; an attempt that wrote no chunk folds nothing.
   */
  fold(id: string, whole?: () => string | undefined): void {
    this.settle(id);
    const next = this.nextChunks.get(id);
    this.nextChunks.delete(id);
    if (next === 0) return;
    const known = whole?.();
    if (known !== undefined) {
      const deleted = this.sql.exec(`DELETE FROM job_chunks WHERE job_id = ?`, id).rowsWritten;
      if (deleted > 0) this.sql.exec(`UPDATE jobs SET text = ? WHERE id = ?`, known, id);
      return;
    }
    const rest = this.chunks(id);
    if (!rest) return;
    this.sql.exec(`UPDATE jobs SET text = text || ? WHERE id = ?`, rest, id);
    this.sql.exec(`DELETE FROM job_chunks WHERE job_id = ?`, id);
  }

  drop(id: string): void {
    this.live.delete(id);
    this.dirty.delete(id);
    this.nextChunks.delete(id);
    this.sql.exec(`DELETE FROM job_chunks WHERE job_id = ?`, id);
  }
}
