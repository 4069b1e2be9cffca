import type {
  AdapterInfo,
  Hello,
  HelloGpu,
  NodeState,
} from "../../shared/protocol/node-messages.js";

/**
 * A connected, registered tab as the Region object tracks it. `tabId` is what the protocol calls
 * the tab's `nodeId` (its identity, proven by its key); internal code says "tab" throughout.
 */
export interface TabRecord {
  tabId: string;
  /** Shown in public listings instead of tabId, which a tab uses as its identity. */
  publicId: string;
  ws: WebSocket;
  adapter: AdapterInfo;
  agent: string;
  models: string[];
  state: NodeState;
  /** The job this tab is serving (or finishing after a cancel), if any. */
  jobId: string | null;
  /** The job queued behind it (protocol 5), which the tab starts when `jobId` ends. */
  queuedJobId: string | null;
  /** Protocol version the tab stated in hello. */
  protocol: number;
  lat: number | null;
  lon: number | null;
  connectedAt: number;
  lastSeen: number;
  lastAssignedAt: number;
  jobsServed: number;
  /** GPU class and WGSL benchmark the tab reported (seeds its speeds for matching). */
  gpu: HelloGpu | null;
  /** Measured round trip (EWMA of job.assign → job.accept), once known. */
  rttMs: number | null;
  /** When the current job is expected to finish (for queue estimates). */
  busyUntil: number;
}

/** A tab's jobs: the one it runs and the one queued behind it. */
export type TabJobs = Pick<TabRecord, "jobId" | "queuedJobId">;

/** What survives hibernation on the socket itself (kept small: attachments are size-limited). */
export interface SocketAttachment {
  /** The registered tab's id (named as on the wire; attachments outlive a deploy). */
  nodeId: string | null;
  /** Client IP, also the socket's tag, for the per-IP connection limit. */
  ip: string;
  /** The challenge sent on this socket, which `hello` must sign to claim an identity. */
  nonce: string;
  lat: number | null;
  lon: number | null;
  /** When the upgrade was accepted (the hello deadline counts from it); absent on older sockets. */
  openedAt?: number;
  /** The protocol version the tab's hello stated (which frames it understands); absent before. */
  protocol?: number;
}

interface TabRow extends Record<string, SqlStorageValue> {
  node_id: string;
  public_id: string;
  adapter: string;
  agent: string;
  models: string;
  state: string;
  lat: number | null;
  lon: number | null;
  connected_at: number;
  last_seen: number;
  jobs_served: number;
  gpu: string | null;
}

/**
 * Registry of the tabs connected to one Region object. The in-memory map is a cache: every change
 * is written to SQLite, and after eviction the map is rebuilt from the sockets that survived
 * hibernation (their attachments name the tab) joined with the `nodes` table.
 */
export class TabRegistry {
  private readonly byId = new Map<string, TabRecord>();

  constructor(private readonly sql: SqlStorage) {}

  /** Rebuild after the object was evicted; drop rows whose sockets are gone. */
  restore(sockets: WebSocket[], jobsOf: (tabId: string) => TabJobs): void {
    const live = new Map<string, WebSocket>();
    const protocols = new Map<string, number>();
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as SocketAttachment | null;
      if (att?.nodeId) live.set(att.nodeId, ws);
      if (att?.nodeId) protocols.set(att.nodeId, att.protocol ?? 1);
    }
    for (const row of this.sql.exec<TabRow>(`SELECT * FROM nodes`)) {
      const ws = live.get(row.node_id);
      if (!ws) {
        this.sql.exec(`DELETE FROM nodes WHERE node_id = ?`, row.node_id);
        continue;
      }
      this.byId.set(row.node_id, {
        tabId: row.node_id,
        publicId: row.public_id,
        ws,
        adapter: JSON.parse(row.adapter) as AdapterInfo,
        agent: row.agent,
        models: JSON.parse(row.models) as string[],
        state: row.state as NodeState,
        ...jobsOf(row.node_id),
        protocol: protocols.get(row.node_id) ?? 1,
        lat: row.lat,
        lon: row.lon,
        connectedAt: row.connected_at,
        lastSeen: row.last_seen,
        lastAssignedAt: 0,
        jobsServed: row.jobs_served,
        gpu: row.gpu ? (JSON.parse(row.gpu) as HelloGpu) : null,
        rttMs: null,
        busyUntil: 0,
      });
    }
  }

  register(
    hello: Hello,
    tabId: string,
    publicId: string,
    ws: WebSocket,
    loc: { lat: number | null; lon: number | null },
  ): TabRecord {
    const now = Date.now();
    const previous = this.byId.get(tabId);
    const tab: TabRecord = {
      tabId,
      publicId,
      ws,
      adapter: hello.adapter,
      agent: hello.agent,
      models: hello.models,
      state: hello.state,
      jobId: null,
      queuedJobId: null,
      protocol: hello.protocol,
      lat: loc.lat,
      lon: loc.lon,
      connectedAt: now,
      lastSeen: now,
      lastAssignedAt: 0,
      jobsServed: previous?.jobsServed ?? 0,
      gpu: hello.gpu ?? null,
      rttMs: previous?.rttMs ?? null,
      busyUntil: 0,
    };
    this.byId.set(tabId, tab);
    this.sql.exec(
      `INSERT OR REPLACE INTO nodes
         (node_id, public_id, adapter, agent, models, state, lat, lon, connected_at, last_seen, jobs_served, gpu)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      tabId,
      publicId,
      JSON.stringify(hello.adapter),
      hello.agent,
      JSON.stringify(hello.models),
      hello.state,
      loc.lat,
      loc.lon,
      now,
      now,
      tab.jobsServed,
      hello.gpu ? JSON.stringify(hello.gpu) : null,
    );
    return tab;
  }

  get(tabId: string): TabRecord | undefined {
    return this.byId.get(tabId);
  }

  bySocket(ws: WebSocket): TabRecord | undefined {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    const tab = att?.nodeId ? this.byId.get(att.nodeId) : undefined;
    return tab && tab.ws === ws ? tab : undefined;
  }

  size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<TabRecord> {
    return this.byId.values();
  }

  update(
    tab: TabRecord,
    patch: Partial<Pick<TabRecord, "state" | "models" | "jobId" | "queuedJobId">>,
  ): void {
    Object.assign(tab, patch);
    tab.lastSeen = Date.now();
    this.sql.exec(
      `UPDATE nodes SET state = ?, models = ?, last_seen = ?, jobs_served = ? WHERE node_id = ?`,
      tab.state,
      JSON.stringify(tab.models),
      tab.lastSeen,
      tab.jobsServed,
      tab.tabId,
    );
  }

  remove(tabId: string): void {
    this.byId.delete(tabId);
    this.sql.exec(`DELETE FROM nodes WHERE node_id = ?`, tabId);
  }

  /** Whether any connected tab (busy or not) has the model loaded. */
  anyServes(model: string): boolean {
    for (const tab of this.byId.values()) if (tab.models.includes(model)) return true;
    return false;
  }
}
