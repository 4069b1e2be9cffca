import { log } from "../http/log.js";
import type { JobStore } from "./job-store.js";
import type { RegionTimer } from "./region-timers.js";
import { summarise, type RegionSummary } from "./region-views.js";
import type { TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";

const REPORT: RegionTimer = { kind: "report" };

/**
 * This region's capacity as the Directory sees it (models, idle tabs, queue). Membership changes
 * are reported at once; idle/busy flips are batched to at most one report a second (timer
 * `report`), because every finished job flips a tab twice.
 */
export class RegionReport {
  constructor(
    private readonly tabs: TabRegistry,
    private readonly jobs: JobStore,
    private readonly timers: TimerTable<RegionTimer>,
    /** Sends the summary to the Directory object. */
    private readonly send: (summary: RegionSummary) => Promise<void>,
    private readonly trust: TabTrust,
  ) {}

  /** The Directory's view of this region, now (quarantined tabs are no capacity). */
  summary(): RegionSummary {
    const serving = [...this.tabs.all()].filter((t) => this.trust.state(t.tabId) !== "quarantined");
    return { ...summarise(serving), queued: this.jobs.waitingCount() };
  }

  async soon(now: boolean): Promise<void> {
    if (now) {
      await this.timers.clear(REPORT);
      await this.send(this.summary()).catch((e: unknown) =>
        log("warn", "directory report failed", { error: String(e) }),
      );
    } else if (!this.timers.has(REPORT)) {
      await this.timers.set(REPORT, Date.now() + 1000);
    }
  }
}
