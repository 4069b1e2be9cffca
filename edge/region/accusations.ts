import { log } from "../http/log.js";
import type { Evidence } from "../../shared/trust/reputation.js";
import { isInflatedCount } from "../../shared/trust/token-counts.js";
import type { Reputation } from "./reputation.js";
import type { TabRecord } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";

/**
 * A quarantine never rests on one verifier's word (docs/trust.md, "Binding accusations"). A new
 * key pair is free, so any signed identity can be a binding verifier and score an honest tab's
 * answer implausible. An audit result that would decide a quarantine (it binds, and the subject's
 * binding evidence quarantines with it and not without it) is an **accusation**: it is recorded as
 * not binding (the subject is suspect at most) and its audit goes back, carrying it, for a second
 * binding verifier — never the accuser — to re-check the same answer:
 * - the second finds enough wrong to decide the quarantine itself: confirmed; both words bind;
 * - it finds nothing wrong: contradicted; its own word binds, the accuser's is taken back out;
 * - it finds less: neither (shared/trust/binding.ts `confirmationOf` says why).
 * A verifier contradicted more often than confirmed loses its binding word (binding.ts
 * `isDiscredited`), and with it its accusations still held. Canary evidence is not an accusation: the coordinator judges it itself.
 */

/** A held accusation, kept on its audit row (`audits.accusation`, JSON). */
export interface Accusation {
  /** The accusing verifier: its tab id (the identity counted) and public id (logs). */
  verifier: string;
  publicId: string;
  evidence: Partial<Evidence>;
  /** The answer's two counts, when compared: an inflated one's fault waits with the accusation. */
  count?: CountPair;
  /** The subject's operator releases when it was held (Reputation.releasesOf; absent: 0). */
  releases?: number;
}

/** The audited tab's completion-token claim and the verifier's count of the same text. */
export interface CountPair {
  claimed: number;
  counted: number;
}

/**
 * An answer's inflated count, confirmed by a second binding verifier: told once per answer, when
 * its fault is charged, so the ledger takes back what it paid for it (region-credits.ts).
 */
export interface ConfirmedCount {
  jobId: string;
  subject: string;
  subjectPublic: string;
  /** The tab's count, as the coordinator bounded it and credited it. */
  claimed: number;
  /** Each binding verifier's count of the answer that was sent (one or two). */
  counted: number[];
}

/** What of an audit row an accusation needs. */
export interface AccusedAudit {
  id: string;
  subject: string;
  subject_public: string;
  accusation: string | null;
}

/** A verifier's answer to an audit: what it found, and what to call it in the log. */
export interface VerifierWord {
  verifier: TabRecord;
  evidence: Partial<Evidence>;
  count?: CountPair;
  what: string;
}

export class Accusations {
  constructor(
    private readonly reputation: Reputation,
    private readonly trust: TabTrust,
    /** Told of each confirmed inflated count (the credit ledger takes back what it paid). */
    private readonly countConfirmed?: (c: ConfirmedCount) => void,
  ) {}

  /**
   * Record a verifier's answer to an audit. Returns the accusation the audit carries back for a
   * second verifier (this one is not to be asked again), or null when the audit is done.
   */
  async hear(audit: AccusedAudit, word: VerifierWord): Promise<string | null> {
    const { reputation } = this;
    const { verifier, evidence, count, what } = word;
    const binding = reputation.isBinding(verifier.tabId);
    const source = { what, verifier: verifier.publicId, binding };
    const held = audit.accusation ? (JSON.parse(audit.accusation) as Accusation) : null;
    // Held before an operator's release of the subject: its evidence went to `carried` with it.
    const sinceRelease = held && (held.releases ?? 0) === reputation.releasesOf(audit.subject);
    if (held && sinceRelease && reputation.isBinding(held.verifier))
      return this.settle(audit, held, word, binding);
    // An accuser that lost its binding word since (discredited, or suspect by its own answers)
    // accuses no more: its evidence is taken back out, as a contradicted one's (else the framed
    // tab stays suspect on a word that no longer counts), and this answer is heard as the first
    // word on the audit. So is one after a release, with nothing to take out.
    if (held) {
      if (sinceRelease)
        await reputation.settle(
          audit.subject,
          audit.subject_public,
          "void",
          held.evidence,
          {},
          {
            what: `void accusation by ${held.publicId}`,
            verifier: held.publicId,
            binding: false,
          },
        );
      log("info", "accusation void", {
        audit: audit.id,
        why: sinceRelease ? "its accuser's word no longer binds" : "the subject was released since",
      });
    }
    if (binding && reputation.wouldQuarantine(audit.subject, evidence)) {
      await reputation.record(audit.subject, audit.subject_public, evidence, {
        ...source,
        binding: false,
        held: true,
      });
      log("warn", "accusation held for a second verifier", {
        audit: audit.id,
        subject: audit.subject_public,
        accuser: verifier.publicId,
      });
      const accusation: Accusation = {
        verifier: verifier.tabId,
        publicId: verifier.publicId,
        evidence,
        ...(count ? { count } : {}),
        releases: reputation.releasesOf(audit.subject),
      };
      return JSON.stringify(accusation);
    }
    // An inflated count on one verifier's word is evidence, never a fault: faults cost a tab its
    // trust (probation), and a framer's low counts would charge honest tabs one per audit.
    await reputation.record(audit.subject, audit.subject_public, evidence, source);
    return null;
  }

