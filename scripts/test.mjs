// `npm test`: every vitest project (shared units, coordinator in workerd, web units, browser tests
// in Chromium), then one plain "N passed, N failed" line that CI and people can read at a glance.
import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

const results = ".vitest-results.json";
rmSync(results, { force: true });

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
const run = spawnSync(
  "vitest",
  [
    "run",
    "--reporter=default",
    "--reporter=json",
    `--outputFile.json=${results}`,
    ...process.argv.slice(2),
  ],
  { stdio: "inherit", env },
);

if (!existsSync(results)) {
  console.log("0 passed, 1 failed");
  console.error("vitest produced no results (see its output above).");
  process.exit(run.status || 1);
}
const report = JSON.parse(readFileSync(results, "utf8"));
const passed = report.numPassedTests ?? 0;
// Files that failed without a failing test (a broken import, an error in a hook) count as one
// failure each, so they can't pass silently; a failing test is counted once, not again for its
// file and its describe blocks (numFailedTestSuites counts those too).
const brokenFiles = (report.testResults ?? []).filter(
  (f) => f.status === "failed" && !(f.assertionResults ?? []).some((a) => a.status === "failed"),
).length;
// Vitest exits non-zero for errors outside any test too (an unhandled rejection): one failure.
const outside = run.status !== 0 && (report.numFailedTests ?? 0) + brokenFiles === 0 ? 1 : 0;
const failed = (report.numFailedTests ?? 0) + brokenFiles + outside;
const skipped = (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
if (outside)
  console.error("vitest reported an error outside the tests (see Unhandled Errors above).");
process.exit(failed > 0 || passed === 0 || run.status !== 0 ? 1 : 0);
