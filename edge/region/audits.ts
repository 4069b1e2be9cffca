import { log } from "../http/log.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import type { AuditAssign, TabMessage } from "../../shared/protocol/node-messages.js";
import { auditDeadlineMs, jobSeed, mayScoreOnCpu, shouldAudit } from "../../shared/trust/policy.js";
import { auditEvidence } from "../../shared/trust/reputation.js";
import { embeddingAuditEvidence } from "../../shared/trust/embedding-agreement.js";
import { Accusations, lapsed, type Accusation, type ConfirmedCount } from "./accusations.js";
import type { EmbeddingAnswers } from "./embedding-answers.js";
import {
  compareVectors,
  embeddingAuditJob,
  embeddingAuditPayload,
  isEmbeddingAudit,
  type EmbeddingAuditPayload,
} from "./embedding-audits.js";
import { newJobId } from "./job-request.js";
import type { TabFrame } from "./tab-channel.js";
import type { JobStore } from "./job-store.js";
import type { Placement } from "./placement.js";
import { auditTimer, type RegionTimer } from "./region-timers.js";
import type { Reputation } from "./reputation.js";
import type { TabChannel } from "./tab-channel.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";
import { MAX_TOKEN_BYTES, cutToBytes, utf8Bytes } from "./usage-bounds.js";
import { auditWindowStart } from "../../shared/trust/audit-window.js";
import {
  BIASED_SCORE_SINCE_PROTOCOL,
  CONFIRMED_LOGPROBS_SINCE_PROTOCOL,
} from "../../shared/protocol/version.js";
import {
  claimedOf,
  compareLogprobs,
  MIN_COMPARED_TEMPERATURE,
  type ClaimedLogprob,
  type LogprobComparison,
} from "../../shared/trust/logprob-agreement.js";
import type { JobLogprobs } from "./job-logprobs.js";

type AuditResult = Extract<TabMessage, { type: "audit.result" }>;
type JobFrame = Extract<TabFrame, { jobId: string }>;

export interface AuditsDeps {
  sql: SqlStorage;
  jobs: JobStore;
  tabs: TabRegistry;
  channel: TabChannel;
  placement: Placement;
  reputation: Reputation;
  /** A verifier that lets an audit's deadline pass is at fault. */
  trust: TabTrust;
  timers: TimerTable<RegionTimer>;
  /** Most bytes of payloads the audits may hold (storage-budget.ts `auditStorageBytes`). */
  maxBytes: number;
  /** The object's name in job ids: an embedding audit's job id is minted like a client job's. */
  region: string;
  /** Vectors of finished embedding jobs, the claims an embedding audit checks. */
  embeddings: Pick<EmbeddingAnswers, "read">;
  /** Told of each inflated count a second verifier confirms (region-credits.ts takes it back). */
  countConfirmed?: (c: ConfirmedCount) => void;
  /** Logprob entries of finished jobs, the claims an audit of such a job confirms. */
  logprobs: Pick<JobLogprobs, "read">;
}

interface AuditRow extends Record<string, SqlStorageValue> {
  id: string;
  subject: string;
  subject_public: string;
  subject_class: string | null;
  verifier: string | null;
  model: string;
  payload: string;
  created_at: number;
  sent_at: number | null;
  /** Verifiers that let this audit's deadline pass (JSON array of tab ids): not asked again. */
  missed: string;
  returned_at: number | null;
  /** An embedding audit out with a verifier: the job it runs as there (embedding-audits.ts). */
  job_id: string | null;
  /** Of the verifier's vectors so far: compared with the claimed ones, and of those far. */
  compared: number;
  far: number;
  /**
   * The audited tab's completion-token count of the answer (its own bounded claim: audits are of
   * answers one tab wrote wholly), kept only when the verifier is sent the whole free-text answer
   * and so can count it (token-counts.ts); null otherwise.
   */
  claimed_tokens: number | null;
  /**
   * A binding verifier's decisive accusation (accusations.ts, JSON `Accusation`), held until a
   * second binding verifier re-checks the answer; null for a plain sample.
   */
  accusation: string | null;
  /** The protocol its verifier must speak (`protocolFor`), for `dispatch` to read audits by. */
  protocol: number;
  /**
   * The serving tab's logprob entries for the audited span (JSON `ClaimedLogprob[]`), kept for an
   * audit from the answer's start of a job that asked for logprobs; never sent to the verifier.
   */
  claimed_logprobs: string | null;
}

/** An audit row's bytes as its share of the storage budget counts them (SQL). */
export const AUDIT_ROW_BYTES =
  "octet_length(payload) + COALESCE(octet_length(claimed_logprobs), 0)";

