/**
 * The visitor's choice, remembered per site: localStorage of the host page's origin (the frame's
 * own storage is partitioned and cannot be read before consent anyway). "yes" starts contributing
 * on the next visit without asking again; "no" keeps the widget collapsed. Withdrawing stores "no".
 */
const KEY = "tabgrid.embed.consent";
export type Consent = "yes" | "no" | null;

export function readConsent(): Consent {
  try {
    const v = localStorage.getItem(KEY);
    return v === "yes" || v === "no" ? v : null;
  } catch {
    return null;
  }
}

export function writeConsent(value: "yes" | "no"): void {
  try {
    localStorage.setItem(KEY, value);
  } catch {
    // Storage blocked: the choice holds for this page view only.
  }
}
