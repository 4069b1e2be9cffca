// `npm start`: the whole network on this machine, no account. The coordinator runs in workerd
// (wrangler dev) on 127.0.0.1:8787 with Durable Object state persisted under .state/, serving the
// contributor page built into dist/ and the OpenAI-compatible API under /v1.
import { spawn } from "node:child_process";
import { createServer } from "node:net";

const port = Number(process.env.PORT ?? 8787);
const host = "127.0.0.1";

const busy = await new Promise((resolve) => {
  const probe = createServer()
    .once("error", () => resolve(true))
    .once("listening", () => probe.close(() => resolve(false)))
    .listen(port, host);
});
if (busy) {
  console.error(
    `Port ${port} on ${host} is in use (an earlier \`npm start\`?). Stop it or set PORT.`,
  );
  process.exit(1);
}

console.log(`Tabgrid coordinator starting on http://localhost:${port}
  contributor page  http://localhost:${port}/
  API base URL      http://127.0.0.1:${port}/v1   (try: curl http://127.0.0.1:${port}/v1/models)
  state             .state/ (delete it to start fresh)
`);
const child = spawn(
  "wrangler",
  [
    "dev",
    "--ip",
    host,
    "--port",
    String(port),
    "--persist-to",
    ".state",
    "--show-interactive-dev-session=false",
    // Locally anyone on this machine may call the API without a key (README: API keys).
    "--var",
    "ANONYMOUS_TIER:on",
    // Locally, peer ids for the direct WebRTC path are signed with the public development key
    // (docs/limits.md: signalling); deployments set the SIGNAL_SECRET secret instead.
    "--var",
    "SIGNAL_DEV_SECRET:true",
  ],
  {
    stdio: "inherit",
    env: { ...process.env, WRANGLER_SEND_METRICS: "false", CLOUDFLARE_CF_FETCH_ENABLED: "false" },
  },
);
for (const signal of ["SIGINT", "SIGTERM"]) process.on(signal, () => child.kill(signal));
child.on("exit", (code) => process.exit(code ?? 0));
