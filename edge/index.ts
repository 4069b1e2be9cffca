import { Hono } from "hono";
import { cors } from "hono/cors";
import type { AppContext } from "./env.js";
import { ApiError } from "./http/api-error.js";
import { errorResponse, onError } from "./http/on-error.js";
import { requestId } from "./http/request-id.js";
import { inferenceRoutes } from "./api/inference.js";
import { embeddingRoutes } from "./api/embeddings.js";
import { modelRoutes } from "./api/models.js";
import { tabRoutes } from "./api/nodes.js";
import { jobRoutes } from "./api/jobs.js";
import { signalRoutes } from "./signal/signal-routes.js";
import { adminRoutes } from "./api/admin.js";
import { statusRoutes } from "./api/status.js";
import { countRequest, countRequests, metricsRoutes } from "./api/metrics.js";
import { weightRoutes } from "./api/weights.js";
import { authenticate } from "./auth/authenticate.js";
import { earlyRefusal } from "./auth/early-refusal.js";
import { KEYED_PATHS } from "./auth/keyed-paths.js";
import { EXPOSED_HEADERS } from "./http/exposed-headers.js";
import { creditRoutes } from "./credits/credit-routes.js";

export { RegionDurableObject } from "./region/region-do.js";
export { SignalDurableObject } from "./signal/signal-do.js";
export { ClientDurableObject } from "./auth/client-do.js";
export { DirectoryDurableObject } from "./directory/directory-do.js";
export { LedgerDurableObject } from "./credits/ledger-do.js";

/**
 * The coordinator Worker: the OpenAI-compatible API and the contributors' socket under /v1; every
 * other path is a static file from dist/ (wrangler serves those before the Worker runs).
 */
const app = new Hono<AppContext>();
app.use("*", requestId());
app.use("*", countRequests());
// Pages on other sites call the API with fetch (the SDK, embed.js api mode); CORS runs before auth
// so preflights are answered without a key. WebSocket routes are left alone.
for (const path of [
  "/v1/chat/completions",
  "/v1/completions",
  "/v1/embeddings",
  "/v1/jobs/*",
  "/v1/models",
  "/v1/status",
  "/v1/status/*",
])
  app.use(path, cors({ origin: "*", exposeHeaders: [...EXPOSED_HEADERS] }));
// Inference and jobs need a key (or the anonymous tier); listings and the tab socket are public.
// Reading, resuming or cancelling a job takes no concurrency slot: the job holds its own.
for (const path of KEYED_PATHS) app.use(path, authenticate({ slot: path !== "/v1/jobs/*" }));
app.route("/v1", inferenceRoutes());
app.route("/v1", embeddingRoutes());
app.route("/v1", modelRoutes());
app.route("/v1", tabRoutes());
app.route("/v1", jobRoutes());
app.route("/v1", signalRoutes());
app.route("/v1", adminRoutes());
app.route("/v1", statusRoutes());
app.route("/v1", creditRoutes());
app.route("/v1", weightRoutes());
app.route("/", metricsRoutes());
app.notFound((c) =>
  errorResponse(
    new ApiError(
      404,
      "not_found_error",
      `No route for ${c.req.method} ${c.req.path}.`,
      null,
      "unknown_route",
    ),
    c.get("requestId"),
  ),
);
app.onError(onError);

/**
 * An address past its failed-authentication limit is answered before the app runs at all
 * (auth/early-refusal.ts); `request` is the app's, for tests that call it directly.
 */
export default {
  fetch: (request, env, ctx) => {
    const refused = earlyRefusal(request, env);
    if (!refused) return app.fetch(request, env, ctx);
    // Counted in /metrics like the refusals the app gives (the app's middleware never sees these).
    return refused.then((res) => {
      countRequest(new URL(request.url).pathname, res.status, env, (done) => ctx.waitUntil(done));
      return res;
    });
  },
  request: app.request,
} satisfies ExportedHandler<AppContext["Bindings"]> & Pick<typeof app, "request">;
