import { CatalogSchema, type ModelRecord } from "../../shared/models/catalog.js";

/**
 * The models tabs may load, from the coordinator (`GET /v1/catalog`), so operators' self-hosted
 * models appear without rebuilding the page. Parsed with the shared schema like any untrusted input.
 */
export async function fetchCatalog(base: string = location.origin): Promise<ModelRecord[]> {
  const res = await fetch(new URL("/v1/catalog", base));
  if (!res.ok) throw new Error(`the coordinator's catalog answered HTTP ${res.status}`);
  const body: unknown = await res.json();
  const data = (body as { data?: unknown } | null)?.data;
  const parsed = CatalogSchema.safeParse(data);
  if (!parsed.success) throw new Error("the coordinator's catalog is not a list of model records");
  return parsed.data;
}

/** ws(s)://<this origin>/v1/nodes/connect, passing the page's ?loc= through (honoured in dev only). */
export function connectUrl(page: URL = new URL(location.href)): string {
  const url = new URL("/v1/nodes/connect", page);
  url.protocol = page.protocol === "https:" ? "wss:" : "ws:";
  const loc = page.searchParams.get("loc");
  if (loc) url.searchParams.set("loc", loc);
  return url.toString();
}
