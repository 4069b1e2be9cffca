import { Hono, type MiddlewareHandler } from "hono";
import { z } from "zod";
import { sameSecret, newApiKey } from "../auth/api-key.js";
import { hashKey } from "../auth/api-key.js";
import { clientStub } from "../auth/authenticate.js";
import type { AppContext } from "../env.js";
import { ApiError } from "../http/api-error.js";
import { parseJsonBody } from "../http/json-body.js";

export const CreateKeySchema = z.object({
  name: z.string().min(1).max(100).default("unnamed"),
  rpm: z.number().int().min(1).max(100_000).default(60),
  concurrent: z.number().int().min(1).max(1000).default(4),
});

/** Guard for the admin API: `Authorization: Bearer <ADMIN_TOKEN>` (a wrangler secret). */
function adminOnly(): MiddlewareHandler<AppContext> {
  return async function adminOnlyMiddleware(c, next) {
    const token = c.env.ADMIN_TOKEN;
    if (!token) {
      throw new ApiError(
        403,
        "permission_error",
        "The admin API is disabled: set the ADMIN_TOKEN secret.",
        null,
        "admin_disabled",
      );
    }
    const given = c.req
      .header("authorization")
      ?.match(/^Bearer\s+(.+)$/i)?.[1]
      ?.trim();
    if (!given)
      throw new ApiError(
        401,
        "authentication_error",
        "Missing admin token.",
        null,
        "missing_admin_token",
      );
    if (!sameSecret(given, token)) {
      throw new ApiError(
        403,
        "permission_error",
        "Wrong admin token.",
        null,
        "invalid_admin_token",
      );
    }
    await next();
  };
}

/** POST /v1/admin/keys (create; the key is shown once), GET and DELETE /v1/admin/keys/:id. */
export function adminRoutes() {
  const app = new Hono<AppContext>();
  app.use("/admin/*", adminOnly());

  app.post("/admin/keys", async (c) => {
    const req = await parseJsonBody(c, CreateKeySchema);
    const { id, key } = newApiKey();
    const info = await clientStub(c.env, `key:${id}`).createKey(id, await hashKey(key), req.name, {
      rpm: req.rpm,
      concurrent: req.concurrent,
    });
    if (!info) throw new ApiError(409, "invalid_request_error", "Key id collision; retry.");
    return c.json({ ...info, key }, 201);
  });

  app.get("/admin/keys/:id", async (c) => {
    const id = c.req.param("id");
    const info = /^[0-9a-f]{12}$/.test(id) ? await clientStub(c.env, `key:${id}`).info(id) : null;
    if (!info) throw new ApiError(404, "not_found_error", `No key '${id}'.`, null, "key_not_found");
    return c.json(info);
  });

  app.delete("/admin/keys/:id", async (c) => {
    const id = c.req.param("id");
    const info = /^[0-9a-f]{12}$/.test(id) ? await clientStub(c.env, `key:${id}`).revoke(id) : null;
    if (!info) throw new ApiError(404, "not_found_error", `No key '${id}'.`, null, "key_not_found");
    return c.json(info);
  });

  return app;
}
