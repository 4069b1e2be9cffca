import type { AlertEvent } from "../../edge/alerts/alert-webhook.js";

/**
 * An operator's webhook receiver for the alert tests, in place of the network: the Directory's
 * alert check is handed `transport` instead of `fetch`. It checks each call as a receiver should —
 * POST, JSON, `x-tabgrid-signature: sha256=<hex HMAC-SHA256 of "<timestamp>.<body>">` with the
 * shared secret, recomputed here with WebCrypto, and a fresh timestamp — and records what came.
 * `mode` makes it answer 204 (`up`), 500 (`down`) or never (`hang`, until the caller gives up).
 */
export class AlertReceiver {
  readonly events: AlertEvent[] = [];
  /** Every call, accepted or not, in order: its alert key and delivery id (`<call>-<attempt>`). */
  readonly calls: { key: string; delivery: string }[] = [];
  rejected: string[] = [];
  mode: "up" | "down" | "hang" = "up";

  constructor(
    private readonly secret: string,
    private readonly clock: () => number,
  ) {}

  transport = async (request: Request): Promise<Response> => {
    const body = await request.text();
    this.calls.push({
      key: (JSON.parse(body) as AlertEvent).key,
      delivery: request.headers.get("x-tabgrid-delivery") ?? "",
    });
    if (this.mode === "hang") {
      return new Promise<Response>((_, reject) =>
        request.signal.addEventListener("abort", () => reject(new Error("aborted"))),
      );
    }
    const problem = await this.problem(request, body);
    if (problem) {
      this.rejected.push(problem);
      return new Response(problem, { status: 401 });
    }
    if (this.mode === "down") return new Response("down", { status: 500 });
    this.events.push(JSON.parse(body) as AlertEvent);
    return new Response(null, { status: 204 });
  };

  /** Events for one alert key, in the order they came. */
  of(key: string): AlertEvent["status"][] {
    return this.events.filter((e) => e.key === key).map((e) => e.status);
  }

  private async problem(request: Request, body: string): Promise<string | null> {
    if (request.method !== "POST") return "not a POST";
    if (!request.headers.get("content-type")?.startsWith("application/json")) return "not JSON";
    const ts = Number(request.headers.get("x-tabgrid-timestamp"));
    if (!Number.isInteger(ts) || Math.abs(ts - this.clock() / 1000) > 300) return "stale timestamp";
    const given = request.headers.get("x-tabgrid-signature") ?? "";
    const key = await crypto.subtle.importKey(
      "raw",
      new TextEncoder().encode(this.secret),
      { name: "HMAC", hash: "SHA-256" },
      false,
      ["verify"],
    );
    const mac = given.startsWith("sha256=") ? given.slice(7) : "";
    const bytes = new Uint8Array((mac.match(/../g) ?? []).map((h) => parseInt(h, 16)));
    const valid = await crypto.subtle.verify(
      "HMAC",
      key,
      bytes,
      new TextEncoder().encode(`${ts}.${body}`),
    );
    return valid ? null : "bad signature";
  }
}
