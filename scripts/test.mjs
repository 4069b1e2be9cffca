// `npm test`: every vitest project (shared units, coordinator in workerd, web units, browser tests
// in Chromium), then one plain "N passed, N failed" line that CI and people can read at a glance.
//
// Two vitest processes run at once: the browser project (one file at a time, most of the wall
// time: the real-engine file alone takes ~5 min) and every other project. In one process vitest runs
// projects whose files must not run in parallel before the others, so the ~200 s of workerd and
// unit tests waited for the browser tests to end. `npm test -- <vitest args>` runs one process with
// those arguments instead (for example `npm test -- --project edge edge/region`).
import { spawn, spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync } from "node:fs";

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

const args = process.argv.slice(2);
const groups =
  args.length > 0
    ? [{ name: "selected", args }]
    : [
        { name: "browser", args: ["--project", "browser"] },
        {
          name: "units",
          args: ["shared", "edge", "edge-prod", "web", "integration"].flatMap((p) => [
            "--project",
            p,
          ]),
        },
      ];

/** One vitest process; resolves with its exit code and the path of its JSON report. */
function runGroup(group) {
  const results = `.vitest-results-${group.name}.json`;
  rmSync(results, { force: true });
  const child = spawn(
    "vitest",
    ["run", "--reporter=default", "--reporter=json", `--outputFile.json=${results}`, ...group.args],
    { stdio: "inherit", env },
  );
  return new Promise((resolve) => {
    child.on("exit", (code, signal) =>
      resolve({ group, results, status: code ?? (signal ? 1 : 0) }),
    );
    child.on("error", () => resolve({ group, results, status: 1 }));
  });
}

const runs = await Promise.all(groups.map(runGroup));

let passed = 0;
let failed = 0;
let skipped = 0;
let broken = false;
for (const run of runs) {
  if (!existsSync(run.results)) {
    console.error(`vitest (${run.group.name}) produced no results (see its output above).`);
    failed += 1;
    broken = true;
    continue;
  }
  const report = JSON.parse(readFileSync(run.results, "utf8"));
  passed += report.numPassedTests ?? 0;
  // Suites that failed to load count as failures too, so a broken import can't pass silently.
  failed += (report.numFailedTests ?? 0) + (report.numFailedTestSuites ?? 0);
  skipped += (report.numPendingTests ?? 0) + (report.numTodoTests ?? 0);
  if (run.status !== 0) broken = true;
}
console.log(`${passed} passed, ${failed} failed${skipped ? `, ${skipped} skipped` : ""}`);
process.exit(failed > 0 || passed === 0 || broken ? 1 : 0);