/**
 * The temperature a job's logprobs are compared at when the client gave none: the serving tab
 * used the model's default, which the coordinator does not know; the tolerance is wider the
 * colder the temperature, so a cool guess only widens it.
 */
const UNSTATED_TEMPERATURE = 0.5;

function hasBias(s: JobSpec["sampling"]): boolean {
  return Object.keys(s.logit_bias ?? {}).length > 0;
}

/**
 * The protocol a verifier must speak to score this audit right (shared/protocol/version.ts): a
 * window (`prefix`), a `logit_bias` or a grammar — an older page would score a window as the
 * answer's start, and the rest without the bias or the grammar the serving tab sampled under,
 * where an honest token can read as implausible; claimed logprobs to confirm (protocol 10).
 */
function protocolFor(json: string, claimedLogprobs: string | null): number {
  // A verifier from before protocol 10 sends no re-computed entries: the claim would go unchecked.
  if (claimedLogprobs) return CONFIRMED_LOGPROBS_SINCE_PROTOCOL;
  const payload = JSON.parse(json) as Partial<AuditAssign>;
  const sampling = payload.sampling;
  const needs = payload.prefix || (sampling && (hasBias(sampling) || sampling.constraint));
  return needs ? BIASED_SCORE_SINCE_PROTOCOL : 0;
}

/**
 * An audit not given to a verifier within this time of being sampled (or handed back) is dropped
 * (a missed sample, logged).
 */
const AUDIT_TTL_MS = 5 * 60_000;

/**
 * Waiting audits past their time, deleted. Named index: without statistics SQLite's planner takes
 * the verifier index (`verifier IS NULL` is an equality to it) and reads every waiting audit on
 * each dispatch; by the expiry index it reads only the lapsed ones (sql-schema.ts `audits_expiry`).
 */
export const EXPIRE_WAITING_SQL = `DELETE FROM audits INDEXED BY audits_expiry
  WHERE verifier IS NULL AND COALESCE(returned_at, created_at) < ?
  RETURNING id, subject_public, accusation`;

/** Waiting audits one look in `dispatch` reads per query (a bound on its work, not a policy). */
const WAITING_READ = 20;

/** Verifiers an audit's `missed` list keeps (the last ones: a bound on the row, not a policy). */
const MISSED_KEPT = 16;

/** The protocols `protocolFor` asks of a verifier. */
const PROTOCOLS = [0, BIASED_SCORE_SINCE_PROTOCOL, CONFIRMED_LOGPROBS_SINCE_PROTOCOL];

/**
 * The oldest waiting audits of one model, protocol and kind (plain, or carrying an accusation)
 * that one of some verifiers (`?`: a JSON array of tab ids) may take: not their subject, not in
 * their missed list, not their accuser. In the order of `audits_waiting`: waiting audits of other
 * models, protocols or kinds are not read.
 */
const WAITING_FOR = `SELECT * FROM audits AS a
  WHERE a.verifier IS NULL AND a.model = ? AND a.protocol = ? AND (a.accusation IS NOT NULL) = ?
    AND EXISTS (SELECT 1 FROM json_each(?) AS v
      WHERE v.value <> a.subject
        AND (a.accusation IS NULL OR v.value <> json_extract(a.accusation, '$.verifier'))
        AND NOT EXISTS (SELECT 1 FROM json_each(a.missed) AS m WHERE m.value = v.value))
  ORDER BY a.created_at LIMIT ${WAITING_READ}`;

/**
 * Audits of finished answers (docs/trust.md): a keyed sample of finished jobs — more for tabs on
 * probation or suspect — is re-scored by a second tab serving the same model, preferably of
 * another GPU class and trusted, only while it is idle and no client job waits (clients first). The
 * verifier's log-probs become evidence about the tab that answered (reputation.ts); evidence that
 * would decide a quarantine goes back with its audit for a second verifier (accusations.ts). An
 * embedding job's audit is a few of its inputs re-embedded by the verifier as an ordinary
 * embedding job (embedding-audits.ts), whose vectors are compared with the claimed ones as they
 * arrive and never kept: no client reads them, no ledger pays for them. Audits live in SQLite
 * (`audits`) until their result arrives, within their own share of the storage budget. A verifier
 * holds one audit at a time, until its result for that audit arrives, it leaves, or the audit's
 * deadline passes (then the audit goes to another verifier and the silent one is at fault):
 * saying it is idle, or answering for another audit id, frees nothing.
 */
export class Audits {
  private readonly accusations: Accusations;

  constructor(private readonly d: AuditsDeps) {
    this.accusations = new Accusations(d.reputation, d.trust, d.countConfirmed);
  }

