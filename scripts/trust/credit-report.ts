import type { TrustRunResult } from "./trust-run.js";
import type { TrustTab } from "./trust-tab.js";

/**
 * The part of bench:trust's report about credit and the two liars whose text is right but whose
 * figures are not (the count liar, the logprob liar), read only from what the coordinator told
 * each tab — `job.credit` per job, the last `credit.balance` (the ledger's account) and the last
 * `trust` notice — never from what the bench knows the tab did.
 */

export interface CreditFigures {
  tabs: number;
  /** Sum of `job.credit`: what the coordinator credited the tabs for their jobs. */
  claimed: number;
  /** The same jobs' credit at the true token count (credit is tokens × weight × share). */
  worth: number;
  /** `takenBack` of each tab's last balance: credit taken back for counts confirmed inflated. */
  takenBack: number;
  /** `withheld` of each tab's last balance (credited while quarantined). */
  withheld: number;
  /** Audits of their answers, passed and failed, from each tab's last trust notice. */
  auditsPassed: number;
  auditsFailed: number;
  /** Client answers they made (canaries not counted). */
  answers: number;
  /** Client answers that asked for logprobs, whole run and after the first stretch. */
  logprobAnswers: number;
  logprobAnswersAfter: number;
  /** The latest take-back's reason in words (the last one seen of these tabs). */
  lastTakeBack: string | null;
}

export function creditFigures(
  r: TrustRunResult,
  pick: (t: TrustTab) => boolean,
  stretchMs: number,
): CreditFigures {
  const f: CreditFigures = {
    tabs: 0,
    claimed: 0,
    worth: 0,
    takenBack: 0,
    withheld: 0,
    auditsPassed: 0,
    auditsFailed: 0,
    answers: 0,
    logprobAnswers: 0,
    logprobAnswersAfter: 0,
    lastTakeBack: null,
  };
  for (const t of r.tabs.filter(pick)) {
    f.tabs++;
    for (const [jobId, credit] of t.out.credits) {
      f.claimed += credit;
      const job = t.out.finished.get(jobId);
      // A job credited that this tab did not finish (cancelled, then credited for its share) is
      // valued as credited: the bench has no count of its own for it.
      f.worth += job && job.reported > 0 ? (credit * job.tokens) / job.reported : credit;
    }
    for (const job of t.out.finished.values()) {
      if (job.canary) continue;
      f.answers++;
      if (!job.logprobs) continue;
      f.logprobAnswers++;
      if (job.at - r.t0 >= stretchMs) f.logprobAnswersAfter++;
    }
    const b = t.out.balance;
    f.takenBack += b?.takenBack ?? 0;
    f.withheld += b?.withheld ?? 0;
    if (b?.lastTakeBack) f.lastTakeBack = b.lastTakeBack;
    f.auditsPassed += t.out.trust?.audits.passed ?? 0;
    f.auditsFailed += t.out.trust?.audits.failed ?? 0;
  }
  return f;
}

const n = (x: number) => (Number.isInteger(x) ? String(x) : x.toFixed(1));

/** Rows for the count liar, the logprob liar and the honest tabs, one cell per run. */
export function creditRows(
  runs: Array<TrustRunResult | null>,
  stretchMs: number,
  stretchMin: number,
): string[][] {
  const cells = (pick: (t: TrustTab) => boolean, fmt: (f: CreditFigures) => string) =>
    runs.map((r) => (r ? fmt(creditFigures(r, pick, stretchMs)) : "not run"));
  const count = (t: TrustTab) => t.kind === "count-inflate";
  const logprob = (t: TrustTab) => t.kind === "logprob-lie";
  const honest = (t: TrustTab) => t.kind === "honest";
  return [
    [
      "count liar: credit claimed (sum of job.credit)",
      ...cells(
        count,
        (f) => `${n(f.claimed)} for ${f.answers} answers (${f.tabs} tab${f.tabs === 1 ? "" : "s"})`,
      ),
    ],
    [
      "count liar: what it was worth (credit at the true count)",
      ...cells(count, (f) => n(f.worth)),
    ],
    [
      "count liar: taken back (credit.balance takenBack)",
      ...cells(
        count,
        (f) =>
          `${n(f.takenBack)} (${f.claimed > f.worth ? ((100 * f.takenBack) / (f.claimed - f.worth)).toFixed(0) : "—"}% of the over-claim)`,
      ),
    ],
    [
      "count liar: kept (claimed − taken back; of it withheld)",
      ...cells(count, (f) => `${n(f.claimed - f.takenBack)} (${n(f.withheld)})`),
    ],
    [
      "count liar: audits of its answers passed / failed",
      ...cells(count, (f) => `${f.auditsPassed} / ${f.auditsFailed}`),
    ],
    [
      "logprob liar: client answers with made-up logprobs, whole run / after minute " + stretchMin,
      ...cells(
        logprob,
        (f) => `${f.logprobAnswers} / ${f.logprobAnswersAfter} (of ${f.answers} answers)`,
      ),
    ],
    [
      "logprob liar: audits of its answers passed / failed",
      ...cells(logprob, (f) => `${f.auditsPassed} / ${f.auditsFailed}`),
    ],
    [
      "honest tabs: credit claimed / taken back",
      ...cells(honest, (f) => `${n(f.claimed)} / ${n(f.takenBack)}`),
    ],
    [
      "honest tabs: audits of their answers passed / failed",
      ...cells(honest, (f) => `${f.auditsPassed} / ${f.auditsFailed}`),
    ],
  ];
}

/** The count liar's latest take-back reason, in the coordinator's words, if there was one. */
export function takeBackReason(r: TrustRunResult | null): string | null {
  if (!r) return null;
  return creditFigures(r, (t) => t.kind === "count-inflate", 0).lastTakeBack;
}
