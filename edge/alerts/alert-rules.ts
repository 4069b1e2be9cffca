import type { DirectorySnapshot } from "../directory/directory-do.js";
import type { AlertConfig } from "./alert-config.js";

/**
 * The three alert conditions, evaluated from what the regions last reported to the Directory
 * (never a scan of the Region objects). Pure: the caller keeps the memory (when each model was
 * last served, audit totals over time) and turns conditions into episodes (alert-check.ts).
 */

export type AlertKind = "model_unserved" | "ttft_p95_high" | "audit_failures";

export interface Condition {
  /** Stable per subject: one episode per key at a time. */
  key: string;
  kind: AlertKind;
  subject: Record<string, string>;
  summary: string;
  details: Record<string, number | string | null>;
}

/** A region silent this long is taken to serve nothing (its tabs heartbeat every few seconds). */
export const STALE_REGION_MS = 2 * 60_000;
const FIVE_MINUTES = 5 * 60_000;

/** Models with at least one serving tab, across regions that reported recently. */
export function servedModels(snapshot: DirectorySnapshot, now: number): Set<string> {
  const out = new Set<string>();
  for (const s of Object.values(snapshot)) {
    if (now - s.updatedAt > STALE_REGION_MS) continue;
    for (const [model, m] of Object.entries(s.models)) if (m.nodes > 0) out.add(model);
  }
  return out;
}

/** Models that were served (or are watched) and have had no serving tab for `noTabMs`. */
export function unservedModels(
  lastServed: Map<string, number>,
  served: Set<string>,
  config: AlertConfig,
  now: number,
): Condition[] {
  const out: Condition[] = [];
  for (const [model, at] of lastServed) {
    if (served.has(model) || now - at < config.noTabMs) continue;
    const minutes = Math.round((now - at) / 60_000);
    out.push({
      key: `model_unserved:${model}`,
      kind: "model_unserved",
      subject: { model },
      summary: `No tab serves ${model} (none for ${minutes} min).`,
      details: {
        last_served_at: new Date(at).toISOString(),
        threshold_minutes: config.noTabMs / 60_000,
      },
    });
  }
  return out;
}

/** Regions whose p95 time to first token over the last 5 minutes is above the threshold. */
export function slowRegions(
  snapshot: DirectorySnapshot,
  config: AlertConfig,
  now: number,
): Condition[] {
  const out: Condition[] = [];
  for (const [region, s] of Object.entries(snapshot)) {
    const stats = s.status?.stats;
    // A 5-minute window reported more than 5 minutes ago says nothing about now.
    if (!stats || now - s.updatedAt > FIVE_MINUTES) continue;
    const w = stats.windows["5m"];
    const samples = w.ttft.reduce((n, x) => n + x, 0);
    if (!w.ttftMs || samples < config.ttftMinSamples || w.ttftMs.p95 <= config.ttftP95Ms) continue;
    out.push({
      key: `ttft_p95_high:${region}`,
      kind: "ttft_p95_high",
      subject: { region },
      summary: `p95 time to first token in ${region} is ${w.ttftMs.p95} ms over the last 5 minutes (threshold ${config.ttftP95Ms} ms).`,
      details: {
        p95_ms: w.ttftMs.p95,
        p50_ms: w.ttftMs.p50,
        samples,
        threshold_ms: config.ttftP95Ms,
      },
    });
  }
  return out;
}

/** Audits judged so far across the regions that run verification (totals only grow). */
export function auditTotals(snapshot: DirectorySnapshot): { audits: number; failed: number } {
  let audits = 0;
  let failed = 0;
  for (const s of Object.values(snapshot)) {
    const t = s.status?.trust;
    if (!t) continue;
    audits += t.audits.passed + t.audits.failed;
    failed += t.audits.failed;
  }
  return { audits, failed };
}

export interface AuditSample {
  at: number;
  audits: number;
  failed: number;
}

/**
 * The audit failure rate jumped: over the last `auditWindowMs` at least `auditMinAudits` audits,
 * failing at `auditFailRate` or more and at twice (or more) the rate before the window. `samples`
 * are the network's totals at earlier checks, oldest first; `now` is the current totals.
 */
export function auditJump(
  samples: AuditSample[],
  current: AuditSample,
  config: AlertConfig,
): Condition | null {
  const start = current.at - config.auditWindowMs;
  // The last sample taken at or before the window began (else the oldest one there is).
  let base: AuditSample | undefined;
  for (const s of samples) if (s.at <= start) base = s;
  base ??= samples[0];
  if (!base) return null;
  const audits = current.audits - base.audits;
  const failed = current.failed - base.failed;
  if (audits < config.auditMinAudits || audits <= 0) return null;
  const rate = failed / audits;
  const before = base.audits > 0 ? base.failed / base.audits : 0;
  if (rate < config.auditFailRate || rate < 2 * before) return null;
  const pct = (x: number) => Math.round(x * 1000) / 10;
  return {
    key: "audit_failures:network",
    kind: "audit_failures",
    subject: { scope: "network" },
    summary: `${failed} of ${audits} answer audits failed in the last ${Math.round((current.at - base.at) / 60_000)} min (${pct(rate)}%; before: ${pct(before)}%).`,
    details: {
      audits,
      failed,
      rate: Math.round(rate * 1000) / 1000,
      rate_before: Math.round(before * 1000) / 1000,
      threshold: config.auditFailRate,
    },
  };
}