  /** A client job finished on `tab`: maybe sample it for an audit, then give out waiting audits. */
  afterJob(tab: TabRecord, jobId: string): void {
    const { reputation, jobs, sql } = this.d;
    if (!reputation.settings.enabled) return;
    const row = jobs.get(jobId);
    // Only answers wholly written by this tab (a failover's text has several authors).
    if (!row || row.state !== "done" || row.attempt_start_chars !== 0) return;
    const spec: JobSpec = jobs.spec(row);
    const c = reputation.settings.config;
    // An embedding is no sample: nothing in it is hot (its sampling fields are unused).
    const temperature = spec.input.kind === "embedding" ? 0 : spec.sampling.temperature;
    if (!shouldAudit(c, jobId, reputation.stateOf(tab.tabId), temperature)) return;
    if (spec.input.kind === "embedding") {
      // The vectors are this tab's own: the first of an attempt clears an earlier one's.
      const payload = embeddingAuditPayload(c, spec, this.d.embeddings.read(jobId));
      if (payload) this.keep(tab, jobId, row.model, JSON.stringify(payload));
      return;
    }
    // Where the verifier looks (shared/trust/audit-window.ts): a free-text answer longer than one
    // window is scored from a keyed point half the time, the text before it sent as `prefix`
    // (protocol 9). A grammar cannot start mid-answer: a constrained one is scored from its start.
    const start = spec.sampling.constraint
      ? 0
      : auditWindowStart(
          c.key,
          jobId,
          row.text,
          c.maxAuditTokens,
          // Uncounted: the text alone decides.
          row.completion_tokens ?? Number.POSITIVE_INFINITY,
        );
    const prefix = row.text.slice(0, start);
    // The verifier scores maxAuditTokens tokens, which lie within this many bytes (no token is
    // longer than MAX_TOKEN_BYTES): the rest of the answer is not stored.
    const answer = cutToBytes(row.text.slice(start), c.maxAuditTokens * MAX_TOKEN_BYTES);
    const whole = prefix + answer === row.text;
    const audit: Omit<AuditAssign, "type" | "auditId"> = {
      model: row.model,
      input: spec.input,
      sampling: spec.sampling,
      answer,
      ...(prefix ? { prefix } : {}),
      seed: jobSeed(c, `audit:${jobId}`),
      // The end of the answer says something only when the model itself chose to stop there (and
      // the verifier is given the answer up to its end).
      scoreStop:
        row.finish_reason === "stop" &&
        whole &&
        !spec.sampling.stop?.length &&
        !spec.sampling.constraint,
      maxTokens: c.maxAuditTokens,
    };
    // An empty answer has no token to score, but its stop can be: right after the prompt, the
    // model finds stopping unlikely unless nothing is the answer (docs/trust.md).
    if (!answer && !audit.scoreStop) return;
    // The tab's count is compared with the verifier's count of the text it is sent: only when that
    // is the whole answer, free text — a grammar, or a client's logit_bias, may honestly force
    // tokenizations an encoder would merge (token-counts.ts) — and ended by no stop sequence of
    // the client's, whose tokens the tab generated and counted but the answer does not hold.
    const claimed =
      whole && !spec.sampling.constraint && !spec.sampling.stop?.length && !hasBias(spec.sampling)
        ? row.completion_tokens
        : null;
    this.keep(
      tab,
      jobId,
      row.model,
      JSON.stringify(audit),
      claimed,
      this.claimedLogprobs(tab, spec, jobId, prefix),
    );
  }

  /**
   * The serving tab's logprob entries to confirm, for an audit from the answer's start of a job
   * that asked for them and sampled warm enough to compare (logprob-agreement.ts): the first
   * `maxAuditTokens` entries — entries are a subsequence of the tokens, so they reach at least as
   * far as the scored ones. Null otherwise.
   */
  private claimedLogprobs(
    tab: TabRecord,
    spec: JobSpec,
    jobId: string,
    prefix: string,
  ): string | null {
    const s = spec.sampling;
    if (!s.logprobs || prefix) return null;
    if ((s.temperature ?? UNSTATED_TEMPERATURE) < MIN_COMPARED_TEMPERATURE) return null;
    const entries = this.d.logprobs.read(jobId, tab.tabId);
    if (!entries.length) return null;
    const c = this.d.reputation.settings.config;
    return JSON.stringify(claimedOf(entries.slice(0, c.maxAuditTokens)));
  }

