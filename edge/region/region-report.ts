import { log } from "../http/log.js";
import type { JobStore } from "./job-store.js";
import type { RegionTimer } from "./region-timers.js";
import { summarise, type RegionSummary } from "./region-views.js";
import type { RegionOffers } from "../../shared/scheduling/spillover.js";
import type { TabRecord, TabRegistry } from "./tab-registry.js";
import type { TabTrust } from "./tab-trust.js";
import type { TimerTable } from "./timer-table.js";
import { TokenBucket } from "./frame-budget.js";

const REPORT: RegionTimer = { kind: "report" };
/** Batch for idle/busy flips that change nothing routing reads. */
const FLIP_BATCH_MS = 1000;
/**
 * Reports one Region object sends at once for what its connected tabs change at will — a model
 * list in a `status` frame, the last idle tab for a model taken or freed — as a token bucket:
 * REPORT_BURST in a row, then one per MIN_REPORT_GAP_MS; a change past it rides on the `report`
 * timer's report. Without it one tab alternating its model list wrote the one global Directory
 * once per frame (150 writes for 150 frames, directory-report-churn.test.ts). The burst keeps the
 * few changes in a row an ordinary job makes reported at once, as before; past it, 4 writes a
 * second per object, so the Directory (one object, ~1,000 writes a second) takes a few hundred
 * shards, and a change waits at most a quarter of the second the Worker's routing view may
 * already be behind (directory-client.ts ROUTING_CACHE_MS).
 *
 * A tab joining or leaving (and a quarantine or release) is reported at once outside this budget
 * (`membership`): GET /v1/nodes asks only the Region objects the Directory counts tabs in, so a
 * join reported late would hide the tab. A tab cannot repeat that at will: an address opens at
 * most TAB_CONNECTS_PER_MIN sockets a minute per region (tab-connects.ts), each with a hello the
 * Region verifies, which costs the Region more than the report costs the Directory.
 */
export const MIN_REPORT_GAP_MS = 250;
export const REPORT_BURST = 4;

/**
 * This region's capacity as the Directory sees it (models, idle tabs, queue). Membership changes
 * are reported at once; idle/busy flips are batched to at most one report a second (timer
 * `report`), because every finished job flips a tab twice — except a flip that changes which
 * models have an idle tab here: routing between a hint's shards (region-client/shard-routing.ts)
 * sends a request to a shard that reports an idle tab for its model, so the shard that just lost
 * its last idle tab for a model (or gained its first) says so at once, within the report budget
 * above (past it, on the `report` timer, with every other change made meanwhile).
 */
export class RegionReport {
  /** Models with an idle tab at the last report sent (null: none sent yet). */
  private idleModels: string | null = null;
  /** The models the last report sent listed (`summarise` leaves made-up names past a cap out). */
  private reported: ReadonlySet<string> = new Set();
  /** The time reports are spaced by (a test moves it forward). */
  clock: () => number = Date.now;
  /**
   * Reports that may go at once (MIN_REPORT_GAP_MS; the bucket says when the next may), and when
   * the `report` timer this object set is due (null: none). Memory only: after eviction the bucket is
   * full, which a tab cannot repeat at will (it must keep the object awake to send frames).
   */
  private readonly reports = new TokenBucket(1000 / MIN_REPORT_GAP_MS, REPORT_BURST, this.clock());
  private dueAt: number | null = null;

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

  /**
   * Report now if `now` (a change routing must see) or the models with an idle tab changed, and
   * the report budget allows; else when it next does (the bucket's `readyAt`, at most
   * MIN_REPORT_GAP_MS after the last token was taken); anything else within FLIP_BATCH_MS. The timer's report
   * (region-alarms.ts) comes back here with `now`.
   */
  async soon(now: boolean): Promise<void> {
    const at = this.clock();
    const urgent = now || (this.idleModels !== null && this.idleModelsNow() !== this.idleModels);
    if (urgent && this.reports.take(at)) {
      await this.sendNow();
    } else if (urgent) {
      await this.due(this.reports.readyAt(at));
    } else if (this.dueAt === null && !this.timers.has(REPORT)) {
      await this.due(at + FLIP_BATCH_MS);
    }
  }

  /**
   * The `report` timer fired (region-alarms.ts): it is no longer due, whatever happens next — if
   * the budget has no token yet (its refill can land a hair short of one at the due instant), the
   * report is set for later again. Left set, `dueAt` kept every later change from setting a timer.
   */
  fired(): Promise<void> {
    this.dueAt = null;
    return this.soon(true);
  }

  /** A tab joined or left, or was quarantined or released: reported at once (see above why). */
  membership(): Promise<void> {
    return this.sendNow();
  }

  private async sendNow(): Promise<void> {
    this.dueAt = null;
    const summary = this.summary();
    this.idleModels = idleModelsOf(summary);
    this.reported = new Set(Object.keys(summary.models));
    await this.timers.clear(REPORT);
    await this.send(summary).catch((e: unknown) =>
      log("warn", "directory report failed", { error: String(e) }),
    );
  }

  /** Have the `report` timer send a report at `at` (or sooner, if it is already due sooner). */
  private async due(at: number): Promise<void> {
    if (this.dueAt !== null && this.dueAt <= at) return;
    this.dueAt = at;
    await this.timers.set(REPORT, at);
  }
}

function idleModelsOf(summary: RegionSummary): string {
  return Object.entries(summary.models)
    .filter(([, m]) => m.idle > 0)
    .map(([model]) => model)
    .sort()
    .join("\n");
}
