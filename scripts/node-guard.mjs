// npm scripts put node_modules/.bin first on PATH, so they run on the `node` devDependency (22).
// If npm skipped that package's install script, scripts silently fall back to the system Node,
// which wrangler, miniflare and vitest 5 cannot run on: stop with a clear hint instead.
const [major, minor] = process.versions.node.split(".").map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  console.error(
    `Tabgrid needs Node >= 22.12 inside npm scripts, but this is ${process.version}.\n` +
      `Run \`npm install\` again (it installs Node 22 as a devDependency via the "node" package; ` +
      `check that npm ran its install script: see "allowScripts" in package.json).`,
  );
  process.exit(1);
}
