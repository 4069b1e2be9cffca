// `npm test`: every vitest project (shared units, coordinator in workerd, web units, browser tests
// in Chromium), then one plain "N passed, N failed" line that CI and people can read at a glance.
//
// Two phases. First the unit and workerd projects, on every core. Then the browser and integration
// files, one at a time, while a second vitest process runs the real-engine file beside them: that
// one file is ~11 minutes of SwiftShader work, and run after the others (vitest runs a group's
// files one at a time when its projects allow one worker each) the whole took 24.6 minutes on CI's
// 2 cores (2026-12-02). The real-engine process runs at a lower CPU priority (nice 10), so the
// browser files' timings see little of it, with its own timeouts and leases stretched
// (REAL_ENGINE_TIME_FACTOR 2); its output is kept in a file and printed when both are done.
// With arguments (`npm test -- edge/region`), one vitest run of exactly what was asked.
import { spawn, spawnSync } from "node:child_process";
import { existsSync, openSync, readFileSync, rmSync, closeSync } from "node:fs";

// Build the contributor page once: wrangler.toml serves dist/ (workerd refuses to start without
// it) and the browser tests load it.
const built = spawnSync("vite", ["build", "--logLevel", "warn"], { stdio: "inherit" });
if (built.status !== 0) {
  console.log("0 passed, 1 failed");
  console.error("vite build failed (see above).");
  process.exit(1);
}

const env = {
  ...process.env,
  WRANGLER_SEND_METRICS: "false",
  CLOUDFLARE_CF_FETCH_ENABLED: "false",
  TABGRID_PAGE_BUILT: "1",
};

/** One vitest run; resolves with its exit status and the path of its JSON report. */
function vitest(name, args, { log, nice, extraEnv } = {}) {
  const results = `.vitest-results${name ? `-${name}` : ""}.json`;
  rmSync(results, { force: true });
  const argv = ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${results}`];
  const fd = log ? openSync(log, "w") : undefined;
  const [cmd, cmdArgs] =
    nice !== undefined && process.platform !== "win32"
      ? ["nice", ["-n", String(nice), "vitest", ...argv, ...args]]
      : ["vitest", [...argv, ...args]];
  const child = spawn(cmd, cmdArgs, {
    stdio: fd === undefined ? "inherit" : ["ignore", fd, fd],
    env: { ...env, ...extraEnv },
  });
  return new Promise((resolve) =>
    child.on("close", (status) => {
      if (fd !== undefined) closeSync(fd);
      resolve({ status: status ?? 1, results });
    }),
  );
}

/** A run's counts from its JSON report (a missing report is one failure). */
function counts(run) {
  if (!existsSync(run.results)) return { passed: 0, failed: 1, skipped: 0, missing: true };
  const report = JSON.parse(readFileSync(run.results, "utf8"));
  // Files that failed without a failing test (a broken import, an error in a hook) count as one
  // failure each, so they can't pass silently; a failing test is counted once, not again for its
  // file and its describe blocks (numFailedTestSuites counts those too).
  const brokenFiles = (report.testResults ?? []).filter(
    (f) => f.status === "failed" && !(f.assertionResults ?? []).some((a) => a.status === "failed"),
  ).length;
  // Vitest exits non-zero for errors outside any test too (an unhandled rejection): one failure.
  const outside = run.status !== 0 && (report.numFailedTests ?? 0) + brokenFiles === 0 ? 1 : 0;
  return {
    passed: report.numPassedTests ?? 0,
    failed: (report.numFailedTests ?? 0) + brokenFiles + outside,
    skipped: (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0),
    outside: outside > 0,
  };
}

const asked = process.argv.slice(2);
const runs = [];
if (asked.length > 0) runs.push(await vitest("", asked));
else {
  const project = (...names) => names.flatMap((n) => ["--project", n]);
  const first = await vitest("units", project("shared", "edge", "edge-prod", "web"));
  runs.push(first);
  const log = ".vitest-real-engine.log";
  const [browser, real] = await Promise.all([
    vitest("browser", project("browser", "integration")),
    vitest("real-engine", project("real-engine"), {
      log,
      nice: 10,
      extraEnv: { REAL_ENGINE_TIME_FACTOR: process.env.REAL_ENGINE_TIME_FACTOR ?? "2" },
    }),
  ]);
  runs.push(browser, real);
  console.log(`\n── the real-engine file, run beside the browser files (${log}) ──`);
  process.stdout.write(readFileSync(log, "utf8"));
}

const total = runs.map(counts).reduce(
  (t, c) => ({
    passed: t.passed + c.passed,
    failed: t.failed + c.failed,
    skipped: t.skipped + c.skipped,
    outside: t.outside || !!c.outside,
    missing: t.missing || !!c.missing,
  }),
  { passed: 0, failed: 0, skipped: 0, outside: false, missing: false },
);
if (total.missing) console.error("a vitest run produced no results (see its output above).");
if (total.outside)
  console.error("vitest reported an error outside the tests (see Unhandled Errors above).");
const { passed, failed, skipped } = total;
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 || runs.some((r) => r.status !== 0) ? 1 : 0);
