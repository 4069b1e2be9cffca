import { log } from "../http/log.js";
import type { JobSpec } from "../../shared/protocol/job.js";
import { pickCanary, shouldCanary } from "../../shared/trust/policy.js";
import { canaryAgreement, canaryEvidence, canaryPasses } from "../../shared/trust/reputation.js";
import type { JobStore } from "./job-store.js";
import { newJobId } from "./job-request.js";
import type { Placement } from "./placement.js";
import type { Reputation } from "./reputation.js";
import type { TabChannel, TabFrame } from "./tab-channel.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import { isAnonymous } from "../../shared/trust/anonymous.js";
import { CanaryContests } from "./canary-contests.js";
import { roomForAnswer } from "./canary-answer-room.js";

export interface CanariesDeps {
  sql: SqlStorage;
  region: string;
  jobs: JobStore;
  channel: TabChannel;
  placement: Placement;
  reputation: Reputation;
  /** Who may confirm a canary answer (out of probation); a quarantine withdraws confirmations. */
  trust: TabTrust;
}

/** The confirmed answer of a (model, prompt): its row's identity and the one it agreed with. */
interface KnownRow extends Record<string, SqlStorageValue> {
  node_id: string;
  answer: string;
  confirmed_with: string | null;
}

/** Two canary answers are the same answer for confirming (and disputing) one. */
const SAME_ANSWER = 0.99;

interface RunRow extends Record<string, SqlStorageValue> {
  job_id: string;
  node_id: string;
  model: string;
  prompt_index: number;
  text: string;
}

/**
 * Canary jobs (docs/trust.md): after a finished client job, a keyed draw (more often for tabs on
 * probation or suspect) gives the tab a canary as its next job — a prompt from a fixed, organic
 * looking set, with a job id minted like any other, greedy sampling and a coordinator seed — only
 * while no client job waits. The answer is compared with the answer the network knows for that
 * (model, prompt). The known answer is learned only from identities that cannot be had for free
 * (`mayConfirm`): their answers are kept as candidates until two of them agree exactly, and the
 * confirmation names both, so a quarantine of either withdraws it. Two such identities agreeing on
 * another answer contest it (canary-contests.ts): then it judges no one. A tab cannot tell a
 * canary from a client job.
 */
export class Canaries {
  private readonly contests: CanaryContests;

  constructor(private readonly d: CanariesDeps) {
    this.contests = new CanaryContests(d.sql);
    d.trust.onQuarantine((identity) => this.withdraw(identity));
  }

  /**
   * May this identity's canary answer set the known one? A new identity costs nothing — an
   * anonymous socket (`a_…`) is a new one at every connection, a key pair is made in a moment —
   * so only a signed identity out of probation counts: `PROBATION_JOBS` finished jobs with few
   * faults (tab-trust.ts) and trusted by its audits and canaries (reputation.ts, not suspect).
   */
  mayConfirm(identity: string): boolean {
    return (
      !isAnonymous(identity) &&
      this.d.trust.state(identity) === "trusted" &&
      this.d.reputation.stateOf(identity) === "trusted"
    );
  }

  /**
   * May this identity's kept answer still dispute a known one with another's? Every kept answer
   * came from an identity that could confirm when it answered; this asks less of it now — signed
   * and past probation in TabTrust (so not quarantined), not `trusted` by its checks. The first
   * honest dissenter is judged against the disputed answer, and one failed canary of one judged
   * makes it suspect: asking `mayConfirm` would let the disputed answer itself silence every
   * dissent. A contest only stops judging (it frames no one), so the lower bar errs the safe way.
   */
  private mayDispute(identity: string): boolean {
    return !isAnonymous(identity) && this.d.trust.state(identity) === "trusted";
  }

  /**
   * A quarantined identity confirms nothing any more: the answers it confirmed (or agreed with)
   * are candidates again and its own candidates go. Canaries judged against them before stay
   * judged; from now on tabs are judged only once two other identities agree.
   */
  private withdraw(identity: string): void {
    const { sql } = this.d;
    const withdrawn = sql
      .exec<{ model: string; prompt_index: number }>(
        `SELECT model, prompt_index FROM canary_answers
         WHERE confirmed = 1 AND (node_id = ? OR confirmed_with = ?)`,
        identity,
        identity,
      )
      .toArray();
    sql.exec(
      `UPDATE canary_answers SET confirmed = 0, confirmed_with = NULL WHERE confirmed_with = ?`,
      identity,
    );
    sql.exec(`DELETE FROM canary_answers WHERE node_id = ?`, identity);
    for (const w of withdrawn)
      log("warn", "canary answer withdrawn (a confirmer was quarantined)", {
        model: w.model,
        prompt: w.prompt_index,
      });
  }

  /**
   * Indices of `prompts` whose answer for `model` is confirmed. A contested prompt has none: its
   * answers were unconfirmed when it was contested and none is confirmed while it is.
   */
  private knownPrompts(model: string, prompts: readonly string[]): number[] {
    return this.d.sql
      .exec<{ prompt_index: number }>(
        `SELECT DISTINCT prompt_index FROM canary_answers WHERE model = ? AND confirmed = 1 ORDER BY prompt_index`,
        model,
      )
      .toArray()
      .map((r) => r.prompt_index)
      .filter((i) => i < prompts.length);
  }

