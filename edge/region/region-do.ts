import { DurableObject } from "cloudflare:workers";
import type { AppEnv } from "../env.js";
import { PING_FRAME, PONG_FRAME } from "../../shared/protocol/node-messages.js";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { closeSocket } from "../durable/socket.js";
import { directoryStub } from "../directory/directory-client.js";
import { regionLedger } from "../credits/ledger-client.js";
import { CatalogModels } from "../model-catalog.js";
import type { OpenJobResult, SubscribeResult } from "./job-events.js";
import type { JobRequest } from "./job-request.js";
import { jobView, type JobView } from "./job-view.js";
import { readableJob, type ReadableJob } from "./job-reading.js";
import { TERMINAL_STATES } from "./job-store.js";
import { regionConfig } from "./region-config.js";
import { regionParts, restoreParts, type RegionParts } from "./region-parts.js";
import { trustSettings } from "./reputation.js";
import { listingOf, type RegionSummary, type TabListing } from "./region-views.js";
import type { TabEvent } from "./tab-channel.js";
import { REGION_MIGRATIONS } from "./sql-schema.js";
import type { StorageUsage } from "./storage-budget.js";
import { startUp, type Ready } from "../durable/start-up.js";
import { shardSettings } from "./shard-config.js";
import type { ShardLeaf } from "./shard-map.js";
import { parseShard, shardIdToken } from "./shard-name.js";
import { ShardRole } from "./shard-role.js";
import { continuationPort } from "../region-client/continue-elsewhere.js";
import { slotPort } from "../auth/client-slots.js";
import { BATCH_ACK, decodeBatch } from "../tab-link/link-envelope.js";

/**
 * One Region Durable Object per shard of a location hint (shard-name.ts: `wnam`, `wnam/3`): the tabs connected to it, matching, durable job
 * records, leases and the token relay. Tabs connect with the WebSocket hibernation API so idle tabs
 * cost nothing; pings are answered by auto-response without waking the object. All state that
 * matters is in SQLite or socket attachments, so eviction loses nothing.
 *
 * This class is transport only: each entry point forwards to the part that owns the behaviour
 * (region-parts.ts lists them and the one direction calls flow).
 */
export class RegionDurableObject extends DurableObject<AppEnv> {
  private parts!: RegionParts;
  /** This object as one shard of its hint: reports, splits, moves tabs (shard-role.ts). */
  private shard!: ShardRole;
  private readonly ready: Ready;

  constructor(ctx: DurableObjectState, env: AppEnv) {
    super(ctx, env);
    ctx.setWebSocketAutoResponse(new WebSocketRequestResponsePair(PING_FRAME, PONG_FRAME));
    // State is loaded once before any event is delivered (edge/durable/start-up.ts); a failure
    // is rethrown to the next event, which retries the start-up first.
    this.ready = startUp(ctx, {
      migrations: REGION_MIGRATIONS,
      load: async () => {
        // Region objects are named by their shard (shard-name.ts); test objects with other names
        // act as the default region's shard 0.
        const shard = parseShard(ctx.id.name) ?? { hint: "wnam", k: 0 };
        this.shard = new ShardRole(
          shard,
          shardSettings(env),
          ctx.storage,
          () => directoryStub(env),
          () => this.parts.tabs.all(),
          (tab) => this.parts.trust.state(tab.tabId) !== "quarantined",
          async (tab) => {
            closeSocket(tab.ws, CloseCode.Moved, "region shard split: reconnect");
            await this.forward([{ type: "left", tab, why: "moved to another shard" }]);
          },
          (tab) => this.parts.matcher.holding(tab.tabId),
        );
        await this.shard.load();
        const catalog = new CatalogModels(env);
        this.parts = regionParts(
          ctx,
          regionConfig(env),
          shard.hint,
          (summary) => this.shard.report(summary),
          trustSettings(env as { TRUST?: string; TRUST_CONFIG?: string }),
          regionLedger(env),
          shardIdToken(shard),
          continuationPort(env, shard),
          slotPort(env),
          (model) => catalog.has(model),
          (model) => catalog.contextTokens(model),
        );
        await restoreParts(this.parts, ctx.getWebSockets());
      },
    });
  }

  // ---- contributor sockets -------------------------------------------------------------------

  /** WebSocket upgrade from the Worker, which put the tab's location and IP in headers. */
  override async fetch(request: Request): Promise<Response> {
    await this.ready();
    return this.parts.channel.accept(request);
  }

  /**
   * A tab's frame, or a batch of them from its tab link (edge/tab-link/link-envelope.ts): each frame
   * of a batch is handled in order as if it had come alone, then the batch is acknowledged, which
   * releases the link's next batch. Stateless per message, so a batch is read the same after the
   * object woke from hibernation. A batch that does not parse goes to the channel as one frame,
   * which refuses it as a bad frame.
   */
  override async webSocketMessage(ws: WebSocket, raw: string | ArrayBuffer): Promise<void> {
    const frames = decodeBatch(raw);
    if (frames === null || frames === "malformed") {
      await this.ready();
      await this.forward(await this.parts.channel.receive(ws, raw));
      return;
    }
    try {
      await this.ready();
      for (const frame of frames) await this.forward(await this.parts.channel.receive(ws, frame));
    } finally {
      // Even when handling threw: the link would otherwise hold the tab's frames for good.
      try {
        ws.send(BATCH_ACK);
      } catch {
        // The socket closed (the tab was refused, or left): no link is waiting.
      }
    }
  }

