import { log } from "../http/log.js";

/**
 * Alert settings (docs/status.md: Alerts). The webhook's address and signing secret are operator
 * secrets (`wrangler secret put ALERT_WEBHOOK_URL` / `ALERT_WEBHOOK_SECRET`); the thresholds are
 * `[vars]`. Without both secrets alerts are off and the Directory arms no alarm.
 */
export interface AlertConfig {
  url: string;
  secret: string;
  /** A model that was served (or is in `watchModels`) with no serving tab this long: alert. */
  noTabMs: number;
  /** Models watched from the start even if no tab has served them yet. */
  watchModels: string[];
  /** p95 time to first token over a region's last 5 minutes above this: alert. */
  ttftP95Ms: number;
  /** ... with at least this many first tokens in the window (fewer say nothing). */
  ttftMinSamples: number;
  /** Audit failure rate over the last `auditWindowMs` at or above this (and at least twice the
   * rate before the window): alert. */
  auditFailRate: number;
  auditMinAudits: number;
  auditWindowMs: number;
  /** How often the Directory checks (its alarm). */
  checkMs: number;
  /** Longest one webhook call may take. */
  timeoutMs: number;
}

export interface AlertEnv {
  ALERT_WEBHOOK_URL?: string;
  ALERT_WEBHOOK_SECRET?: string;
  ALERT_NO_TAB_MINUTES?: string;
  ALERT_MODELS?: string;
  ALERT_TTFT_P95_MS?: string;
  ALERT_TTFT_MIN_SAMPLES?: string;
  ALERT_AUDIT_FAIL_RATE?: string;
  ALERT_AUDIT_MIN?: string;
  ALERT_AUDIT_WINDOW_MINUTES?: string;
  ALERT_CHECK_SECONDS?: string;
}

export const ALERT_DEFAULTS = {
  noTabMinutes: 5,
  ttftP95Ms: 5000,
  ttftMinSamples: 5,
  auditFailRate: 0.2,
  auditMinAudits: 5,
  auditWindowMinutes: 15,
  checkSeconds: 30,
  timeoutMs: 5000,
} as const;

/** A secret shorter than this is refused (alerts stay off): an HMAC key must not be guessable. */
const MIN_SECRET_LENGTH = 16;

function num(value: string | undefined, fallback: number, min: number, max: number): number {
  const n = value === undefined || value.trim() === "" ? NaN : Number(value);
  return Number.isFinite(n) ? Math.min(max, Math.max(min, n)) : fallback;
}

/** The alert settings, or null when alerts are off (no or invalid webhook secrets). */
export function alertConfig(env: AlertEnv): AlertConfig | null {
  const url = env.ALERT_WEBHOOK_URL?.trim();
  const secret = env.ALERT_WEBHOOK_SECRET ?? "";
  if (!url) return null;
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    log("warn", "ALERT_WEBHOOK_URL is not a URL: alerts are off");
    return null;
  }
  if (parsed.protocol !== "https:" && parsed.protocol !== "http:") {
    log("warn", "ALERT_WEBHOOK_URL must be http(s): alerts are off");
    return null;
  }
  if (secret.length < MIN_SECRET_LENGTH) {
    log(
      "warn",
      `ALERT_WEBHOOK_SECRET must have at least ${MIN_SECRET_LENGTH} characters: alerts are off`,
    );
    return null;
  }
  const d = ALERT_DEFAULTS;
  return {
    url: parsed.toString(),
    secret,
    noTabMs: num(env.ALERT_NO_TAB_MINUTES, d.noTabMinutes, 0, 7 * 24 * 60) * 60_000,
    watchModels: (env.ALERT_MODELS ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter((m) => m.length > 0 && m.length <= 200)
      .slice(0, 50),
    ttftP95Ms: num(env.ALERT_TTFT_P95_MS, d.ttftP95Ms, 1, 3_600_000),
    ttftMinSamples: num(env.ALERT_TTFT_MIN_SAMPLES, d.ttftMinSamples, 1, 1_000_000),
    auditFailRate: num(env.ALERT_AUDIT_FAIL_RATE, d.auditFailRate, 0, 1),
    auditMinAudits: num(env.ALERT_AUDIT_MIN, d.auditMinAudits, 1, 1_000_000),
    auditWindowMs: num(env.ALERT_AUDIT_WINDOW_MINUTES, d.auditWindowMinutes, 1, 24 * 60) * 60_000,
    checkMs: num(env.ALERT_CHECK_SECONDS, d.checkSeconds, 5, 3600) * 1000,
    timeoutMs: d.timeoutMs,
  };
}