  /**
   * Prompts of `model` whose known answer `identity`'s kept answer disagrees with (not one it
   * confirmed: see againstKnown).
   */
  private disputedBy(model: string, identity: string): Set<number> {
    const rows = this.d.sql
      .exec<{ prompt_index: number; mine: string; known: string }>(
        `SELECT mine.prompt_index, mine.answer AS mine, known.answer AS known
         FROM canary_answers mine JOIN canary_answers known
           ON known.model = mine.model AND known.prompt_index = mine.prompt_index
           AND known.confirmed = 1 AND known.confirmed_with IS NOT mine.node_id
         WHERE mine.model = ? AND mine.node_id = ? AND mine.confirmed = 0`,
        model,
        identity,
      )
      .toArray();
    return new Set(rows.filter((r) => !this.passes(r.mine, r.known)).map((r) => r.prompt_index));
  }

  /**
   * Indices of `prompts` not contested for `model`: what a confirmer may be sent. (All of them
   * draw the same prompt as no list: pickCanary takes `among[hash % n]`.)
   */
  private openPrompts(model: string, prompts: readonly string[]): number[] {
    const contested = this.contests.of(model);
    return prompts.map((_, i) => i).filter((i) => !contested.has(i));
  }

  owns(jobId: string): boolean {
    if (!this.d.reputation.settings.enabled) return false;
    return (
      this.d.sql.exec(`SELECT 1 FROM canary_runs WHERE job_id = ?`, jobId).toArray().length > 0
    );
  }

  /** A client job finished on `tab` (now idle): maybe send it a canary. True when one was sent. */
  afterJob(tab: TabRecord): boolean {
    const { reputation, jobs, sql, channel, placement } = this.d;
    const { enabled, config: c, canaryPrompts } = reputation.settings;
    if (!enabled || tab.jobId || tab.state !== "idle" || jobs.queued().length) return false;
    const model = tab.models[0];
    if (!model) return false;
    const state = reputation.stateOf(tab.tabId);
    if (!shouldCanary(c, tab.publicId, tab.jobsServed, state)) return false;
    // A canary whose answer is not known judges nothing, and only a confirmer's answer can help
    // make it known: anyone else is sent only prompts with a known answer, or none (it would cost
    // the contributor's GPU for no evidence — session 13; bench:trust sent 48 such in one run).
    // A contested prompt neither judges nor is learned: no one is sent it. Nor is a prompt whose
    // known answer this identity disputes: it was judged against it once, and would only fail
    // again while it waits for a second dissenter (failures that add up to a quarantine, which
    // withdraws its dissent).
    const disputed = this.disputedBy(model, tab.tabId);
    const among = (
      this.mayConfirm(tab.tabId)
        ? this.openPrompts(model, canaryPrompts)
        : this.knownPrompts(model, canaryPrompts)
    ).filter((i) => !disputed.has(i));
    if (among.length === 0) return false;
    const pick = pickCanary(c, tab.publicId, tab.jobsServed, canaryPrompts, among);
    const spec: JobSpec = {
      id: newJobId(this.d.region),
      model,
      input: { kind: "chat", messages: [{ role: "user", content: pick.prompt }] },
      sampling: { max_tokens: c.canaryMaxTokens, temperature: 0, seed: pick.seed },
    };
    sql.exec(
      `INSERT INTO canary_runs (job_id, node_id, model, prompt_index, started_at) VALUES (?, ?, ?, ?, ?)`,
      spec.id,
      tab.tabId,
      model,
      pick.index,
      Date.now(),
    );
    placement.updateTab(tab, { jobId: spec.id, state: "busy" });
    if (!channel.send(tab, { type: "job.assign", job: spec, attempt: 1 })) {
      placement.updateTab(tab, { jobId: null, state: "idle" });
      sql.exec(`DELETE FROM canary_runs WHERE job_id = ?`, spec.id);
      return false;
    }
    log("info", "canary sent", { tab: tab.publicId });
    return true;
  }

