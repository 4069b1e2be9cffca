import { log } from "../http/log.js";
import type { RegionSummary } from "./region-views.js";
import type { ShardSettings } from "./shard-config.js";
import { shardFigures, type ShardFigures } from "./shard-figures.js";
import { leafFor, shardHash, type ShardLeaf } from "./shard-map.js";
import { shardName, type Shard } from "./shard-name.js";
import type { SocketAttachment, TabRecord } from "./tab-registry.js";

/** What a shard asks of the Directory object (directory-do.ts). */
export interface ShardDirectory {
  report(name: string, summary: RegionSummary & { shard: ShardFigures }): Promise<void>;
  splitShard(
    hint: string,
    k: number,
    fromDepth: number | null,
    initial: number,
  ): Promise<ShardLeaf[]>;
}

const LEAVES_KEY = "shard:leaves";
const SPLIT_AT_KEY = "shard:splitAt";

/**
 * The Region object's part as one shard of its location hint: it reports its summary with the
 * figures routing between shards reads (shard-figures.ts), splits itself when hot, and after a
 * split moves the tabs that now belong to the new shard.
 *
 * Split trigger: at a report (membership changes at once, idle/busy flips at most once a second),
 * when the shard has `splitStreams` jobs streaming or `splitTabs` tabs connected, it has not
 * split within `cooldownMs`, and its tabs come from more than one address (tabs of one address
 * hash alike, so splitting could not separate them).
 *
 * Moving: a WebSocket cannot be handed from one object to another, so a tab moves by being closed
 * with CloseCode.Moved and reconnecting; the Worker then places it by the new layout. A tab is
 * closed only while it holds no job: an idle one at once, a busy one at the first report that
 * finds it idle, so its running job (and any job queued behind it) finishes here and nothing is
 * lost. Jobs waiting in this shard's queue stay here and are served by the tabs that stay.
 */
export class ShardRole {
  private leaves: ShardLeaf[] | null = null;
  private splitAt = 0;
  /** A split or a move is under way (reports it causes do not start another). */
  private working = false;

  constructor(
    readonly shard: Shard,
    private readonly settings: ShardSettings,
    private readonly storage: DurableObjectStorage,
    private readonly directory: () => ShardDirectory,
    private readonly tabs: () => Iterable<TabRecord>,
    /** Is this tab capacity (not quarantined)? */
    private readonly serving: (tab: TabRecord) => boolean,
    /** Close the tab's socket with CloseCode.Moved and let the job machine see it leave. */
    private readonly move: (tab: TabRecord) => Promise<void>,
    /** The conversation the tab's engine holds (reported for follow-up routing), if known. */
    private readonly holding: (tab: TabRecord) => string | null = () => null,
  ) {}

  /** Load the layout this shard learned at its last split (survives eviction). */
  async load(): Promise<void> {
    this.leaves = (await this.storage.get<ShardLeaf[]>(LEAVES_KEY)) ?? null;
    this.splitAt = (await this.storage.get<number>(SPLIT_AT_KEY)) ?? 0;
  }

  get name(): string {
    return shardName(this.shard);
  }

  figures(): ShardFigures {
    return shardFigures(this.tabs(), this.serving, this.holding);
  }

  /** Send the summary (with this shard's figures) to the Directory; then split or move if due. */
  async report(summary: RegionSummary): Promise<void> {
    const figures = this.figures();
    // Round trips only for the models the summary reports (it leaves made-up names past a cap
    // out: region-views.ts `summarise`), so the row stays bounded and routing reads nothing more.
    const bestRttMs = Object.entries(figures.bestRttMs).filter(([m]) => m in summary.models);
    const shard = { ...figures, bestRttMs: Object.fromEntries(bestRttMs) };
    await this.directory().report(this.name, { ...summary, shard });
    if (this.working) return;
    this.working = true;
    try {
      if (this.hot(figures, Date.now()) && this.addresses() >= 2) await this.split();
      else if (this.leaves) await this.moveTabs();
    } catch (e) {
      log("warn", "shard split or move failed", { shard: this.name, error: String(e) });
    } finally {
      this.working = false;
    }
  }

  hot(figures: ShardFigures, now: number): boolean {
    const { splitStreams, splitTabs, cooldownMs } = this.settings;
    if (now - this.splitAt < cooldownMs) return false;
    return figures.streams >= splitStreams || figures.tabs >= splitTabs;
  }

  /** Distinct addresses among this shard's tabs: one address cannot be split (they hash alike). */
  private addresses(): number {
    const seen = new Set<string>();
    for (const tab of this.tabs()) {
      seen.add((tab.ws.deserializeAttachment() as SocketAttachment | null)?.ip ?? "");
      if (seen.size >= 2) break;
    }
    return seen.size;
  }

  /** Split this shard now (trigger above; operators and tests call it directly). */
  async split(): Promise<ShardLeaf[]> {
    const mine = this.leaves?.find((l) => l.k === this.shard.k);
    const leaves = await this.directory().splitShard(
      this.shard.hint,
      this.shard.k,
      mine ? mine.depth : null,
      this.settings.initialShards,
    );
    this.leaves = leaves;
    this.splitAt = Date.now();
    await this.storage.put({ [LEAVES_KEY]: leaves, [SPLIT_AT_KEY]: this.splitAt });
    log("info", "shard split", { shard: this.name, leaves: leaves.length });
    await this.moveTabs();
    return leaves;
  }

  /** Close the idle tabs that belong to another shard now; returns how many still wait for a job to end. */
  async moveTabs(): Promise<number> {
    const leaves = this.leaves;
    if (!leaves) return 0;
    let waiting = 0;
    for (const tab of [...this.tabs()]) {
      const att = tab.ws.deserializeAttachment() as SocketAttachment | null;
      if (leafFor(leaves, shardHash(att?.ip ?? "")).k === this.shard.k) continue;
      if (tab.jobId || tab.queuedJobId) waiting += 1;
      else await this.move(tab);
    }
    return waiting;
  }
}
