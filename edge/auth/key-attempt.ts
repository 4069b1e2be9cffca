import { requestAddressKey } from "../http/address-key.js";
import { parseApiKey, type ParsedKey } from "./api-key.js";

/**
 * A request that must authenticate with a key, as the failed-authentication limit sees it: from
 * which address, with which bearer (if any) and whether it is a well-formed `tg_…` key. Shared by
 * `authenticate.ts` and the Worker's first check (`early-refusal.ts`), so both count and refuse
 * the same requests.
 */
export interface KeyAttempt {
  /** The caller's address key (http/address-key.ts: an IPv6 address counts by its /64). */
  ip: string;
  bearer: string | undefined;
  parsed: ParsedKey | null;
}

/**
 * Null when the caller is anonymous (the anonymous tier is on and it sent no Tabgrid key: the openai
 * client insists on sending some key); else the attempt. With the tier off, a request with no key at
 * all is an attempt too: it fails like a made-up key and counts against the address's limit.
 */
export function keyAttempt(headers: Headers, anonymousOn: boolean): KeyAttempt | null {
  const header = headers.get("authorization");
  const bearer = header?.match(/^Bearer\s+(.+)$/i)?.[1]?.trim();
  const parsed = bearer ? parseApiKey(bearer) : null;
  if (anonymousOn && !parsed) return null;
  return { ip: requestAddressKey(headers), bearer, parsed };
}
