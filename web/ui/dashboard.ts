import type { DayRow, JobRow } from "../ledger/ledger-db.js";
import type { Totals } from "../ledger/ledger.js";
import { dailyBars, sparkline, type Chart } from "./charts.js";
import { fill, h } from "./dom.js";

/**
 * What this tab has given: the state in plain words, jobs and tokens today and in total (credit as
 * the coordinator reports it, "—" until it does), a live tokens/s sparkline of recent jobs and
 * tokens per day for the last 30 days. Each chart has a text alternative for screen readers.
 */
export interface Dashboard {
  state(words: string): void;
  totals(t: Totals): void;
  recent(jobs: JobRow[]): void;
  days(rows: DayRow[]): void;
}

const fmt = new Intl.NumberFormat();

/**
 * The coordinator's ledger for this identity in words: balance, and what was spent, withheld or
 * taken back — the last with the coordinator's reason (which job, why), the one line of its
 * statement a contributor would otherwise never see.
 */
export function accountWords(a: Totals["account"]): string {
  if (!a) return "—";
  const takenBack = a.takenBack ?? 0;
  const notes = [
    a.spent > 0 ? `${fmt.format(a.spent)} spent by your linked key` : null,
    a.withheld > 0 ? `${fmt.format(a.withheld)} withheld` : null,
    a.quarantined ? "withheld while quarantined" : null,
    takenBack > 0 || a.lastTakeBack
      ? `${fmt.format(takenBack)} taken back${a.lastTakeBack ? ` (latest: ${a.lastTakeBack})` : ""}`
      : null,
  ].filter((n) => n !== null);
  return notes.length ? `${fmt.format(a.balance)} (${notes.join("; ")})` : fmt.format(a.balance);
}

function tile(label: string, key: string): [HTMLElement, HTMLElement] {
  const value = h("dd", { "data-field": key }, "0");
  return [h("div", { class: "tile" }, h("dt", {}, label), value), value];
}

export function renderDashboard(region: HTMLElement, onExport: () => void): Dashboard {
  const stateLine = h("p", {
    id: "state-words",
    "data-field": "state-words",
    "aria-live": "polite",
  });
  const tiles = {
    jobsToday: tile("Jobs today", "jobs-today"),
    tokensToday: tile("Tokens today", "tokens-today"),
    jobsTotal: tile("Jobs in total", "jobs-total"),
    tokensTotal: tile("Tokens in total", "tokens-total"),
    credit: tile("Credit (as reported by the network)", "credit-total"),
    balance: tile("Balance in the network's ledger", "credit-balance"),
  };
  const sparkEl = h("div", { class: "chart", id: "tps-spark", "aria-hidden": "true" });
  const liveText = h("p", { class: "chart-caption", "data-field": "live-tps" }, "No jobs yet.");
  const daysEl = h("div", { class: "chart", id: "days-chart", "aria-hidden": "true" });
  const daysTable = h("table", { class: "visually-hidden", id: "days-table" });
  const exportButton = h("button", { id: "export-ledger", type: "button" }, "Export ledger (JSON)");
  exportButton.addEventListener("click", onExport);
  fill(
    region,
    h("h2", {}, "What this tab has given"),
    stateLine,
    h("dl", { class: "tiles", "aria-label": "Totals" }, ...Object.values(tiles).map((t) => t[0])),
    h(
      "figure",
      {},
      h("figcaption", {}, "Decode speed of recent jobs (tokens/s, measured)"),
      sparkEl,
      liveText,
    ),
    h("figure", {}, h("figcaption", {}, "Tokens served per day, last 30 days"), daysEl, daysTable),
    h(
      "p",
      {},
      exportButton,
      " ",
      h("span", { class: "hint" }, "Your ledger stays in this browser."),
    ),
  );
  let spark: Chart | null = null;
  let bars: Chart | null = null;
  return {
    state(words) {
      stateLine.textContent = words;
    },
    totals(t) {
      tiles.jobsToday[1].textContent = fmt.format(t.today.jobs);
      tiles.tokensToday[1].textContent = fmt.format(t.today.tokens);
      tiles.jobsTotal[1].textContent = fmt.format(t.total.jobs);
      tiles.tokensTotal[1].textContent = fmt.format(t.total.tokens);
      tiles.credit[1].textContent = t.total.credit === null ? "—" : fmt.format(t.total.credit);
      tiles.balance[1].textContent = accountWords(t.account);
    },
    recent(jobs) {
      const points = jobs.filter((j) => j.decodeTokensPerSecond !== null);
      spark ??= sparkline(sparkEl);
      spark.set(
        points.map((_, i) => i),
        points.map((j) => j.decodeTokensPerSecond ?? 0),
      );
      const last = points.at(-1);
      liveText.textContent = last
        ? `Last job: ${last.decodeTokensPerSecond!.toFixed(1)} tokens/s (${last.model}), ${points.length} recent jobs shown.`
        : "No jobs yet.";
    },
    days(rows) {
      bars ??= dailyBars(daysEl);
      bars.set(
        rows.map((_, i) => i),
        rows.map((d) => d.tokens),
      );
      fill(
        daysTable,
        h("caption", {}, "Tokens and jobs per day"),
        h(
          "tr",
          {},
          h("th", { scope: "col" }, "Day"),
          h("th", { scope: "col" }, "Jobs"),
          h("th", { scope: "col" }, "Tokens"),
        ),
        ...rows
          .filter((d) => d.jobs || d.tokens)
          .map((d) => h("tr", {}, h("td", {}, d.day), h("td", {}, d.jobs), h("td", {}, d.tokens))),
      );
    },
  };
}
