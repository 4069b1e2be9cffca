import { numberFlag, percentile, printTable } from "../sim/flags.js";
import { DEFAULT_SIM, MALICIOUS_KINDS, simulate, type SimResult } from "./trust-sim.js";
import { DEFAULT_TRUST, honestBounds } from "../../shared/trust/policy.js";

/**
 * The in-process section of bench:trust (`--sim`): the trust logic alone on a simulated clock
 * (trust-sim.ts), many tabs and many simulated minutes in seconds of wall time. Its table is the
 * one docs/trust.md had before the benchmark ran against the real coordinator.
 */
export function simSection(flags: Map<string, string>): void {
  const base = {
    ...DEFAULT_SIM,
    tabs: numberFlag(flags, "sim-tabs", DEFAULT_SIM.tabs),
    minutes: numberFlag(flags, "sim-minutes", DEFAULT_SIM.minutes),
    load: numberFlag(flags, "load", DEFAULT_SIM.load),
    maliciousShare: numberFlag(flags, "malicious", DEFAULT_SIM.maliciousShare),
    framers: numberFlag(flags, "sim-framers", DEFAULT_SIM.framers),
    confirmation: numberFlag(flags, "sim-confirm", DEFAULT_SIM.confirmation ? 1 : 0) !== 0,
  };
  const firstSeed = numberFlag(flags, "seed", DEFAULT_SIM.seed);
  const seeds = numberFlag(flags, "sim-seeds", 2);

  const started = Date.now();
  const on: SimResult[] = [];
  const off: SimResult[] = [];
  for (let s = 0; s < seeds; s++) {
    on.push(simulate({ ...base, seed: firstSeed + s, verification: true }));
    off.push(simulate({ ...base, seed: firstSeed + s, verification: false }));
  }

  const sum = (rs: SimResult[], f: (r: SimResult) => number) => rs.reduce((a, r) => a + f(r), 0);
  const pct = (x: number) => `${(100 * x).toFixed(2)}%`;
  const share = (rs: SimResult[], num: (r: SimResult) => number, den: (r: SimResult) => number) =>
    sum(rs, den) ? sum(rs, num) / sum(rs, den) : 0;
  const ratio = (a: number, b: number) => (b ? (a / b).toFixed(3) : "—");

  const badAll = [
    share(
      on,
      (r) => r.badAnswers,
      (r) => r.clientJobs,
    ),
    share(
      off,
      (r) => r.badAnswers,
      (r) => r.clientJobs,
    ),
  ];
  const bad10 = [
    share(
      on,
      (r) => r.badAnswersAfter10,
      (r) => r.jobsAfter10,
    ),
    share(
      off,
      (r) => r.badAnswersAfter10,
      (r) => r.jobsAfter10,
    ),
  ];
  const speed = [
    share(
      on,
      (r) => r.speedLieJobs,
      (r) => r.clientJobs,
    ),
    share(
      off,
      (r) => r.speedLieJobs,
      (r) => r.clientJobs,
    ),
  ];
  const overhead = share(
    on,
    (r) => r.auditedTokens + r.canaryTokens,
    (r) => r.clientTokens,
  );
  const overhead10 = share(
    on,
    (r) => r.checkTokensAfter10,
    (r) => r.clientTokensAfter10,
  );
  const honestWrong = [sum(on, (r) => r.honestQuarantined), sum(off, (r) => r.honestQuarantined)];
  const honestTabs = sum(on, (r) => r.honestTabs);

  const rows: string[][] = [
    [
      "client answers by lying tabs, whole run",
      pct(badAll[0]!),
      pct(badAll[1]!),
      ratio(badAll[0]!, badAll[1]!),
    ],
    [
      "client answers by lying tabs, after minute 10",
      pct(bad10[0]!),
      pct(bad10[1]!),
      ratio(bad10[0]!, bad10[1]!),
    ],
    [
      "client answers by speed liars (answers correct)",
      pct(speed[0]!),
      pct(speed[1]!),
      ratio(speed[0]!, speed[1]!),
    ],
  ];
  for (const kind of MALICIOUS_KINDS) {
    const times = on.flatMap((r) => r.quarantineMinutes[kind]);
    const total = sum(on, (r) => r.maliciousCount[kind]);
    rows.push([
      `time to quarantine: ${kind} (p50 / p95, min; caught)`,
      times.length
        ? `${percentile(times, 50).toFixed(1)} / ${percentile(times, 95).toFixed(1)}; ${times.length}/${total}`
        : `none; 0/${total}`,
      `never; 0/${total}`,
      "—",
    ]);
  }
  rows.push([
    "lying tabs (answer-changing) never given a client job",
    String(sum(on, (r) => r.liarsNeverServed)),
    String(sum(off, (r) => r.liarsNeverServed)),
    "—",
  ]);
  rows.push([
    `honest tabs wrongly quarantined (of ${honestTabs})`,
    String(honestWrong[0]),
    String(honestWrong[1]),
    "—",
  ]);
  rows.push([
    "honest tabs suspect at the end",
    String(sum(on, (r) => r.honestSuspectAtEnd)),
    String(sum(off, (r) => r.honestSuspectAtEnd)),
    "—",
  ]);
  const framers = sum(on, (r) => r.framers);
  if (framers > 0)
    rows.push([
      `framers discredited / quarantined (of ${framers})`,
      `${sum(on, (r) => r.framersDiscredited)} / ${sum(on, (r) => r.framersQuarantined)}`,
      "—",
      "—",
    ]);
  rows.push([
    "honestly scoring verifiers discredited",
    String(sum(on, (r) => r.honestDiscredited)),
    "—",
    "—",
  ]);
  const acc = (k: keyof SimResult["accusations"]) => sum(on, (r) => r.accusations[k]);
  rows.push([
    "accusations held: confirmed / contradicted / neither / lapsed / void",
    `${acc("held")}: ${acc("confirmed")} / ${acc("contradicted")} (${acc("contradictedByLiars")} by lying verifiers) / ${acc("unconfirmed")} / ${acc("lapsed")} / ${acc("void")}`,
    "—",
    "—",
  ]);
  rows.push([
    "accusations of honest tabs: held / confirmed",
    `${acc("ofHonest")} / ${acc("ofHonestConfirmed")}`,
    "—",
    "—",
  ]);
  rows.push(["audit + canary overhead, share of client tokens", pct(overhead), "0.00%", "—"]);
  rows.push(["audit + canary overhead, after minute 10", pct(overhead10), "0.00%", "—"]);
  rows.push([
    "audits / canaries / client jobs",
    `${sum(on, (r) => r.audits)} / ${sum(on, (r) => r.canaries)} / ${sum(on, (r) => r.clientJobs)}`,
    `0 / 0 / ${sum(off, (r) => r.clientJobs)}`,
    "—",
  ]);

  const b = honestBounds(DEFAULT_TRUST);
  const honestRate = share(
    on,
    (r) => r.honestImplausible,
    (r) => r.honestTokensScored,
  );
  console.log(
    `bench:trust — ${seeds} seeds from ${firstSeed}, ${base.tabs} tabs (${pct(base.maliciousShare)} lying: ${MALICIOUS_KINDS.join(", ")}` +
      `${base.framers ? `; ${base.framers} framers` : ""}), confirmation by a second verifier ${base.confirmation ? "on" : "off"}, ` +
      `${base.minutes} simulated minutes each, load ${base.load} of honest capacity; simulated clock, ${((Date.now() - started) / 1000).toFixed(1)} s wall`,
  );
  printTable(["measure", "verification on", "off (baseline)", "ratio"], rows);
  // The real-coordinator run's count and logprob liars are not here: the simulation models no
  // count or logprob audits (trust-sim.ts), so they would be tabs it never catches, by design.
  console.log(
    "Count and logprob liars are not simulated (no count or logprob audits here): run against the coordinator for them.",
  );
  console.log(
    `Honest re-scoring noise in this run: ${pct(honestRate)} of ${sum(on, (r) => r.honestTokensScored)} honest tokens implausible ` +
      `(calibrated bound ${pct(b.token)}); test built for ≤ ${DEFAULT_TRUST.alpha} false alarms per check (over all evidence streams).`,
  );
}
