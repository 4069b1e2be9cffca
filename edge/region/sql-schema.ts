import { migrate as applyMigrations, type Migration } from "../durable/migrations.js";

/**
 * SQLite schema of a Region Durable Object, applied in order by edge/durable/migrations.ts. Each
 * entry runs once; the applied count lives in the `_migrations` table, so adding a statement at
 * the end is a migration and editing an old one is not allowed.
 */
export const REGION_MIGRATIONS: readonly Migration[] = [
  `CREATE TABLE nodes (
     node_id TEXT PRIMARY KEY,
     public_id TEXT NOT NULL,
     adapter TEXT NOT NULL,
     agent TEXT NOT NULL,
     models TEXT NOT NULL,
     state TEXT NOT NULL,
     lat REAL, lon REAL,
     connected_at INTEGER NOT NULL,
     last_seen INTEGER NOT NULL,
     jobs_served INTEGER NOT NULL DEFAULT 0
   )`,
  `CREATE TABLE jobs (
     id TEXT PRIMARY KEY,
     request_id TEXT NOT NULL,
     model TEXT NOT NULL,
     kind TEXT NOT NULL,
     node_id TEXT,
     state TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     updated_at INTEGER NOT NULL,
     delivered_chars INTEGER NOT NULL DEFAULT 0,
     next_seq INTEGER NOT NULL DEFAULT 0,
     finish_reason TEXT,
     error_code TEXT,
     prompt_tokens INTEGER,
     completion_tokens INTEGER
   )`,
  `CREATE INDEX jobs_by_state ON jobs(state)`,
  // Failover and resume: the request itself, the text delivered so far, who tried it.
  `ALTER TABLE jobs ADD COLUMN spec TEXT NOT NULL DEFAULT '{}'`,
  `ALTER TABLE jobs ADD COLUMN text TEXT NOT NULL DEFAULT ''`,
  `ALTER TABLE jobs ADD COLUMN attempts INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE jobs ADD COLUMN tried TEXT NOT NULL DEFAULT '[]'`,
  `ALTER TABLE jobs ADD COLUMN error_message TEXT`,
  `ALTER TABLE jobs ADD COLUMN detach_grace_ms INTEGER NOT NULL DEFAULT 500`,
  `ALTER TABLE jobs ADD COLUMN owner TEXT`,
  // Geo scheduling: the tab's GPU report; the request's matching facts, kept for re-dispatch.
  `ALTER TABLE nodes ADD COLUMN gpu TEXT`,
  `ALTER TABLE jobs ADD COLUMN match TEXT`,
  `ALTER TABLE jobs ADD COLUMN priority INTEGER NOT NULL DEFAULT 1`,
  `ALTER TABLE jobs ADD COLUMN dispatched_at INTEGER`,
  `ALTER TABLE jobs ADD COLUMN first_token_at INTEGER`,
  // Credit: where the current attempt's text starts, and each tab's running total.
  `ALTER TABLE jobs ADD COLUMN attempt_start_chars INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE nodes ADD COLUMN credits REAL NOT NULL DEFAULT 0`,
  // Trust: per identity (public key), surviving reconnects — credit, jobs, faults, quarantine
  // (tab-trust.ts). nodes.credits is no longer written; its totals move here once.
  `CREATE TABLE tab_trust (
     identity TEXT PRIMARY KEY,
     credits REAL NOT NULL DEFAULT 0,
     jobs INTEGER NOT NULL DEFAULT 0,
     faults INTEGER NOT NULL DEFAULT 0,
     quarantined_at INTEGER,
     reason TEXT,
     first_seen INTEGER NOT NULL,
     last_seen INTEGER NOT NULL
   )`,
  `INSERT OR IGNORE INTO tab_trust (identity, credits, first_seen, last_seen)
     SELECT node_id, credits, connected_at, last_seen FROM nodes`,
  // Coordinator-owned accounting: answer bytes so far, and the most max_tokens allows (usage-bounds.ts).
  `ALTER TABLE jobs ADD COLUMN text_bytes INTEGER NOT NULL DEFAULT 0`,
  `ALTER TABLE jobs ADD COLUMN answer_cap_bytes INTEGER NOT NULL DEFAULT 0`,
  // Verification (edge/region/reputation.ts, audits.ts, canaries.ts; docs/trust.md): audit and
  // canary evidence per identity (quarantine itself is tab_trust's), audits waiting for or out
  // with a verifier, canaries out and the canary answers the network knows.
  `CREATE TABLE tab_reputation (
     node_id TEXT PRIMARY KEY,
     public_id TEXT NOT NULL,
     evidence TEXT NOT NULL,
     state TEXT NOT NULL,
     reason TEXT,
     updated_at INTEGER NOT NULL
   );
   CREATE TABLE audits (
     id TEXT PRIMARY KEY,
     subject TEXT NOT NULL,
     subject_public TEXT NOT NULL,
     subject_class TEXT,
     verifier TEXT,
     model TEXT NOT NULL,
     payload TEXT NOT NULL,
     created_at INTEGER NOT NULL,
     sent_at INTEGER
   );
   CREATE TABLE canary_runs (
     job_id TEXT PRIMARY KEY,
     node_id TEXT NOT NULL,
     model TEXT NOT NULL,
     prompt_index INTEGER NOT NULL,
     text TEXT NOT NULL DEFAULT '',
     started_at INTEGER NOT NULL
   );
   CREATE TABLE canary_answers (
     model TEXT NOT NULL,
     prompt_index INTEGER NOT NULL,
     node_id TEXT NOT NULL,
     answer TEXT NOT NULL,
     confirmed INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (model, prompt_index, node_id)
   )`,
  // Read access: the job's read token hash and answer mode (job-reading.ts).
  `ALTER TABLE jobs ADD COLUMN reading TEXT`,
  // Token log-probabilities a job asked for, per frame of its serving tab (job-logprobs.ts).
  `CREATE TABLE job_logprobs (
     job_id TEXT NOT NULL,
     node_id TEXT NOT NULL,
     count INTEGER NOT NULL,
     entries TEXT NOT NULL
   );
   CREATE INDEX job_logprobs_by_job ON job_logprobs(job_id)`,
  // Cheap frames (job-store.ts): a job's text grows by appended chunks, one row per batch of
  // deltas, instead of rewriting jobs.text on every delta; chunks fold into jobs.text when it ends.
  `CREATE TABLE job_chunks (
     job_id TEXT NOT NULL,
     idx INTEGER NOT NULL,
     text TEXT NOT NULL,
     PRIMARY KEY (job_id, idx)
   )`,
  // Embedding answers (edge/region/embedding-answers.ts): one vector per input of an embedding
  // job, base64 float32, from the tab that sent it; deleted with the job's record.
  `CREATE TABLE job_vectors (
     job_id TEXT NOT NULL,
     idx INTEGER NOT NULL,
     node_id TEXT NOT NULL,
     vector TEXT NOT NULL,
     PRIMARY KEY (job_id, idx)
   )`,
  // Audit deadlines (audits.ts): the verifiers that let an audit's deadline pass (it goes to
  // another one), when it was last handed back (unsent audits expire from then), and which audit
  // a verifier holds (one at a time).
  `ALTER TABLE audits ADD COLUMN missed TEXT NOT NULL DEFAULT '[]';
   ALTER TABLE audits ADD COLUMN returned_at INTEGER;
   CREATE INDEX audits_by_verifier ON audits(verifier)`,
  // Canary answers (canaries.ts) are confirmed only by two identities out of probation, and each
  // confirmation names the identity it agreed with, so a quarantine withdraws it. Answers confirmed
  // before could have been set by one person's two anonymous sockets: they are learned again.
  `ALTER TABLE canary_answers ADD COLUMN confirmed_with TEXT;
   UPDATE canary_answers SET confirmed = 0;
   DELETE FROM canary_answers WHERE substr(node_id, 1, 2) = 'a_'`,
  // Credit: the ledger hold a paid queue place set aside, by the id the Worker minted for this
  // job (credits/queue-place.ts); settled by it, never by the client's x-request-id.
  `ALTER TABLE jobs ADD COLUMN hold_id TEXT`,
  // The caller's concurrency slot a job holds until it ends (job-readers.ts, edge/auth/client-slots.ts).
  `ALTER TABLE jobs ADD COLUMN slot TEXT`,
  // Embedding audits (audits.ts, embedding-audits.ts): the job an embedding audit runs as on its
  // verifier, and of the verifier's vectors so far, how many were compared and how many were far.
  `ALTER TABLE audits ADD COLUMN job_id TEXT;
   ALTER TABLE audits ADD COLUMN compared INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE audits ADD COLUMN far INTEGER NOT NULL DEFAULT 0;
   CREATE INDEX audits_by_job ON audits(job_id)`,
  // Count audits (audits.ts, shared/trust/token-counts.ts): the audited tab's completion-token
  // count of the answer, kept when the verifier gets the whole free-text answer and can count it.
  `ALTER TABLE audits ADD COLUMN claimed_tokens INTEGER`,
  // Contested canary prompts (canary-contests.ts): two confirmers agreed on an answer other than
  // the known one, so the prompt judges no one and no answer is learned for it again.
  `CREATE TABLE canary_contests (
     model TEXT NOT NULL,
     prompt_index INTEGER NOT NULL,
     contested_at INTEGER NOT NULL,
     PRIMARY KEY (model, prompt_index)
   )`,
  // Accusations (accusations.ts): a binding verifier's decisive accusation, held on its audit
  // (JSON: the accuser, its evidence, the counts) until a second binding verifier re-checks it.
  `ALTER TABLE audits ADD COLUMN accusation TEXT`,
  // Waiting audits by what they ask of a verifier (audits.ts `dispatch`): the protocol it must
  // speak (`protocolFor`: 0, or 9 for a window, a logit_bias or a grammar — set here from the
  // payloads of rows from before), and an index of the waiting ones by model, protocol and kind
  // (carrying an accusation or not), oldest first, so a dispatch reads only those its idle
  // verifiers may take.
  `ALTER TABLE audits ADD COLUMN protocol INTEGER NOT NULL DEFAULT 0;
   UPDATE audits SET protocol = 9
     WHERE json_extract(payload, '$.prefix') <> ''
        OR json_extract(payload, '$.sampling.constraint') IS NOT NULL
        OR json_extract(payload, '$.sampling.logit_bias') <> '{}';
   CREATE INDEX audits_waiting ON audits(model, protocol, (accusation IS NOT NULL), created_at)
     WHERE verifier IS NULL`,
  // Claimed logprobs (audits.ts, shared/trust/logprob-agreement.ts): the serving tab's entries for
  // the audited span of a job that asked for logprobs (JSON `ClaimedLogprob[]`), compared with the
  // verifier's re-computation. Never sent to the verifier.
  `ALTER TABLE audits ADD COLUMN claimed_logprobs TEXT`,
  // Waiting audits by when they lapse (audits.ts `dispatch`, every time a tab turns idle): the
  // expiry probes this instead of reading every waiting audit — 1,000 expiries over 5,000 waiting
  // audits took 1,107–1,737 ms by the verifier index and 4–6 ms by this one (workerd, 2026-12-02).
  `CREATE INDEX audits_expiry ON audits(COALESCE(returned_at, created_at)) WHERE verifier IS NULL`,
  // The Region's changes to the credit ledger not yet answered for (edge/credits/ledger-outbox.ts):
  // one JSON `LedgerOp` per row, sent in `seq` order and deleted once the ledger took it.
  `CREATE TABLE ledger_outbox (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     op TEXT NOT NULL,
     at INTEGER NOT NULL
   )`,
];

/** Bring a Region database up to date (the same as `startUp(ctx, { migrations: REGION_MIGRATIONS })`). */
export function migrate(sql: SqlStorage): void {
  applyMigrations(sql, REGION_MIGRATIONS);
}
