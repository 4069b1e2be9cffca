import type { WindowView } from "./status-types.js";

/**
 * A region's hedged first tokens in one window, as the regions table shows them: how many jobs
 * were also started on a second tab, how many of those races the second tab won, and the time the
 * losing tabs worked before they were cancelled — what hedging cost contributors (docs/status.md).
 */
export function hedgedText(w: Pick<WindowView, "hedged" | "hedge_won" | "hedge_loser_ms">): string {
  // A coordinator from before hedges were counted reports no such fields.
  const hedged = w.hedged ?? 0;
  if (hedged === 0) return "none";
  const lost = (w.hedge_loser_ms ?? 0) / 1000;
  const seconds = lost < 10 ? lost.toFixed(1) : String(Math.round(lost));
  return `${hedged} (${w.hedge_won ?? 0} won by the second tab; ${seconds} s on losing tabs)`;
}
