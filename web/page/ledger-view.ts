import type { CreditBalance } from "../../shared/protocol/node-messages.js";
import type { Ledger } from "../ledger/ledger.js";
import type { JobEnd } from "../runtime/job-runner.js";
import { h } from "../ui/dom.js";
import type { Dashboard } from "../ui/dashboard.js";

/** The local ledger on the page: what the dashboard shows, the writes after each job, export. */
export async function refreshLedger(ledger: Ledger, dashboard: Dashboard): Promise<void> {
  const [totals, recent, days] = await Promise.all([
    ledger.totals(),
    ledger.recentJobs(),
    ledger.lastDays(30),
  ]);
  dashboard.totals(totals);
  dashboard.recent(recent);
  dashboard.days(days);
}

export interface LedgerWrites {
  job(end: JobEnd): void;
  credit(jobId: string, credit: number): void;
  /** The identity's balance in the coordinator's ledger (docs/credits.md), kept as reported. */
  balance(balance: CreditBalance): void;
}

/** The coordinator's credit for a job arrives after job.done: record it once the job is stored. */
export function ledgerWrites(ledger: Ledger, written: () => Promise<void>): LedgerWrites {
  let last: Promise<unknown> = Promise.resolve();
  return {
    job(end) {
      last = ledger
        .recordJob(end)
        .then(written)
        .catch((err: unknown) => console.warn("ledger: could not record the job", err));
    },
    credit(jobId, credit) {
      last = last
        .then(() => ledger.recordCredit(jobId, credit))
        .then(written)
        .catch((err: unknown) => console.warn("ledger: could not record the credit", err));
    },
    balance(balance) {
      last = last
        .then(() => ledger.recordBalance(balance))
        .then(written)
        .catch((err: unknown) => console.warn("ledger: could not record the balance", err));
    },
  };
}

export async function exportLedger(ledger: Ledger): Promise<void> {
  const json = await ledger.exportJson();
  const url = URL.createObjectURL(new Blob([json], { type: "application/json" }));
  const a = h("a", {
    href: url,
    download: `tabgrid-ledger-${new Date().toISOString().slice(0, 10)}.json`,
  });
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
