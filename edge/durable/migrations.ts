/**
 * One way every Durable Object evolves its SQLite schema: an ordered list of steps, applied once
 * each, with the number applied kept in a one-row `_migrations (n)` table (the format the Region
 * object has used from the start, so its existing databases carry on where they are).
 *
 *   const MIGRATIONS: readonly Migration[] = [
 *     `CREATE TABLE IF NOT EXISTS client (...)`,        // 1: the schema as first shipped
 *     `ALTER TABLE client ADD COLUMN note TEXT`,        // 2: append, never edit an old step
 *   ];
 *   migrate(ctx.storage, MIGRATIONS);                   // usually through startUp (start-up.ts)
 *
 * Rules: append only; a shipped step is never edited or removed. An object whose tables were
 * created before it had a `_migrations` table starts at 0, so its first step must be the schema it
 * already has, written with IF NOT EXISTS. Each step and its count are committed together when
 * `DurableObjectStorage` is passed (transactionSync), so a failing step leaves the earlier ones
 * recorded and is retried on the next start, never half-applied.
 */
export type Migration = string | ((sql: SqlStorage) => void);

/** Anything that can run SQL: the storage (transactional steps) or its `sql` handle alone. */
export type MigrationTarget = DurableObjectStorage | SqlStorage;

function sqlOf(target: MigrationTarget): SqlStorage {
  return "sql" in target ? target.sql : target;
}

/** Number of steps already applied (0 for a new database or one that predates `_migrations`). */
export function appliedMigrations(target: MigrationTarget): number {
  const sql = sqlOf(target);
  sql.exec(`CREATE TABLE IF NOT EXISTS _migrations (n INTEGER NOT NULL)`);
  return sql.exec<{ n: number }>(`SELECT n FROM _migrations`).toArray()[0]?.n ?? 0;
}

/**
 * Apply the steps not yet applied, in order; returns how many ran. Idempotent: a second call with
 * the same list runs nothing. A database that has applied more steps than the list holds (code
 * rolled back after a deploy) is left alone rather than guessed at.
 */
export function migrate(target: MigrationTarget, steps: readonly Migration[]): number {
  const sql = sqlOf(target);
  const applied = appliedMigrations(target);
  if (applied >= steps.length) return 0;
  const hasRow = sql.exec(`SELECT 1 FROM _migrations`).toArray().length > 0;
  if (!hasRow) sql.exec(`INSERT INTO _migrations (n) VALUES (?)`, applied);
  for (let i = applied; i < steps.length; i++) {
    const step = steps[i] as Migration;
    const run = () => {
      if (typeof step === "string") sql.exec(step);
      else step(sql);
      sql.exec(`UPDATE _migrations SET n = ?`, i + 1);
    };
    if ("transactionSync" in target) target.transactionSync(run);
    else run();
  }
  return steps.length - applied;
}
