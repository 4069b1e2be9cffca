import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { afterAll, describe, expect, it } from "vitest";

/**
 * `npm run deploy:check`'s migration check (scripts/deploy-migrations.mjs) run as the operator runs
 * it, on copies of the real wrangler.toml: the committed list passes, and a deployed migration
 * edited, removed or moved fails with a report that names it; an appended migration passes.
 */
const ROOT = resolve(import.meta.dirname, "../..");
const toml = readFileSync(join(ROOT, "wrangler.toml"), "utf8");
const dir = mkdtempSync(join(tmpdir(), "tabgrid-migrations-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function check(config: string, name: string) {
  const path = join(dir, `${name}.toml`);
  writeFileSync(path, config);
  const run = spawnSync(
    process.execPath,
    [join(ROOT, "scripts/deploy-check.mjs"), "--migrations-only", "--config", path],
    { cwd: ROOT, encoding: "utf8" },
  );
  return { code: run.status, out: run.stdout + run.stderr };
}

describe("deploy:check migrations", () => {
  it("passes the committed wrangler.toml against the committed lock", () => {
    const r = check(toml, "same");
    expect(r.out).toContain("deployed migrations unchanged");
    expect(r.code).toBe(0);
  });

  it("fails when a deployed migration is edited", () => {
    const edited = toml.replace(
      'tag = "v1-clients"\nnew_sqlite_classes = ["ClientDurableObject"]',
      'tag = "v1-clients"\nnew_classes = ["ClientDurableObject"]',
    );
    expect(edited).not.toBe(toml);
    const r = check(edited, "edited");
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/migration "v1-clients" was edited after it was deployed/);
  });

  it("fails when a deployed migration is removed", () => {
    const removed = toml.replace(
      '[[migrations]]\ntag = "v2"\nnew_sqlite_classes = ["SignalDurableObject"]\n',
      "",
    );
    expect(removed).not.toBe(toml);
    const r = check(removed, "removed");
    expect(r.code).toBe(1);
    expect(r.out).toMatch(/migration "v2" was deployed but is gone/);
    // The binding to the class it created is left without one.
    expect(r.out).toMatch(/binding to SignalDurableObject: no migration creates that class/);
  });

  it("passes an appended migration and reports it as the next to apply", () => {
    const appended = toml.replace(
      "[vars]",
      '[[migrations]]\ntag = "v3"\nnew_sqlite_classes = ["ExtraDurableObject"]\n\n[vars]',
    );
    const r = check(appended, "appended");
    expect(r.out).toContain("to apply on the next deploy: v3");
    expect(r.code).toBe(0);
  });
});
