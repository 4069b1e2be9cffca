import { QUARANTINE_EXPLANATIONS, quarantineCause } from "../../shared/trust/quarantine-causes.js";
import type { TrustStanding } from "../runtime/tab-status.js";

/**
 * The tab's trust state in plain words for the contributor page (docs/trust.md): where it stands
 * (on probation, trusted, quarantined), what has been checked, and — when quarantined — since when
 * and why, with what it means for the contributor. The coordinator's own reason is kept as the
 * detail, word for word.
 */
export interface TrustWords {
  /** "On probation", "Trusted", "Quarantined". */
  label: string;
  summary: string;
  /** The coordinator's reason, when quarantined. */
  detail: string | null;
}

function auditWords(a: TrustStanding["audits"]): string {
  const n = a.passed + a.failed;
  if (n === 0) return "no answer of this tab has been re-checked yet";
  const checks = n === 1 ? "1 answer" : `${n} answers`;
  return `${checks} re-checked by other tabs: ${a.passed} passed, ${a.failed} failed`;
}

/** "29 Nov 2026, 18:52 UTC (12 minutes ago)": the same on every machine, relative to `now`. */
export function whenWords(at: number, now: number): string {
  const d = new Date(at);
  const months = "Jan Feb Mar Apr May Jun Jul Aug Sep Oct Nov Dec".split(" ");
  const hh = String(d.getUTCHours()).padStart(2, "0");
  const mm = String(d.getUTCMinutes()).padStart(2, "0");
  const abs = `${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()}, ${hh}:${mm} UTC`;
  const minutes = Math.max(0, Math.round((now - at) / 60_000));
  const ago =
    minutes < 1
      ? "just now"
      : minutes < 120
        ? `${minutes} minute${minutes === 1 ? "" : "s"} ago`
        : `${Math.round(minutes / 60)} hours ago`;
  return `${abs} (${ago})`;
}

export function trustWords(t: TrustStanding | null, now = Date.now()): TrustWords | null {
  if (!t) return null;
  switch (t.state) {
    case "probation":
      return {
        label: "On probation",
        summary:
          `New tabs get a limited share of requests and are checked more often until they have ` +
          `finished ${t.probationJobs} jobs with few errors: ${Math.min(t.jobs, t.probationJobs)} ` +
          `of ${t.probationJobs} done; ${auditWords(t.audits)}.`,
        detail: null,
      };
    case "trusted":
      return {
        label: "Trusted",
        summary: `This tab gets its full share of requests; ${auditWords(t.audits)}.`,
        detail: null,
      };
    case "quarantined": {
      const reason = t.reason ?? "";
      const since =
        t.quarantinedAt !== undefined ? ` since ${whenWords(t.quarantinedAt, now)}` : "";
      return {
        label: "Quarantined",
        summary:
          `This tab has been quarantined${since} because ` +
          `${QUARANTINE_EXPLANATIONS[quarantineCause(reason)]}. It gets no client requests and ` +
          `earns no credit until an operator lifts the quarantine; reloading the page does not ` +
          `lift it (it belongs to this browser's identity).`,
        detail: reason ? `The network's reason: ${reason}.` : null,
      };
    }
  }
}