  override async webSocketClose(ws: WebSocket, code: number, reason: string): Promise<void> {
    await this.ready();
    await this.forward(this.parts.channel.closed(ws, code, reason));
  }

  override async webSocketError(ws: WebSocket): Promise<void> {
    await this.ready();
    await this.forward(this.parts.channel.failed(ws));
  }

  /** Due timers run one handler per kind; one that throws is kept and the alarm retried. */
  override async alarm(): Promise<void> {
    await this.ready();
    await this.parts.timers.runDue((timer) => this.parts.onTimer(timer));
  }

  // ---- RPC from the Worker -------------------------------------------------------------------

  /** Mint the job's id, write it, put it on an idle tab (or queue it) and stream its events. */
  async openJob(request: JobRequest, queue: boolean): Promise<OpenJobResult> {
    await this.ready();
    return this.parts.intake.open(request, queue);
  }

  /** Read a job's events from character `after` of its text (resume after a dropped stream). */
  async subscribe(jobId: string, after: number, owner: string | null): Promise<SubscribeResult> {
    await this.ready();
    return this.parts.readers.subscribe(jobId, after, owner);
  }

  /** The Worker stopped reading (client went away, or it re-subscribed on a fresh stream). */
  async release(jobId: string, readerId: string): Promise<void> {
    await this.ready();
    this.parts.readers.release(jobId, readerId);
  }

  /**
   * The vectors of a finished embedding job (base64 float32, in input order), for its owner; null
   * when the job is unknown, not the caller's, or not done.
   */
  async jobVectors(jobId: string, owner: string | null): Promise<string[] | null> {
    await this.ready();
    const row = this.parts.readers.visibleJob(jobId, owner);
    if (row?.state !== "done" || row.kind !== "embedding") return null;
    return this.parts.embeddings.read(jobId);
  }

  async getJob(jobId: string, owner: string | null): Promise<JobView | null> {
    await this.ready();
    const row = this.parts.readers.visibleJob(jobId, owner);
    return row ? jobView(row) : null;
  }

  /**
   * Whether a job still runs (not finished, failed or cancelled; unknown jobs do not): a Client
   * object asks before it reclaims a slot whose release it never got (edge/auth/client-do.ts).
   */
  async jobRunning(jobId: string): Promise<boolean> {
    await this.ready();
    const state = this.parts.jobs.status(jobId)?.state;
    return state !== undefined && !TERMINAL_STATES.has(state);
  }

  /** A job with what the Worker checks before a client may see it (edge/api/jobs.ts). */
  async readJob(jobId: string): Promise<ReadableJob | null> {
    await this.ready();
    const row = this.parts.jobs.get(jobId);
    return row ? readableJob(row) : null;
  }

  /** Cancel a job and stop its tab. Returns the job as it ended, or null if unknown. */
  async cancelJob(jobId: string, reason: string, owner: string | null): Promise<JobView | null> {
    await this.ready();
    if (!this.parts.readers.visibleJob(jobId, owner)) return null;
    await this.parts.machine.cancel(jobId, reason);
    return this.getJob(jobId, owner);
  }

  /**
   * Quarantine a tab (by tab id, identity or public id): no more client jobs, its running job moves,
   * its credit is withheld (tab-trust.ts). For the answer audits and operators.
   */
  async quarantine(tabIdOrIdentity: string, reason: string): Promise<void> {
    await this.ready();
    await this.parts.trust.quarantine(tabIdOrIdentity, reason);
  }

  /** Split this shard now and move the tabs that belong to the new one (operators, tests). */
  async splitShard(): Promise<ShardLeaf[]> {
    await this.ready();
    return this.shard.split();
  }

  async summary(): Promise<RegionSummary> {
    await this.ready();
    return this.parts.report.summary();
  }

  /** The connected tabs (at most `limit`: GET /v1/nodes lists a bounded number). */
  async listTabs(limit = Infinity): Promise<TabListing[]> {
    await this.ready();
    const { trust, reputation } = this.parts;
    return [...this.parts.tabs.all()].slice(0, limit).map((tab) =>
      listingOf(
        tab,
        {
          ...trust.view(tab.tabId),
          audits: reputation.auditCounts(tab.tabId),
          accusations: reputation.view(tab.tabId).accusations,
        },
        trust.credits(tab.tabId),
      ),
    );
  }

  /** Job counts by state, for operators and for tests that check nothing was lost. */
  async jobCounts(): Promise<Record<string, number>> {
    await this.ready();
    return this.parts.jobs.countByState();
  }

  /** This object's storage against its budget (storage-budget.ts), for operators and tests. */
  async storageUsage(): Promise<StorageUsage> {
    await this.ready();
    return this.parts.budget.usage();
  }

  private async forward(events: TabEvent[]): Promise<void> {
    for (const event of events) await this.parts.machine.onTabEvent(event);
  }
}
