import type {
  AdapterInfo,
  Hello,
  HelloGpu,
  NodeState,
} from "../../shared/protocol/node-messages.js";

/** A connected, registered tab as the Region object tracks it. */
export interface NodeRecord {
  nodeId: string;
  /** Shown in public listings instead of nodeId, which a tab uses as its identity. */
  publicId: string;
  ws: WebSocket;
  adapter: AdapterInfo;
  agent: string;
  models: string[];
  state: NodeState;
  /** The job this tab is serving (or finishing after a cancel), if any. */
  jobId: string | null;
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

/** What survives hibernation on the socket itself (kept small: attachments are size-limited). */
export interface SocketAttachment {
  nodeId: string | null;
  /** Client IP, also the socket's tag, for the per-IP connection limit. */
  ip: string;
  /** The challenge sent on this socket, which `hello` must sign to claim an identity. */
  nonce: string;
  lat: number | null;
  lon: number | null;
}

interface NodeRow extends Record<string, SqlStorageValue> {
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
 * hibernation (their attachments name the node) joined with the `nodes` table.
 */
export class NodeRegistry {
  private readonly byId = new Map<string, NodeRecord>();

  constructor(private readonly sql: SqlStorage) {}

  /** Rebuild after the object was evicted; drop rows whose sockets are gone. */
  restore(sockets: WebSocket[], currentJob: (nodeId: string) => string | null): void {
    const live = new Map<string, WebSocket>();
    for (const ws of sockets) {
      const att = ws.deserializeAttachment() as SocketAttachment | null;
      if (att?.nodeId) live.set(att.nodeId, ws);
    }
    for (const row of this.sql.exec<NodeRow>(`SELECT * FROM nodes`)) {
      const ws = live.get(row.node_id);
      if (!ws) {
        this.sql.exec(`DELETE FROM nodes WHERE node_id = ?`, row.node_id);
        continue;
      }
      this.byId.set(row.node_id, {
        nodeId: row.node_id,
        publicId: row.public_id,
        ws,
        adapter: JSON.parse(row.adapter) as AdapterInfo,
        agent: row.agent,
        models: JSON.parse(row.models) as string[],
        state: row.state as NodeState,
        jobId: currentJob(row.node_id),
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
    nodeId: string,
    publicId: string,
    ws: WebSocket,
    loc: { lat: number | null; lon: number | null },
  ): NodeRecord {
    const now = Date.now();
    const previous = this.byId.get(nodeId);
    const node: NodeRecord = {
      nodeId,
      publicId,
      ws,
      adapter: hello.adapter,
      agent: hello.agent,
      models: hello.models,
      state: hello.state,
      jobId: null,
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
    this.byId.set(nodeId, node);
    this.sql.exec(
      `INSERT OR REPLACE INTO nodes
         (node_id, public_id, adapter, agent, models, state, lat, lon, connected_at, last_seen, jobs_served, gpu)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      nodeId,
      publicId,
      JSON.stringify(hello.adapter),
      hello.agent,
      JSON.stringify(hello.models),
      hello.state,
      loc.lat,
      loc.lon,
      now,
      now,
      node.jobsServed,
      hello.gpu ? JSON.stringify(hello.gpu) : null,
    );
    return node;
  }

  get(nodeId: string): NodeRecord | undefined {
    return this.byId.get(nodeId);
  }

  bySocket(ws: WebSocket): NodeRecord | undefined {
    const att = ws.deserializeAttachment() as SocketAttachment | null;
    const node = att?.nodeId ? this.byId.get(att.nodeId) : undefined;
    return node && node.ws === ws ? node : undefined;
  }

  size(): number {
    return this.byId.size;
  }

  all(): IterableIterator<NodeRecord> {
    return this.byId.values();
  }

  /** Add credit earned by a tab (kept in SQLite: survives reconnects of the same identity). */
  addCredit(node: NodeRecord, credit: number): void {
    this.sql.exec(`UPDATE nodes SET credits = credits + ? WHERE node_id = ?`, credit, node.nodeId);
  }

  update(node: NodeRecord, patch: Partial<Pick<NodeRecord, "state" | "models" | "jobId">>): void {
    Object.assign(node, patch);
    node.lastSeen = Date.now();
    this.sql.exec(
      `UPDATE nodes SET state = ?, models = ?, last_seen = ?, jobs_served = ? WHERE node_id = ?`,
      node.state,
      JSON.stringify(node.models),
      node.lastSeen,
      node.jobsServed,
      node.nodeId,
    );
  }

  remove(nodeId: string): void {
    this.byId.delete(nodeId);
    this.sql.exec(`DELETE FROM nodes WHERE node_id = ?`, nodeId);
  }

  /** Whether any connected tab (busy or not) has the model loaded. */
  anyServes(model: string): boolean {
    for (const node of this.byId.values()) if (node.models.includes(model)) return true;
    return false;
  }
}
