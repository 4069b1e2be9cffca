import { SELF } from "cloudflare:test";
import {
  CoordinatorMessageSchema,
  parseFrame,
  type CoordinatorMessage,
} from "../../shared/protocol/node-messages.js";
import { PROTOCOL_VERSION } from "../../shared/protocol/version.js";
import {
  IDENTITY_ALGORITHM,
  SIGNATURE_ALGORITHM,
  challengeText,
  nodeIdFromPublicKey,
  toBase64url,
} from "../../shared/protocol/node-identity.js";
import type { JobSpec, Usage } from "../../shared/protocol/job.js";

/**
 * A contributor tab scripted by a workerd test: it speaks the real protocol over a real WebSocket
 * to the coordinator, and the test decides what it answers. (The browser test runs the real page.)
 */
export class ScriptedTab {
  readonly received: CoordinatorMessage[] = [];
  private waiters: Array<{
    match: (m: CoordinatorMessage) => boolean;
    resolve: (m: CoordinatorMessage) => void;
  }> = [];
  readonly closed: Promise<{ code: number; reason: string }>;
  nodeId = "";

  private constructor(readonly ws: WebSocket) {
    this.closed = new Promise((resolve) =>
      ws.addEventListener("close", (e) => resolve({ code: e.code, reason: e.reason })),
    );
    ws.addEventListener("message", (e) => {
      const parsed = parseFrame(CoordinatorMessageSchema, e.data as string);
      if (!parsed.ok) return;
      this.received.push(parsed.msg);
      this.waiters = this.waiters.filter((w) => {
        if (!w.match(parsed.msg)) return true;
        w.resolve(parsed.msg);
        return false;
      });
    });
  }

  /** Open the socket without saying hello (for protocol-violation tests). */
  static async open(query = ""): Promise<ScriptedTab> {
    const res = await SELF.fetch(`http://tabgrid.test/v1/nodes/connect${query}`, {
      headers: { upgrade: "websocket" },
    });
    if (res.status !== 101 || !res.webSocket) throw new Error(`upgrade failed: ${res.status}`);
    res.webSocket.accept();
    return new ScriptedTab(res.webSocket);
  }

  /**
   * Open, answer the challenge with hello (signed with `keys` when given, as a real tab does with
   * its stored key pair), and wait for the welcome.
   */
  static async connect(
    models: string[],
    keys?: CryptoKeyPair,
    loc?: { lat: number; lon: number },
  ): Promise<ScriptedTab> {
    const tab = await ScriptedTab.open(loc ? `?loc=${loc.lat},${loc.lon}` : "");
    const challenge = await tab.next("challenge");
    tab.send({
      type: "hello",
      protocol: PROTOCOL_VERSION,
      ...(keys ? await identityProof(keys, challenge.nonce) : {}),
      adapter: {
        vendor: "google",
        architecture: "swiftshader",
        description: "scripted",
        shaderF16: false,
        maxBufferSize: 268435456,
        maxStorageBufferBindingSize: 134217728,
      },
      models,
      state: "idle",
      agent: "scripted-tab/1",
    });
    const welcome = await tab.next("welcome");
    tab.nodeId = welcome.nodeId;
    return tab;
  }

  send(msg: unknown): void {
    this.ws.send(typeof msg === "string" ? msg : JSON.stringify(msg));
  }

  /** The next message of a type, including one that already arrived and was not consumed. */
  next<T extends CoordinatorMessage["type"]>(
    type: T,
  ): Promise<Extract<CoordinatorMessage, { type: T }>> {
    const index = this.received.findIndex((m) => m.type === type);
    if (index >= 0) {
      const [msg] = this.received.splice(index, 1);
      return Promise.resolve(msg as Extract<CoordinatorMessage, { type: T }>);
    }
    return new Promise((resolve) => {
      this.waiters.push({
        match: (m) => m.type === type,
        resolve: (m) => {
          this.received.splice(this.received.indexOf(m), 1);
          resolve(m as Extract<CoordinatorMessage, { type: T }>);
        },
      });
    });
  }

  get isClosed(): boolean {
    return this.ws.readyState >= 2;
  }

  /** The next assigned job, or null if the socket closes first. */
  nextJobOrClose(): Promise<JobSpec | null> {
    return Promise.race([this.nextJob(), this.closed.then(() => null)]);
  }

  async nextJob(): Promise<JobSpec> {
    return (await this.next("job.assign")).job;
  }

  /** Answer a job with these pieces of text, then done. */
  serve(job: JobSpec, pieces: string[], usage?: Partial<Usage>): void {
    this.send({ type: "job.accept", jobId: job.id });
    pieces.forEach((text, seq) => this.send({ type: "job.delta", jobId: job.id, seq, text }));
    this.done(job, "stop", usage);
  }

  done(job: JobSpec, finishReason: "stop" | "length" | "abort", usage?: Partial<Usage>): void {
    const u = { prompt_tokens: 5, completion_tokens: 3, ...usage };
    this.send({
      type: "job.done",
      jobId: job.id,
      finishReason,
      usage: { ...u, total_tokens: u.prompt_tokens + u.completion_tokens },
    });
  }

  close(): void {
    try {
      this.ws.close(1000, "test done");
    } catch {
      // already closed
    }
  }
}

export async function newKeyPair(): Promise<CryptoKeyPair> {
  return (await crypto.subtle.generateKey(IDENTITY_ALGORITHM, false, [
    "sign",
    "verify",
  ])) as CryptoKeyPair;
}

/** The `nodeId` + `identity` fields of a hello that proves ownership of `keys`. */
export async function identityProof(keys: CryptoKeyPair, nonce: string) {
  const spki = new Uint8Array(
    (await crypto.subtle.exportKey("spki", keys.publicKey)) as ArrayBuffer,
  );
  const signature = await crypto.subtle.sign(
    SIGNATURE_ALGORITHM,
    keys.privateKey,
    new TextEncoder().encode(challengeText(nonce)),
  );
  return {
    nodeId: await nodeIdFromPublicKey(spki, (d) => crypto.subtle.digest("SHA-256", d)),
    identity: { publicKey: toBase64url(spki), signature: toBase64url(new Uint8Array(signature)) },
  };
}
