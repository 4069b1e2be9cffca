/**
 * What the widget remembers per site, in the host page's localStorage: "yes" opens the contributor
 * frame on the next visit without showing the offer first; "no" keeps the widget collapsed.
 * Withdrawing stores "no". This is not the consent itself — the host page could write it — only a
 * hint: the frame runs only with the consent it stored itself, from a click in its own document
 * (web/frame/consent.ts), and asks again where it has none.
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
