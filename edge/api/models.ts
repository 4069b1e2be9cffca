import { Hono } from "hono";
import {
  buildCatalog,
  DEFAULT_MODELS,
  parseExtraModels,
  type ModelRecord,
} from "../../shared/models/catalog.js";
import { CHAT_MODEL_CAPABILITIES, type ModelList } from "../../shared/openai/models.js";
import { isEmbeddingModel } from "../../shared/models/embedding-models.js";
import { EMBEDDING_MODEL_CAPABILITIES } from "../../shared/openai/embeddings.js";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { directorySnapshot } from "../directory/directory-client.js";
import { catalogRecord, listedModels } from "../model-catalog.js";
import type { DirectorySnapshot } from "../directory/directory-do.js";
import { ListingCache, listingCacheControl } from "./listing-cache.js";
import { hostedRecords } from "./weights.js";

/** The Directory's summaries as GET /v1/models last read them in this isolate. */
const snapshots = new ListingCache<DirectorySnapshot>();

const embeds = (r: ModelRecord | undefined) => r !== undefined && isEmbeddingModel(r);

/** GET /v1/models (what connected tabs serve now) and GET /v1/catalog (what tabs may load). */
export function modelRoutes() {
  const app = new Hono<AppContext>();

  app.get("/models", async (c) => {
    const snapshot = await snapshots.get(c.env, () => directorySnapshot(c.env, true));
    const summaries = Object.values(snapshot);
    const totals = new Map<string, { nodes: number; idle: number }>();
    for (const summary of summaries) {
      for (const [model, count] of Object.entries(summary.models)) {
        const t = totals.get(model) ?? { nodes: 0, idle: 0 };
        t.nodes += count.nodes;
        t.idle += count.idle;
        totals.set(model, t);
      }
    }
    const created = Math.floor(Date.now() / 1000);
    const listed = await listedModels(
      c.env,
      [...totals.entries()].map(([id, t]) => ({ id, nodes: t.nodes, t })),
    );
    const body: ModelList = {
      object: "list",
      data: listed
        .sort((a, b) => a.id.localeCompare(b.id))
        .map(({ id, t }) => {
          const record = catalogRecord(c.env, id);
          return {
            id,
            object: "model",
            created,
            owned_by: "tabgrid",
            capabilities: embeds(record) ? EMBEDDING_MODEL_CAPABILITIES : CHAT_MODEL_CAPABILITIES,
            context_window: record?.overrides?.context_window_size ?? null,
            tabgrid: t,
          };
        }),
    };
    const cacheControl = listingCacheControl(c.env);
    if (cacheControl) c.header("cache-control", cacheControl);
    return c.json(body);
  });

  app.get("/catalog", async (c) => {
    const extra = parseExtraModels(c.env.EXTRA_MODELS);
    if (!extra.ok)
      throw new ApiError(
        500,
        "server_error",
        `Model catalog misconfigured: ${extra.error}`,
        null,
        "catalog_config",
      );
    // Models hosted on this coordinator (edge/api/weights.ts); EXTRA_MODELS still overrides them.
    const hosted = await hostedRecords(c.env, new URL(c.req.url).origin);
    return c.json({
      object: "list",
      data: buildCatalog(DEFAULT_MODELS, [...hosted, ...extra.records]),
    });
  });

  return app;
}