  /** Keep a sampled job's audit until a verifier takes it, if there is room for it. */
  private keep(
    tab: TabRecord,
    jobId: string,
    model: string,
    payload: string,
    claimedTokens: number | null = null,
    claimedLogprobs: string | null = null,
  ): void {
    const { sql } = this.d;
    if (!this.makeRoom(utf8Bytes(payload) + (claimedLogprobs ? utf8Bytes(claimedLogprobs) : 0))) {
      log("info", "job not audited: no room for its audit", { jobId, tab: tab.publicId });
      return;
    }
    sql.exec(
      `INSERT OR IGNORE INTO audits (id, subject, subject_public, subject_class, model, payload,
         created_at, claimed_tokens, protocol, claimed_logprobs)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      `aud_${jobId}`,
      tab.tabId,
      tab.publicId,
      tab.gpu?.class ?? null,
      model,
      payload,
      Date.now(),
      claimedTokens,
      protocolFor(payload, claimedLogprobs),
      claimedLogprobs,
    );
    log("info", "job sampled for audit", { jobId, tab: tab.publicId });
  }

  /**
   * Room for a payload of `bytes` within the audits' share of the storage budget: the oldest
   * audits not sent to a verifier are dropped first (missed samples, logged), plain samples before
   * those carrying an accusation (a liar's quarantine waits on them). False when even that leaves
   * no room (the rest are out with verifiers, each holding one at most): the new sample is not
   * kept. So audits never take the room client jobs are admitted in.
   */
  private makeRoom(bytes: number): boolean {
    const { sql, maxBytes } = this.d;
    if (bytes > maxBytes) return false;
    let used = sql
      .exec<{ b: number }>(`SELECT COALESCE(SUM(${AUDIT_ROW_BYTES}), 0) AS b FROM audits`)
      .one().b;
    while (used + bytes > maxBytes) {
      const oldest = sql
        .exec<Pick<AuditRow, "id" | "subject_public" | "accusation"> & { b: number }>(
          `SELECT id, subject_public, accusation, ${AUDIT_ROW_BYTES} AS b FROM audits
           WHERE verifier IS NULL ORDER BY accusation IS NOT NULL, created_at LIMIT 1`,
        )
        .toArray()[0];
      if (!oldest) return false;
      sql.exec(`DELETE FROM audits WHERE id = ?`, oldest.id);
      used -= oldest.b;
      log("info", "audit dropped: audit storage full", { audit: oldest.id });
      lapsed(oldest);
    }
    return true;
  }

  /**
   * Give waiting audits to idle verifiers (never while client jobs wait for a tab), oldest first.
   * Only audits one of them may take are read (`waitingFor`): however many wait that none may —
   * of a model no idle tab serves, for a newer page, of the only idle tab's own answers, held
   * accusations only their accuser is idle to re-check — they do not hold back the rest. (Before,
   * the 20 oldest waiting were read, and 20 such audits held back every audit behind them until
   * they expired: audit-starvation.test.ts.) Each look sends an audit or ends the dispatch.
   */
  async dispatch(): Promise<void> {
    const { sql, jobs, channel, placement, timers } = this.d;
    if (!this.d.reputation.settings.enabled) return;
    const now = Date.now();
    const expired = sql
      .exec<Pick<AuditRow, "id" | "subject_public" | "accusation">>(
        EXPIRE_WAITING_SQL,
        now - AUDIT_TTL_MS,
      )
      .toArray();
    for (const row of expired) lapsed(row);
    if (jobs.queued().length) return;
    // One audit at a time: a tab holding one is no verifier, whatever it says of its state.
    const holding = new Set(
      sql
        .exec<{ verifier: string }>(`SELECT verifier FROM audits WHERE verifier IS NOT NULL`)
        .toArray()
        .map((r) => r.verifier),
    );
    for (const [row, verifier] of this.pairs(this.freeVerifiers(holding))) {
      const payload = JSON.parse(row.payload) as
        Omit<AuditAssign, "type" | "auditId"> | EmbeddingAuditPayload;
      // An embedding audit runs as an ordinary embedding job: the verifier holds no client job
      // (pickVerifier) and is marked busy, as for a re-score, so it gets none until it answers.
      const jobId = isEmbeddingAudit(payload) ? newJobId(this.d.region) : null;
      placement.updateTab(verifier, { state: "busy" });
      const sent = isEmbeddingAudit(payload)
        ? channel.send(verifier, {
            type: "job.assign",
            job: embeddingAuditJob(jobId!, payload),
            attempt: 1,
          })
        : channel.send(verifier, { type: "audit.assign", auditId: row.id, ...payload });
      if (!sent) {
        placement.updateTab(verifier, { state: "idle" });
        continue;
      }
      sql.exec(
        `UPDATE audits SET verifier = ?, sent_at = ?, job_id = ?, compared = 0, far = 0
         WHERE id = ?`,
        verifier.tabId,
        now,
        jobId,
        row.id,
      );
      const deadlineMs = auditDeadlineMs(this.d.reputation.settings.config, verifier.gpu?.class);
      await timers.set(auditTimer(row.id), now + deadlineMs);
      log("info", "audit sent", {
        audit: row.id,
        subject: row.subject_public,
        verifier: verifier.publicId,
      });
    }
  }

  /**
   * Waiting audits and the verifiers they go to, oldest audit first, each verifier once: the audits
   * read (`waitingFor`) are given out, and while some were left unread, those the verifiers still
   * free may take are read again. Each read but the last sends at least one audit. An audit no free
   * verifier may take when its turn comes stays so (the free ones only become fewer): when the
   * read held every audit they might take, none is left.
   */
  private *pairs(free: TabRecord[]): Generator<[AuditRow, TabRecord]> {
    for (let more = true; more && free.length;) {
      const { rows, all } = this.waitingFor(free);
      let picked = false;
      for (const row of rows) {
        const verifier = this.pickVerifier(row, free);
        if (!verifier) continue;
        picked = true;
        free.splice(free.indexOf(verifier), 1);
        yield [row, verifier];
      }
      more = picked && !all;
    }
  }

  /**
   * Tabs that may verify now: idle, holding no audit, not quarantined or suspect, not rested by the
   * circuit breaker, and not discredited by their accusations (their word would cost honest tabs
   * audits without weight).
   */
  private freeVerifiers(holding: ReadonlySet<string>): TabRecord[] {
    const { tabs, reputation, placement } = this.d;
    return [...tabs.all()].filter(
      (tab) =>
        !tab.jobId &&
        tab.state === "idle" &&
        !holding.has(tab.tabId) &&
        !placement.isResting(tab.tabId) &&
        !reputation.isQuarantined(tab.tabId) &&
        reputation.stateOf(tab.tabId) !== "suspect" &&
        !reputation.isDiscredited(tab.tabId),
    );
  }

  /**
   * The oldest waiting audits (at most WAITING_READ) one of the `free` verifiers may take, and
   * whether they are all there are (`all`), read by
   * what they ask of a verifier — model, protocol, binding word for an accusation — only where one
   * of the free verifiers has it (WAITING_FOR). An audit rules out by id at most MISSED_KEPT + 2
   * verifiers (its missed list, its subject, its accuser), so one more than that of those that
   * have it is enough for the query to find every such audit one of them may take.
   */
  private waitingFor(free: readonly TabRecord[]): { rows: AuditRow[]; all: boolean } {
    const { sql, reputation } = this.d;
    const binding = new Set(free.filter((t) => reputation.isBinding(t.tabId)));
    const rows: AuditRow[] = [];
    let all = true;
    for (const model of new Set(free.flatMap((t) => t.models)))
      for (const protocol of PROTOCOLS)
        for (const accused of [0, 1]) {
          const may = free
            .filter((t) => t.models.includes(model) && t.protocol >= protocol)
            .filter((t) => !accused || binding.has(t))
            .slice(0, MISSED_KEPT + 3)
            .map((t) => t.tabId);
          if (!may.length) continue;
          const read = sql
            .exec<AuditRow>(WAITING_FOR, model, protocol, accused, JSON.stringify(may))
            .toArray();
          if (read.length === WAITING_READ) all = false;
          rows.push(...read);
        }
    rows.sort((a, b) => a.created_at - b.created_at);
    return { rows: rows.slice(0, WAITING_READ), all: all && rows.length <= WAITING_READ };
  }

  /**
   * Of the `free` verifiers (`freeVerifiers`, still idle): not the subject, same model, speaking
   * the audit's protocol, and not one that let this audit's deadline pass; for an audit carrying an
   * accusation, binding and not the accuser (accusations.ts). Trusted preferred, then
   * one that says it scores on a GPU (its audit's deadline is minutes, not an hour and a half:
   * `auditDeadlineFor`), then another GPU class than the subject's. Trust first: the class is the tab's own claim (its
   * hello), so counting it above trust let any new identity claiming another class take audits
   * ahead of every trusted tab of the subject's class (verifier-choice.test.ts).
   */
  private pickVerifier(row: AuditRow, free: readonly TabRecord[]): TabRecord | undefined {
    const { reputation } = this.d;
    const missed = new Set(JSON.parse(row.missed) as string[]);
    const protocol = row.protocol;
    const accused = row.accusation ? (JSON.parse(row.accusation) as Accusation) : null;
    if (accused) missed.add(accused.verifier);
    let best: TabRecord | undefined;
    let bestScore = -1;
    for (const tab of free) {
      if (tab.tabId === row.subject || tab.jobId || tab.state !== "idle") continue;
      if (missed.has(tab.tabId) || !tab.models.includes(row.model)) continue;
      if (tab.protocol < protocol) continue;
      if (accused && !reputation.isBinding(tab.tabId)) continue;
      const state = reputation.stateOf(tab.tabId);
      const score =
        (state === "trusted" ? 4 : 0) +
        (mayScoreOnCpu(tab.gpu?.class) ? 0 : 2) +
        (tab.gpu?.class && tab.gpu.class !== row.subject_class ? 1 : 0);
      if (score > bestScore) {
        best = tab;
        bestScore = score;
      }
    }
    return best;
  }

  /**
   * A verifier answered: record the evidence about the subject; the verifier is free again. A
   * result for an audit it does not hold frees nothing (its state is taken only when it holds none:
   * a late answer after its deadline passed).
   */
  async onResult(verifier: TabRecord, msg: AuditResult): Promise<void> {
    const { sql, placement, reputation, timers } = this.d;
    const row = sql
      .exec<AuditRow>(
        // An embedding audit is answered by its job's frames (onJobFrame), never by a score.
        `SELECT * FROM audits WHERE id = ? AND verifier = ? AND job_id IS NULL`,
        msg.auditId,
        verifier.tabId,
      )
      .toArray()[0];
    if (!row) {
      if (!verifier.jobId && !this.holds(verifier))
        placement.updateTab(verifier, { state: msg.state ?? "idle" });
      const audit = msg.auditId;
      this.d.trust.rejections.note(verifier.publicId, "result for an audit not held", { audit });
      return;
    }
    await this.answered(verifier, row, msg.state);
    if (msg.error) {
      // The verifier could not score: the audit waits for another verifier, never this one (as
      // for a refused embedding audit). Sent back to it, a refusal kept an accusation pending for
      // good — a liar's second key pair refusing every re-check of it — and answered at once, the
      // audit went back and forth a thousand times a second (review, 2026-12-01).
      this.handBack(row.id, this.missedWith(row, verifier.tabId));
      log("info", "audit refused by verifier", {
        audit: row.id,
        verifier: verifier.publicId,
        code: msg.error.code,
      });
      return;
    }
    const { maxTokens, prefix, sampling } = JSON.parse(row.payload) as Omit<
      AuditAssign,
      "type" | "auditId"
    >;
    if (msg.tokenLogprobs.length > maxTokens) {
      log("warn", "audit result rejected (more tokens than asked)", { tab: verifier.publicId });
      return this.unjudged(row, verifier);
    }
    // Nothing scored: nothing to judge.
    if (msg.tokenLogprobs.length === 0 && msg.stopLogprob === null)
      return this.unjudged(row, verifier);
    // An inflated count is evidence, and on a binding word a fault of the subject (accusations.ts).
    const count = this.countOf(verifier, row, msg, prefix ? null : maxTokens);
    // A window's first token is not judged: where the cut falls inside what the serving tab wrote
    // as one token (text without spaces; a pre-tokenizer merging ".\n\n"), the encoder's first
    // token is a fragment an honest model can find unlikely there (audit-window.ts).
    const judged = prefix ? { ...msg, tokenLogprobs: msg.tokenLogprobs.slice(1) } : msg;
    const logprobs = this.logprobsOf(verifier, row, msg, sampling.temperature);
    await this.heard(row, {
      verifier,
      evidence: auditEvidence(judged, reputation.settings.config, count, logprobs),
      ...(count ? { count } : {}),
      what: `audit by ${verifier.publicId}`,
    });
  }

  /**
   * A verifier's evidence on an audit: recorded (accusations.ts), and the audit is done — or it
   * goes back carrying an accusation for a second verifier, never this one.
   */
  private async heard(row: AuditRow, word: Parameters<Accusations["hear"]>[1]): Promise<void> {
    const accusation = await this.accusations.hear(row, word);
    if (accusation === null) return this.done(row);
    this.handBack(row.id, this.missedWith(row, word.verifier.tabId), accusation);
  }

  /** The audit is over: its row goes. */
  private done(row: AuditRow): void {
    this.d.sql.exec(`DELETE FROM audits WHERE id = ?`, row.id);
  }

  /**
   * A result that judges nothing: the audit is over, unless it carries an accusation, which
   * waits for another verifier (never this one).
   */
  private unjudged(row: AuditRow, verifier: TabRecord): void {
    if (row.accusation) this.handBack(row.id, this.missedWith(row, verifier.tabId));
    else this.done(row);
  }

  /**
   * The verifier answered the audit it holds (a result, an error, its job's end): it is free for
   * other work in the state it says, unless a client job is on it, and the deadline is off.
   */
  private async answered(
    verifier: TabRecord,
    row: AuditRow,
    state: TabRecord["state"] | undefined,
  ): Promise<void> {
    if (!verifier.jobId) this.d.placement.updateTab(verifier, { state: state ?? "idle" });
    await this.d.timers.clear(auditTimer(row.id));
  }

  /**
   * The two counts of an audited answer to compare, when there are two: the tab's claim kept with
   * the audit and the verifier's count. None from a verifier that sends no count (a page from
   * before counts): the count is left unjudged. A count the verifier's own scores contradict — fewer
   * tokens than it scored, or more than it scored when it scored fewer than asked (it scores every
   * token up to `maxTokens`) — is no evidence about the subject: the verifier's fault. A window's
   * count also holds its prefix's tokens, which are not scored (`maxTokens` null): then only
   * "fewer than it scored" contradicts.
   */
  private countOf(
    verifier: TabRecord,
    row: AuditRow,
    msg: AuditResult,
    maxTokens: number | null,
  ): { claimed: number; counted: number } | undefined {
    if (row.claimed_tokens === null || msg.answerTokens === undefined) return undefined;
    const scored = msg.tokenLogprobs.length;
    const whole = maxTokens !== null && scored < maxTokens;
    if (msg.answerTokens < scored || (whole && msg.answerTokens !== scored)) {
      this.d.trust.fault(verifier, "audit count contradicts its own scores", {
        audit: row.id,
        scored,
        counted: msg.answerTokens,
      });
      return undefined;
    }
    return { claimed: row.claimed_tokens, counted: msg.answerTokens };
  }

  /**
   * The serving tab's claimed logprobs against the verifier's re-computation, when the audit kept
   * a claim and the verifier re-computed (protocol 10). A verifier whose entries are not one per
   * token it scored broke its own answer's rules: its fault, and no evidence about the subject.
   */
  private logprobsOf(
    verifier: TabRecord,
    row: AuditRow,
    msg: AuditResult,
    temperature: number | undefined,
  ): LogprobComparison | undefined {
    if (!row.claimed_logprobs || !msg.reported) return undefined;
    if (msg.reported.length !== msg.tokenLogprobs.length) {
      this.d.trust.fault(verifier, "audit entries do not match its scores", {
        audit: row.id,
        scored: msg.tokenLogprobs.length,
        entries: msg.reported.length,
      });
      return undefined;
    }
    const claimed = JSON.parse(row.claimed_logprobs) as ClaimedLogprob[];
    return compareLogprobs(claimed, msg.reported, temperature ?? UNSTATED_TEMPERATURE);
  }

  /** Is `jobId` the job of an embedding audit out with a verifier? Its frames are the audit's. */
  ownsJob(jobId: string): boolean {
    if (!this.d.reputation.settings.enabled) return false;
    return (
      this.d.sql.exec(`SELECT 1 FROM audits WHERE job_id = ? LIMIT 1`, jobId).toArray().length > 0
    );
  }

  /**
   * A frame of an embedding audit's job from its verifier (job-machine.ts routes them here before
   * any client job sees them). Vectors are compared with the claimed ones as they come and only the
   * counts are kept; at `job.done` with one vector per input the counts become evidence about the
   * audited tab. A verifier that answers out of the rules (wrong vectors, text, too few) is at fault
   * and the audit goes to another verifier; one that refuses or stops hands it back, as a refused
   * re-score does. Nothing here reaches a client, and the verifier earns no credit for it.
   */
  async onJobFrame(verifier: TabRecord, msg: JobFrame): Promise<void> {
    const { sql, placement, reputation, timers, trust } = this.d;
    const row = sql
      .exec<AuditRow>(
        `SELECT * FROM audits WHERE job_id = ? AND verifier = ?`,
        msg.jobId,
        verifier.tabId,
      )
      .toArray()[0];
    const ends = msg.type === "job.done" || msg.type === "job.error";
    if (!row) {
      if (ends && !verifier.jobId && !this.holds(verifier))
        placement.updateTab(verifier, { state: msg.state ?? "idle" });
      trust.rejections.note(verifier.publicId, "frame for an audit job not held", {
        jobId: msg.jobId,
        type: msg.type,
      });
      return;
    }
    const payload = JSON.parse(row.payload) as EmbeddingAuditPayload;
    if (msg.type === "job.accept" || msg.type === "job.progress") return;
    if (msg.type === "job.vectors") {
      const c = reputation.settings.config;
      const so = compareVectors(c, payload, row, msg);
      if ("refused" in so) return this.verifierAtFault(verifier, row, so.refused);
      sql.exec(`UPDATE audits SET compared = ?, far = ? WHERE id = ?`, so.compared, so.far, row.id);
      return;
    }
    if (msg.type === "job.done" && msg.finishReason !== "abort") {
      if (row.compared !== payload.inputs.length) {
        const why = `${row.compared} vectors for ${payload.inputs.length} inputs`;
        return this.verifierAtFault(verifier, row, why);
      }
      await this.answered(verifier, row, msg.state);
      return this.heard(row, {
        verifier,
        evidence: embeddingAuditEvidence(row.compared, row.far),
        what: `embedding audit by ${verifier.publicId}`,
      });
    }
    if (ends) {
      // It could not (or would not) embed: the audit waits for another verifier, never this one.
      await this.answered(verifier, row, msg.state);
      this.handBack(row.id, this.missedWith(row, verifier.tabId));
      log("info", "embedding audit refused by verifier", {
        audit: row.id,
        verifier: verifier.publicId,
      });
      return;
    }
    return this.verifierAtFault(verifier, row, `${msg.type} for an embedding job`);
  }

  /**
   * A verifier broke the rules of an embedding answer: its fault (as a serving tab's would be),
   * its job is stopped, and the audit goes to another verifier. Its state is its own again once it
   * confirms the stop (the `job.done` of a job it no longer holds).
   */
  private async verifierAtFault(verifier: TabRecord, row: AuditRow, why: string): Promise<void> {
    const { trust, placement, channel, timers } = this.d;
    trust.fault(verifier, `embedding audit answer refused: ${why}`, { audit: row.id });
    placement.recordFailure(verifier.tabId);
    if (row.job_id)
      channel.send(verifier, { type: "job.cancel", jobId: row.job_id, reason: "answer refused" });
    await timers.clear(auditTimer(row.id));
    this.handBack(row.id, this.missedWith(row, verifier.tabId));
  }

  /** The audit's `missed` list with this verifier added: it is not asked again. */
  private missedWith(row: AuditRow, verifierId: string): string {
    // The last 16 are kept (a bound on the row, not a policy).
    const missed = [...new Set([...(JSON.parse(row.missed) as string[]), verifierId])];
    return JSON.stringify(missed.slice(-MISSED_KEPT));
  }

  /**
   * The audit's deadline passed (region-alarms.ts): if its verifier still holds it, the audit goes
   * back for another verifier (never this one again) and the silent verifier is at fault — a
   * tab-trust fault and a circuit-breaker failure, as for a missed lease.
   */
  async onDeadline(auditId: string): Promise<void> {
    const { sql, tabs, placement, trust } = this.d;
    const row = sql.exec<AuditRow>(`SELECT * FROM audits WHERE id = ?`, auditId).toArray()[0];
    if (!row?.verifier) return;
    this.handBack(row.id, this.missedWith(row, row.verifier));
    const verifier = tabs.get(row.verifier);
    // An embedding audit's job is stopped on the silent verifier: its GPU is the owner's again.
    if (verifier && row.job_id) {
      const reason = "audit deadline passed";
      this.d.channel.send(verifier, { type: "job.cancel", jobId: row.job_id, reason });
    }
    // A verifier that vanished while the object was evicted is not blamed: nobody saw it leave.
    if (verifier) {
      trust.fault(verifier, "audit not answered in time", { audit: row.id });
      placement.recordFailure(verifier.tabId);
    }
    log("warn", "audit deadline passed; it goes to another verifier", {
      audit: row.id,
      subject: row.subject_public,
      verifier: verifier?.publicId ?? null,
    });
    await this.dispatch();
  }

  /** A verifier left: its audit waits for another one. */
  tabLeft(tab: TabRecord): void {
    this.d.sql.exec(
      `UPDATE audits SET verifier = NULL, sent_at = NULL, job_id = NULL, compared = 0, far = 0,
         returned_at = ? WHERE verifier = ?`,
      Date.now(),
      tab.tabId,
    );
  }

  /** Does this tab hold an audit (sent, not yet answered)? */
  private holds(tab: TabRecord): boolean {
    return (
      this.d.sql.exec(`SELECT 1 FROM audits WHERE verifier = ? LIMIT 1`, tab.tabId).toArray()
        .length > 0
    );
  }

  /**
   * The audit waits for a verifier again (its time to live starts afresh), carrying `accusation`
   * when one is now held on it (an accusation it carries already stays).
   */
  private handBack(auditId: string, missed?: string, accusation?: string): void {
    this.d.sql.exec(
      `UPDATE audits SET verifier = NULL, sent_at = NULL, job_id = NULL, compared = 0, far = 0,
         returned_at = ?, missed = COALESCE(?, missed), accusation = COALESCE(?, accusation)
       WHERE id = ?`,
      Date.now(),
      missed ?? null,
      accusation ?? null,
      auditId,
    );
  }

  /** Counts for GET /v1/nodes and the bench. */
  pending(): number {
    return this.d.sql.exec<{ n: number }>(`SELECT COUNT(*) AS n FROM audits`).one().n;
  }
}