  /**
   * A second verifier's answer to an accused audit. One that is not binding (dispatch sends it
   * none, but it may have become suspect since) settles nothing: its word counts as any
   * non-binding word and the accusation waits for another.
   */
  private async settle(
    audit: AccusedAudit,
    accusation: Accusation,
    word: VerifierWord,
    binding: boolean,
  ): Promise<string | null> {
    const { reputation } = this;
    const { verifier, evidence, count, what } = word;
    const source = { what, verifier: verifier.publicId, binding };
    if (!binding) {
      await reputation.record(audit.subject, audit.subject_public, evidence, source);
      return audit.accusation;
    }
    const outcome = reputation.confirmationOf(audit.subject, evidence);
    const said = {
      audit: audit.id,
      subject: audit.subject_public,
      accuser: accusation.publicId,
      confirmer: verifier.publicId,
    };
    if (outcome === "confirmed") {
      // One answer, one fault: when either binding count found it inflated.
      const inflated = [accusation.count, count].find(
        (c) => c && isInflatedCount(c.claimed, c.counted),
      );
      if (inflated) {
        this.countFault(audit, inflated, accusation.publicId);
        const counts = [accusation.count, count].filter((c): c is CountPair => c !== undefined);
        this.countConfirmed?.({
          jobId: jobOfAudit(audit.id),
          subject: audit.subject,
          subjectPublic: audit.subject_public,
          claimed: inflated.claimed,
          counted: counts.map((c) => c.counted),
        });
      }
      reputation.accused(accusation.verifier, accusation.publicId, "confirmed");
      log("info", "accusation confirmed", said);
      const confirming = { ...source, what: `${what}, confirming ${accusation.publicId}` };
      await reputation.settle(
        audit.subject,
        audit.subject_public,
        "confirmed",
        accusation.evidence,
        evidence,
        confirming,
      );
      return null;
    }
    if (outcome === "contradicted") {
      reputation.accused(accusation.verifier, accusation.publicId, "contradicted");
      log("warn", "accusation contradicted", said);
      // The accusation's evidence goes: the framed tab is judged as if it had not been made.
      await reputation.settle(
        audit.subject,
        audit.subject_public,
        "contradicted",
        accusation.evidence,
        evidence,
        source,
      );
      return null;
    }
    log("info", "accusation not confirmed", said);
    await reputation.record(audit.subject, audit.subject_public, evidence, source);
    return null;
  }

  /**
   * Found out afterwards, as a wrong answer is: a fault of the identity (which may have left: the
   * fault is by identity). Only once a second binding verifier confirmed it: else one identity —
   * a new key pair is free — could charge honest tabs faults, which cost them trust.
   */
  private countFault(audit: AccusedAudit, count: CountPair, by: string): void {
    this.trust.fault(
      { tabId: audit.subject, publicId: audit.subject_public },
      "completion tokens over the verifier's count of the answer",
      { audit: audit.id, claimed: count.claimed, counted: count.counted, by },
    );
  }
}

/** The job an audit is of: audits.ts keeps a sampled job's audit as `aud_<job id>`. */
function jobOfAudit(auditId: string): string {
  return auditId.startsWith("aud_") ? auditId.slice("aud_".length) : auditId;
}

/** An accusation dropped unsent (expired or pushed out of storage): it stays not binding. */
export function lapsed(audit: Pick<AccusedAudit, "id" | "subject_public" | "accusation">): void {
  if (!audit.accusation) return;
  const { publicId } = JSON.parse(audit.accusation) as Accusation;
  log("warn", "accusation lapsed: no second verifier re-checked it", {
    audit: audit.id,
    subject: audit.subject_public,
    accuser: publicId,
  });
}
