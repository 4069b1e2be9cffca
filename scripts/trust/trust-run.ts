import { resolve } from "node:path";
import { performance } from "node:perf_hooks";
import { pathToFileURL } from "node:url";
import type { WranglerDev } from "../../test/support/wrangler-dev.js";
import { createRng } from "../../shared/scheduling/prng.js";
import { expectedOutput } from "../../test/support/deterministic-engine.js";
import { streamChat, type ClientResult } from "../churn/stream-client.js";
import { CLASSES, MALICIOUS_KINDS, TrustTab, type Kind } from "./trust-tab.js";

export const MODEL = "trust-bench-model";

export interface TrustRunParams {
  seed: number;
  tabs: number;
  maliciousShare: number;
  /** Tabs, of the honest ones, that frame others when they verify (trust-tab.ts "framer"). */
  framers: number;
  /** Client requests per real second, sent open-loop. */
  rps: number;
  /** Real seconds of client load. */
  durationS: number;
  /** Real seconds per simulated second: tabs decode 1/timeScale times faster than their class. */
  timeScale: number;
  frameMs: number;
  /** Words in each client prompt (the honest answer is "You said: " and these words). */
  promptWords: number;
  /**
   * Share of client requests that ask `logprobs: true, top_logprobs: 2` (drawn by their own PRNG
   * stream, so the prompts are the same at any share): what lets the logprob liar lie at all.
   */
  logprobShare: number;
  requestTimeoutMs: number;
  root: string;
}

export interface ClientJob {
  /** When it was sent, real ms after the load started. */
  sentAt: number;
  result: ClientResult;
  expected: string;
  /** Whether it asked for logprobs (`top_logprobs: 2`). */
  logprobs: boolean;
}

export interface TrustRunResult {
  verification: boolean;
  tabs: TrustTab[];
  jobs: ClientJob[];
  /** performance.now() when the client load started (tab times are on the same clock). */
  t0: number;
  wallMs: number;
  /** The coordinator's log lines by message (to count audits and canaries it ran). */
  logCounts: Map<string, number>;
}

async function startCoordinator(root: string, vars: Record<string, string>): Promise<WranglerDev> {
  const url = pathToFileURL(resolve(root, "test/support/wrangler-dev.ts")).href;
  const mod = (await import(url)) as typeof import("../../test/support/wrangler-dev.js");
  // On a shared machine workerd's own sockets can collide with another server starting at the
  // same moment ("Address already in use"): try again on a fresh port.
  for (let attempt = 1; ; attempt++) {
    try {
      return await mod.startWranglerDev({ vars, timeoutMs: 90_000 });
    } catch (e) {
      if (attempt >= 3) throw e;
      console.log(`(wrangler dev did not start, attempt ${attempt}; retrying)`);
      await new Promise((r) => setTimeout(r, 5000));
    }
  }
}

