/**
 * The tab-flood abuser of bench:abuse (scripts/bench-abuse.ts), in its own process: a registered
 * tab that sends `status` frames as fast as its socket takes them, reconnecting whenever closed,
 * until SIGTERM or `--cap` closes with 4009. Prints `flooding` once it started and, on exit, one JSON
 * line of what it managed (frames sent, closes by code).
 *
 *   node scripts/sim/run-ts.mjs scripts/abuse/tab-flooder.ts --url ws://127.0.0.1:8787/v1/nodes/connect
 *        [--ip 203.0.113.77]
 */
import WebSocket from "ws";
import { ProtocolTab } from "../../test/support/protocol-tab.js";
import { numberFlag, readFlags } from "../sim/flags.js";

const flags = readFlags(process.argv.slice(2));
const url = flags.get("url");
if (!url) throw new Error("--url is required");
const cap = numberFlag(flags, "cap", 100_000);
/** Sent as `cf-connecting-ip` (wrangler dev keeps a client's; Cloudflare would not): the abuser's address. */
const ip = flags.get("ip");

const counts: Record<string, number> = {};
const bump = (key: string, n = 1) => (counts[key] = (counts[key] ?? 0) + n);
let stopped = false;
let current: WebSocket | null = null;

const once = () =>
  new Promise<void>((done) => {
    const ws = new WebSocket(url, ip ? { headers: { "cf-connecting-ip": ip } } : {});
    current = ws;
    const tab = new ProtocolTab(
      {
        send: (t) => ws.readyState === WebSocket.OPEN && ws.send(t),
        close: (c, r) => ws.close(c, r),
        terminate: () => ws.terminate(),
        get readyState() {
          return ws.readyState;
        },
      },
      { onInvalid: () => undefined },
    );
    ws.on("message", (d) => tab.receive(d.toString()));
    ws.on("error", () => undefined);
    ws.on("close", (code) => {
      bump(`closed ${code}`);
      done();
    });
    void tab
      .handshake({ models: ["abuse-model"], agent: "bench-abuse-flooder/1" })
      .then(() => {
        const frame = JSON.stringify({ type: "status", state: "idle", models: ["abuse-model"] });
        // As fast as the socket takes them: 200 more whenever less than 256 KB waits to go.
        const burst = () => {
          if (stopped || ws.readyState !== WebSocket.OPEN) return;
          if (ws.bufferedAmount < 256 * 1024) {
            for (let i = 0; i < 200; i++) ws.send(frame);
            bump("frames", 200);
          }
          if ((counts.frames ?? 0) < cap * 10) setImmediate(burst);
        };
        burst();
      })
      .catch(() => undefined);
  });

process.once("SIGTERM", () => {
  stopped = true;
  (current as WebSocket | null)?.terminate();
});
console.log("flooding");
while (!stopped && (counts["closed 4009"] ?? 0) < cap) await once();
console.log(JSON.stringify(counts));
process.exit(0);
