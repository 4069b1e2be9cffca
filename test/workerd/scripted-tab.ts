import { SELF } from "cloudflare:test";
import { ProtocolTab } from "../support/protocol-tab.js";

export { identityProof, newKeyPair } from "../support/protocol-tab.js";

/**
 * A contributor tab scripted by a workerd test: the simulated tab of test/support/protocol-tab.ts
 * over a real workerd WebSocket to the coordinator (through `SELF`), and the test decides what it
 * answers. (The browser tests run the real page.)
 */
export class ScriptedTab extends ProtocolTab {
  private constructor(readonly ws: WebSocket) {
    super({
      send: (text) => ws.send(text),
      close: (code, reason) => ws.close(code, reason),
      get readyState() {
        return ws.readyState;
      },
    });
    ws.addEventListener("close", (e) => this.socketClosed(e.code, e.reason));
    ws.addEventListener("message", (e) => this.receive(e.data as string));
  }

  /**
   * Open the socket without saying hello (for protocol-violation tests). `headers` add to the
   * upgrade request (e.g. `cf-connecting-ip`, which places the tab on a Region shard).
   */
  static async open(query = "", headers: Record<string, string> = {}): Promise<ScriptedTab> {
    const res = await SELF.fetch(`http://tabgrid.test/v1/nodes/connect${query}`, {
      headers: { ...headers, upgrade: "websocket" },
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
    protocol?: number,
  ): Promise<ScriptedTab> {
    const tab = await ScriptedTab.open(loc ? `?loc=${loc.lat},${loc.lon}` : "");
    await tab.handshake({
      models,
      ...(keys ? { keys } : {}),
      agent: "scripted-tab/1",
      ...(protocol !== undefined ? { protocol } : {}),
    });
    return tab;
  }
}