function countLogs(output: string): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of output.split("\n")) {
    const at = line.indexOf('{"level"');
    if (at < 0) continue;
    try {
      const entry = JSON.parse(line.slice(at)) as { level: string; msg: string };
      const key = `${entry.level}: ${entry.msg}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    } catch {
      // Not one of the coordinator's JSON lines.
    }
  }
  return counts;
}

/**
 * The fleet: `maliciousShare` of the tabs lie, the kinds in turn; the rest spread over classes,
 * the first `framers` of them framers (honest answers, lying audits).
 */
export function fleet(p: TrustRunParams): Array<{ kind: Kind; cls: number }> {
  const liars = Math.round(p.tabs * p.maliciousShare);
  const out: Array<{ kind: Kind; cls: number }> = [];
  for (let i = 0; i < p.tabs; i++) {
    out.push(
      i < liars
        ? { kind: MALICIOUS_KINDS[i % MALICIOUS_KINDS.length]!, cls: 0 }
        : { kind: i - liars < p.framers ? "framer" : "honest", cls: (i - liars) % CLASSES.length },
    );
  }
  // Interleave, so liars do not all join first.
  const rng = createRng(p.seed);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rng.next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

const WORDS =
  "river stone apple cloud lantern maple orbit velvet harbor pepper tiger window copper meadow violin garden ember falcon canyon willow".split(
    " ",
  );

/** One run against a fresh coordinator, verification on or off: tabs join, clients send. */
export async function runTrust(p: TrustRunParams, verification: boolean): Promise<TrustRunResult> {
  const server = await startCoordinator(p.root, {
    TRUST: verification ? "on" : "off",
    MAX_NODES_PER_IP: String(p.tabs * 2),
    // Simulated tabs all connect from 127.0.0.1: no reconnect limit for the address here.
    TAB_CONNECTS_PER_MIN: "1000000",
    ANONYMOUS_TIER: "on",
    ANONYMOUS_RPM: "10000000",
    ANONYMOUS_CONCURRENT: "1000000",
    // The bench's model is a made-up name, outside the catalog, which earns no credit
    // (docs/credits.md "Only catalog models earn"); the count liar's over-claim and what is taken
    // back of it are credit, so here every name earns, as in the workerd tests.
    CREDIT_MODELS: "any",
  });
  const tabs: TrustTab[] = [];
  try {
    const wsUrl = `${server.origin.replace(/^http/, "ws")}/v1/nodes/connect`;
    const opts = { wsUrl, model: MODEL, timeScale: p.timeScale, frameMs: p.frameMs };
    fleet(p).forEach(({ kind, cls }, i) =>
      tabs.push(new TrustTab(i, kind, CLASSES[cls]!, opts, p.seed)),
    );
    for (let i = 0; i < tabs.length; i += 10) {
      await Promise.all(tabs.slice(i, i + 10).map((t) => t.start()));
    }
    const rng = createRng(p.seed ^ 0x5eed);
    const logprobRng = createRng((p.seed ^ 0x10f9) >>> 0);
    const t0 = performance.now();
    const total = Math.round(p.rps * p.durationS);
    const pending: Array<Promise<ClientJob>> = [];
    for (let i = 0; i < total; i++) {
      const due = t0 + (i * 1000) / p.rps;
      const wait = due - performance.now();
      if (wait > 0) await new Promise((r) => setTimeout(r, wait));
      const content = Array.from({ length: p.promptWords }, () => rng.pick(WORDS)).join(" ");
      const messages = [{ role: "user" as const, content }];
      const maxTokens = p.promptWords * 3;
      const expected = expectedOutput({ kind: "chat", messages }, { max_tokens: maxTokens }).text;
      const logprobs = logprobRng.next() < p.logprobShare;
      const sentAt = performance.now() - t0;
      pending.push(
        streamChat(
          server.origin,
          i,
          {
            model: MODEL,
            messages,
            max_tokens: maxTokens,
            ...(logprobs ? { logprobs: true, top_logprobs: 2 } : {}),
          },
          p.requestTimeoutMs,
        ).then((result) => ({ sentAt, result, expected, logprobs })),
      );
    }
    const jobs = await Promise.all(pending);
    if (process.env.TRUST_BENCH_DEBUG) {
      for (const j of jobs.filter((j) => j.result.outcome !== "done").slice(0, 3)) {
        const view = j.result.jobId
          ? await (await fetch(`${server.origin}/v1/jobs/${j.result.jobId}`)).text()
          : "(no job id)";
        console.log(`DEBUG ${j.result.outcome} text=${JSON.stringify(j.result.text)} view=${view}`);
      }
    }
    // Audits of the last answers finish after their clients were served.
    await new Promise((r) => setTimeout(r, 2000));
    return {
      verification,
      tabs,
      jobs,
      wallMs: performance.now() - t0,
      logCounts: countLogs(server.output()),
      t0,
    };
  } finally {
    for (const t of tabs) t.stop();
    await server.stop();
  }
}