  /** A frame about a canary job (job.accept/delta/done/error). */
  async onFrame(tab: TabRecord, msg: Extract<TabFrame, { jobId: string }>): Promise<void> {
    const { sql, placement } = this.d;
    const run = sql
      .exec<RunRow>(
        `SELECT * FROM canary_runs WHERE job_id = ? AND node_id = ?`,
        msg.jobId,
        tab.tabId,
      )
      .toArray()[0];
    if (!run) return;
    if (msg.type === "job.delta") {
      if (run.text.length + msg.text.length > 4096) return;
      sql.exec(`UPDATE canary_runs SET text = text || ? WHERE job_id = ?`, msg.text, run.job_id);
      return;
    }
    if (msg.type !== "job.done" && msg.type !== "job.error") return;
    sql.exec(`DELETE FROM canary_runs WHERE job_id = ?`, run.job_id);
    // A client job queued behind the canary starts now, as behind any job (placement.release).
    if (tab.jobId === run.job_id) await placement.release(tab, msg.state ?? "idle");
    // A tab's error says nothing about its model; an abort neither. Only answers are judged.
    if (msg.type === "job.error" || msg.finishReason === "abort") return;
    // A contested prompt's answer judges no one and none is learned for it (canary-contests.ts);
    // a canary of it sent before the contest ends here.
    if (this.contests.isContested(run.model, run.prompt_index)) return;
    const known = sql
      .exec<KnownRow>(
        `SELECT node_id, answer, confirmed_with FROM canary_answers
         WHERE model = ? AND prompt_index = ? AND confirmed = 1`,
        run.model,
        run.prompt_index,
      )
      .toArray()[0];
    if (known) {
      await this.againstKnown(run, tab.publicId, known);
      return;
    }
    // Not known yet. Only an identity out of probation may help set it (its answer is judged like
    // any other once the answer is known).
    if (!this.mayConfirm(run.node_id)) return;
    // Does another such identity's candidate agree? Then it is the known answer.
    const agreeing = this.othersAnswers(run)
      .filter((cand) => this.mayConfirm(cand.node_id))
      .find((cand) => this.same(run.text, cand.answer));
    if (this.keep(run, agreeing?.node_id ?? null) && agreeing)
      log("info", "canary answer confirmed", { model: run.model, prompt: run.prompt_index });
  }

  /**
   * A canary of a prompt whose answer is known. It is judged against it — unless it is a
   * confirmer's answer that fails it and agrees with another confirmer's kept dissent:
   * then the prompt is contested and this answer, which makes the contest, is not judged. A
   * confirmer's dissent is kept (besides being judged), so a second one can find it: before, it was
   * only judged, and a wrong answer confirmed first stayed known for good.
   */
  private async againstKnown(run: RunRow, publicId: string, known: KnownRow): Promise<void> {
    const dissent =
      this.mayConfirm(run.node_id) &&
      // The known answer's own confirmers are judged, their rows kept as they are.
      run.node_id !== known.node_id &&
      run.node_id !== known.confirmed_with &&
      !this.passes(run.text, known.answer);
    if (dissent) {
      const partner = this.othersAnswers(run).find(
        (cand) =>
          // Not the first confirmer: canaryAgreement is one-way, so its answer may measure as
          // differing from the one it confirmed (a shorter one, say).
          cand.node_id !== known.confirmed_with &&
          this.mayDispute(cand.node_id) &&
          !this.passes(cand.answer, known.answer) &&
          this.same(run.text, cand.answer),
      );
      if (partner) {
        this.contests.contest(run.model, run.prompt_index);
        this.keep(run, null);
        return;
      }
      this.keep(run, null);
    }
    await this.d.reputation.record(
      run.node_id,
      publicId,
      canaryEvidence(run.text, known.answer, this.d.reputation.settings.config),
      // Binding: judged by the coordinator against an answer two trusted identities confirmed.
      { what: "canary", verifier: null, binding: true },
    );
  }

  /** The same answer, for confirming or disputing one: a near-whole common word prefix. */
  /**
   * Would `claimed` pass a canary whose known answer is `known` (canaryEvidence's measure)? Only an
   * answer that fails it disputes the known one: honest GPUs drift after a near-tie, and two tabs
   * of one class drift alike, so "not the same answer" would let ordinary drift contest prompts
   * for good (review, 2026-12-01).
   */
  private passes(claimed: string, known: string): boolean {
    return canaryPasses(claimed, known, this.d.reputation.settings.config);
  }

  private same(claimed: string, other: string): boolean {
    const c = this.d.reputation.settings.config;
    return canaryAgreement(claimed, other, c.canaryMaxTokens) >= SAME_ANSWER;
  }

  /** The answers other identities keep for the run's (model, prompt). */
  private othersAnswers(run: RunRow): Array<{ node_id: string; answer: string }> {
    return this.d.sql
      .exec<{ node_id: string; answer: string }>(
        `SELECT node_id, answer FROM canary_answers WHERE model = ? AND prompt_index = ? AND node_id != ?`,
        run.model,
        run.prompt_index,
        run.node_id,
      )
      .toArray();
  }

  /**
   * Keep the run's answer as its identity's: confirmed when `confirmedWith` agreed with it. False
   * when the prompt's answers are full (canary-answer-room.ts): then it confirms nothing.
   */
  private keep(run: RunRow, confirmedWith: string | null): boolean {
    const { sql } = this.d;
    if (
      !roomForAnswer(sql, run.model, run.prompt_index, run.node_id, (id) => this.mayDispute(id))
    ) {
      log("warn", "canary answer not kept (the prompt's answers are full)", {
        model: run.model,
        prompt: run.prompt_index,
      });
      return false;
    }
    sql.exec(
      `INSERT OR REPLACE INTO canary_answers (model, prompt_index, node_id, answer, confirmed, confirmed_with)
       VALUES (?, ?, ?, ?, ?, ?)`,
      run.model,
      run.prompt_index,
      run.node_id,
      run.text,
      confirmedWith ? 1 : 0,
      confirmedWith,
    );
    return true;
  }
}
