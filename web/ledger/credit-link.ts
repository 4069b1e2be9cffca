import { linkText, nameText } from "../../shared/credits/credit-proofs.js";
import { OpenAIErrorBodySchema } from "../../shared/openai/errors.js";

/**
 * The contributor's side of the credit API (docs/credits.md): link this tab's identity to an API
 * key, or choose the name the public list shows. Each is a statement signed with the tab's
 * identity key — the key never leaves the browser, and the API key is sent only to this
 * coordinator, as the Bearer of the link request.
 */

/** Signs a statement with the tab's identity key (web/runtime/tab-identity.ts); null: no identity. */
export type StatementSigner = (
  text: string,
) => Promise<{ publicKey: string; signature: string } | null>;

export type CreditAnswer = { ok: true; publicId: string } | { ok: false; message: string };

const KEY_PATTERN = /^tg_([0-9a-f]{12})_[A-Za-z0-9_-]{43}$/;

/** The public id part of a Tabgrid API key (`tg_<id>_<secret>`), or null when it is not one. */
export function keyIdOf(apiKey: string): string | null {
  return KEY_PATTERN.exec(apiKey.trim())?.[1] ?? null;
}

const NO_IDENTITY =
  "This browser has no contributor identity yet: contribute once, then link your key.";

export async function linkToKey(
  apiKey: string,
  sign: StatementSigner,
  fetchFn: typeof fetch = fetch,
  now = Date.now(),
): Promise<CreditAnswer> {
  const keyId = keyIdOf(apiKey);
  if (!keyId) return { ok: false, message: "That is not a Tabgrid API key (tg_…)." };
  const proof = await sign(linkText(keyId, now));
  if (!proof) return { ok: false, message: NO_IDENTITY };
  return send(
    fetchFn,
    "/v1/credits/link",
    { ...proof, signedAt: now },
    { authorization: `Bearer ${apiKey.trim()}` },
  );
}

/** Show `name` on the public list of top contributors, or stop showing one (null). */
export async function chooseName(
  name: string | null,
  sign: StatementSigner,
  fetchFn: typeof fetch = fetch,
  now = Date.now(),
): Promise<CreditAnswer> {
  const proof = await sign(nameText(name, now));
  if (!proof) return { ok: false, message: NO_IDENTITY };
  return send(fetchFn, "/v1/credits/name", { ...proof, signedAt: now, name });
}

async function send(
  fetchFn: typeof fetch,
  path: string,
  body: object,
  headers: Record<string, string> = {},
): Promise<CreditAnswer> {
  let res: Response;
  try {
    res = await fetchFn(path, {
      method: "POST",
      headers: { "content-type": "application/json", ...headers },
      body: JSON.stringify(body),
    });
  } catch {
    return { ok: false, message: "The coordinator could not be reached; try again." };
  }
  const json: unknown = await res.json().catch(() => null);
  if (res.ok) {
    const publicId = (json as { public_id?: unknown } | null)?.public_id;
    return { ok: true, publicId: typeof publicId === "string" ? publicId : "" };
  }
  const error = OpenAIErrorBodySchema.safeParse(json);
  return {
    ok: false,
    message: error.success ? error.data.error.message : `The coordinator answered ${res.status}.`,
  };
}
