// Durable Object migrations in wrangler.toml checked against the list last deployed
// (deploy/migrations.lock.json). Cloudflare applies migrations by tag, once, in order: a deployed
// migration that is edited or removed in wrangler.toml is not re-run, so the code and the stored
// objects silently disagree (a class renamed or deleted in the file but not in production). The only
// safe change is to append.

/** Canonical JSON (keys sorted) so that key order in the TOML does not count as an edit. */
function canonical(value) {
  if (Array.isArray(value)) return `[${value.map(canonical).join(",")}]`;
  if (value && typeof value === "object")
    return `{${Object.keys(value)
      .filter((k) => value[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonical(value[k])}`)
      .join(",")}}`;
  return JSON.stringify(value);
}

/**
 * @param {Array<Record<string, unknown> & {tag: string}>} deployed  the lock's list, in order
 * @param {Array<Record<string, unknown> & {tag: string}>} current   wrangler.toml's [[migrations]]
 * @param {Array<{class_name: string, script_name?: string}>} bindings  durable_objects.bindings
 * @returns {{problems: string[], appended: string[], deployed: number}}
 */
export function checkMigrations(deployed, current, bindings) {
  const problems = [];
  const tags = current.map((m) => m.tag);
  deployed.forEach((m, i) => {
    const now = current[i];
    const at = tags.indexOf(m.tag);
    if (at < 0) {
      problems.push(
        `migration "${m.tag}" was deployed but is gone from wrangler.toml: put it back (${canonical(m)})`,
      );
    } else if (at !== i) {
      problems.push(
        `migration "${m.tag}" moved from position ${i + 1} to ${at + 1}: deployed migrations keep their order`,
      );
    } else if (canonical(now) !== canonical(m)) {
      problems.push(
        `migration "${m.tag}" was edited after it was deployed:\n         deployed ${canonical(m)}\n         now      ${canonical(now)}\n       undo the edit and append a new migration instead`,
      );
    }
  });
  const seen = new Set();
  for (const tag of tags) {
    if (seen.has(tag)) problems.push(`migration tag "${tag}" is used twice`);
    seen.add(tag);
  }
  // Replay the list: each step must make sense given the classes that exist before it.
  const live = new Set();
  for (const m of current) {
    for (const c of [...(m.new_classes ?? []), ...(m.new_sqlite_classes ?? [])]) {
      if (live.has(c)) problems.push(`migration "${m.tag}" creates ${c}, which already exists`);
      live.add(c);
    }
    for (const { from, to } of m.renamed_classes ?? []) {
      if (!live.has(from))
        problems.push(`migration "${m.tag}" renames ${from}, which does not exist`);
      live.delete(from);
      live.add(to);
    }
    for (const { to } of m.transferred_classes ?? []) live.add(to);
    for (const c of m.deleted_classes ?? []) {
      if (!live.has(c)) problems.push(`migration "${m.tag}" deletes ${c}, which does not exist`);
      live.delete(c);
    }
  }
  for (const b of bindings) {
    if (b.script_name) continue; // a class of another Worker: its migrations are there
    if (!live.has(b.class_name))
      problems.push(
        `binding to ${b.class_name}: no migration creates that class (append one with new_sqlite_classes)`,
      );
  }
  const appended = current.slice(deployed.length).map((m) => m.tag);
  return { problems, appended, deployed: deployed.length };
}
