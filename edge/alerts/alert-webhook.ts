import type { AlertKind } from "./alert-rules.js";

/** The body POSTed to the operator's webhook (docs/status.md: Alerts). Version 1. */
export interface AlertEvent {
  type: "tabgrid.alert";
  version: 1;
  status: "firing" | "resolved";
  alert: AlertKind;
  key: string;
  subject: Record<string, string>;
  summary: string;
  details: Record<string, number | string | null>;
  started_at: string;
  resolved_at: string | null;
}

export type Transport = (request: Request) => Promise<Response>;

const encoder = new TextEncoder();

function hex(bytes: ArrayBuffer): string {
  return [...new Uint8Array(bytes)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/**
 * HMAC-SHA256 of `<timestamp>.<body>` with the webhook secret, hex: the receiver recomputes it
 * and rejects a body whose signature differs or whose timestamp is old (replay).
 */
export async function signature(secret: string, timestamp: number, body: string): Promise<string> {
  const key = await crypto.subtle.importKey(
    "raw",
    encoder.encode(secret),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  return hex(await crypto.subtle.sign("HMAC", key, encoder.encode(`${timestamp}.${body}`)));
}

/**
 * One delivery attempt: POST the signed event, at most `timeoutMs`, and read nothing of the answer
 * but its status. True when the receiver answered 2xx. Never throws.
 */
export async function deliver(
  transport: Transport,
  target: { url: string; secret: string; timeoutMs: number },
  event: AlertEvent,
  deliveryId: string,
  now: number,
): Promise<{ ok: boolean; status: number | null; error?: string }> {
  const body = JSON.stringify(event);
  const timestamp = Math.floor(now / 1000);
  const request = new Request(target.url, {
    method: "POST",
    headers: {
      "content-type": "application/json",
      "user-agent": "tabgrid-alerts/1",
      "x-tabgrid-delivery": deliveryId,
      "x-tabgrid-timestamp": String(timestamp),
      "x-tabgrid-signature": `sha256=${await signature(target.secret, timestamp, body)}`,
    },
    body,
    signal: AbortSignal.timeout(target.timeoutMs),
  });
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`no answer in ${target.timeoutMs} ms`)),
      target.timeoutMs,
    );
  });
  try {
    // The request's signal aborts a real fetch; the race bounds any transport all the same.
    const res = await Promise.race([transport(request), late]);
    await res.body?.cancel();
    return { ok: res.status >= 200 && res.status < 300, status: res.status };
  } catch (e) {
    return { ok: false, status: null, error: String(e).slice(0, 200) };
  } finally {
    clearTimeout(timer);
  }
}
