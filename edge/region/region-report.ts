import { log } from "../http/log.js";
import type { JobStore } from "./job-store.js";
import type { RegionTimer } from "./region-timers.js";
import { summarise, type RegionSummary } from "./region-views.js";
import type { RegionOffers } from "../../shared/scheduling/spillover.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";

const REPORT: RegionTimer = { kind: "report" };

/**
 * This region's capacity as the Directory sees it (models, idle tabs, queue). Membership changes
 * are reported at once; idle/busy flips are batched to at most one report a second (timer
 * `report`), because every finished job flips a tab twice — except a flip that changes which
 * models have an idle tab here: routing between a hint's shards (region-client/shard-routing.ts)
 * sends a request to a shard that reports an idle tab for its model, so the shard that just lost
 * its last idle tab for a model (or gained its first) says so at once.
 */
export class RegionReport {
  /** Models with an idle tab at the last report sent (null: none sent yet). */
  private idleModels: string | null = null;
  /** The models the last report sent listed (`summarise` leaves made-up names past a cap out). */
  private reported: ReadonlySet<string> = new Set();

  constructor(
    private readonly tabs: TabRegistry,
    private readonly jobs: JobStore,
    private readonly timers: TimerTable<RegionTimer>,
    /** Sends the summary to the Directory object. */
    private readonly send: (summary: RegionSummary) => Promise<void>,
    private readonly trust: TabTrust,
    /** What a new request could get here (shared/scheduling/spillover.ts), for spillover. */
    private readonly offers?: (serving: TabRecord[], waiting: number) => RegionOffers,
    /** Is a model in the coordinator's catalog (always reported; model-catalog.ts)? */
    private readonly catalog: (model: string) => boolean = () => false,
  ) {}

  /** The Directory's view of this region, now (quarantined tabs are no capacity). */
  summary(): RegionSummary {
    const serving = this.serving();
    const queued = this.jobs.waitingCount();
    const summary = { ...summarise(serving, this.catalog), queued };
    const offers = this.offers?.(serving, queued);
    if (!offers) return summary;
    // Offers only for the models the summary reports (routing reads nothing else).
    const reported = Object.entries(offers).filter(([model]) => model in summary.models);
    return { ...summary, offers: Object.fromEntries(reported) };
  }

  /**
   * What a request would get here with `waiting` jobs ahead of it in the line, as the summary's
   * offers say it (empty without offers): for moving jobs waiting in the line (waiting-moves.ts).
   */
  offersAt(waiting: number): RegionOffers {
    return this.offers?.(this.serving(), waiting) ?? {};
  }

  /** The tabs that count as capacity: quarantined ones do not. */
  private serving(): TabRecord[] {
    return [...this.tabs.all()].filter((t) => this.trust.state(t.tabId) !== "quarantined");
  }

  /**
   * The models with an idle serving tab, as `idleModelsOf(this.summary())` would list them, but
   * without building the summary: a tab's trust (an SQLite read) is looked at only when it is idle
   * and would add a model not yet listed, so a flip costs about one read per model, not one per tab
   * plus the spillover offers. Every tab's status and every job's assign and end ask this. Only
   * the models the last report listed count: a name it left out is not in `idleModels` either.
   */
  private idleModelsNow(): string {
    const models = new Set<string>();
    const counted = (m: string) => models.has(m) || !this.reported.has(m);
    for (const tab of this.tabs.all()) {
      if (tab.state !== "idle" || tab.jobId) continue;
      if (tab.models.every(counted)) continue;
      if (this.trust.state(tab.tabId) === "quarantined") continue;
      for (const m of tab.models) if (!counted(m)) models.add(m);
    }
    return [...models].sort().join("\n");
  }

  async soon(now: boolean): Promise<void> {
    const summary =
      now || (this.idleModels !== null && this.idleModelsNow() !== this.idleModels)
        ? this.summary()
        : null;
    if (summary) {
      await this.timers.clear(REPORT);
      this.idleModels = idleModelsOf(summary);
      this.reported = new Set(Object.keys(summary.models));
      await this.send(summary).catch((e: unknown) =>
        log("warn", "directory report failed", { error: String(e) }),
      );
    } else if (!this.timers.has(REPORT)) {
      await this.timers.set(REPORT, Date.now() + 1000);
    }
  }
}

function idleModelsOf(summary: RegionSummary): string {
  return Object.entries(summary.models)
    .filter(([, m]) => m.idle > 0)
    .map(([model]) => model)
    .sort()
    .join("\n");
}
