/**
 * The unauth-flood abuser of bench:abuse (scripts/bench-abuse.ts), in its own process (as the tab
 * flooder is), so its request loops do not hold up the benchmark's event loop, which runs the
 * measured client and the simulated tabs; only the machine is shared. `--concurrency` loops send
 * `POST /v1/chat/completions` one after another with made-up `tg_…` keys (`key`), no key (`nokey`)
 * or a made-up key and a 2 MB chunked body (`big`), in turn, until SIGTERM or `--cap` requests.
 * Prints `flooding` once it started and, on exit, one JSON line of the answers by status.
 *
 *   node scripts/sim/run-ts.mjs scripts/abuse/unauth-flooder.ts --origin http://127.0.0.1:8787
 *        [--kinds key,nokey,big] [--concurrency 8] [--cap 100000] [--ip 203.0.113.3] [--model m]
 */
import { numberFlag, readFlags } from "../sim/flags.js";

const flags = readFlags(process.argv.slice(2));
const origin = flags.get("origin");
if (!origin) throw new Error("--origin is required");
const cap = numberFlag(flags, "cap", 100_000);
const concurrency = numberFlag(flags, "concurrency", 8);
const model = flags.get("model") ?? "bench-abuse-model";
/** Sent as `cf-connecting-ip` (wrangler dev keeps a client's; Cloudflare would not): the abuser's address. */
const ip = flags.get("ip");
const KINDS = ["key", "nokey", "big"] as const;
const kinds = (flags.get("kinds") ?? KINDS.join(",")).split(",") as Array<(typeof KINDS)[number]>;
for (const k of kinds) if (!KINDS.includes(k)) throw new Error(`--kinds: unknown '${k}'`);

const counts: Record<string, number> = {};
const bump = (key: string) => (counts[key] = (counts[key] ?? 0) + 1);
let stopped = false;

const b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
const key = (i: number) =>
  `tg_${((i * 2654435761) >>> 0).toString(16).padStart(12, "0").slice(-12)}_` +
  Array.from({ length: 43 }, (_, j) => b64[(i * 31 + j * 17) % 64]).join("");
const body = JSON.stringify({ model, messages: [{ role: "user", content: "hi" }] });
const chunk = new TextEncoder().encode("€".repeat(20_000));
const big = () => {
  let sent = 0;
  return new ReadableStream<Uint8Array>({
    pull(c) {
      if (sent === 0) c.enqueue(new TextEncoder().encode('{"model":"x","messages":"'));
      if (sent >= 2_000_000) return c.close();
      sent += chunk.byteLength;
      c.enqueue(chunk);
    },
  });
};

let n = 0;
const worker = async () => {
  while (!stopped && n < cap) {
    const i = n++;
    const kind = kinds[i % kinds.length];
    try {
      const res = await fetch(`${origin}/v1/chat/completions`, {
        method: "POST",
        headers: {
          "content-type": "application/json",
          ...(ip ? { "cf-connecting-ip": ip } : {}),
          ...(kind === "nokey" ? {} : { authorization: `Bearer ${key(i)}` }),
        },
        body: kind === "big" ? big() : body,
        ...(kind === "big" ? { duplex: "half" } : {}),
      } as RequestInit);
      await res.arrayBuffer();
      bump(`HTTP ${res.status}`);
    } catch {
      bump("failed");
    }
  }
};

const loop = Promise.all(Array.from({ length: concurrency }, worker));
process.once("SIGTERM", () => (stopped = true));
console.log("flooding");
await loop;
console.log(JSON.stringify(counts));
process.exit(0);
