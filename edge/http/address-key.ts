/**
 * The key every per-address limit counts by (docs/limits.md, "Per-address limits"): anonymous
 * Client objects, failed authentications, the refusal log, signalling and tab sockets per address,
 * tab connects and the flood penalty, and the Region's "different addresses" of two reporters.
 *
 * An IPv4 address is its own key. An IPv6 address counts by its /64 prefix: one subscriber is
 * routinely given a /64 (often a /56 or /48) and may send from any address in it, so keying the
 * full address would hand one client 2^64 fresh buckets and as many anonymous objects. An
 * IPv4-mapped IPv6 address (`::ffff:192.0.2.1`) is the IPv4 address it maps. Anything else (no
 * such address reaches a deployed Worker: Cloudflare sets `cf-connecting-ip`) becomes a bounded
 * key of safe characters, distinct from every address key; none at all is `local`.
 */
export function addressKey(raw: string | null | undefined): string {
  const text = (raw ?? "").trim();
  if (!text) return "local";
  const v4 = ipv4(text);
  if (v4) return v4;
  const v6 = ipv6Groups(text);
  if (v6) {
    // ::ffff:a.b.c.d (or its hex form): the IPv4 address itself.
    if (v6.slice(0, 5).every((g) => g === 0) && v6[5] === 0xffff) {
      return [v6[6]! >> 8, v6[6]! & 255, v6[7]! >> 8, v6[7]! & 255].join(".");
    }
    return `${v6
      .slice(0, 4)
      .map((g) => g.toString(16))
      .join(":")}::/64`;
  }
  return `other:${text.slice(0, 64).replace(/[^0-9A-Za-z.:_-]/g, "_")}`;
}

/** The address key of a request's client (`cf-connecting-ip`, set by Cloudflare). */
export function requestAddressKey(headers: Headers): string {
  return addressKey(headers.get("cf-connecting-ip"));
}

/** Canonical dotted quad, or null. */
function ipv4(text: string): string | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  const bytes = parts.map((p) => (/^[0-9]{1,3}$/.test(p) ? Number(p) : NaN));
  return bytes.every((b) => b <= 255) ? bytes.join(".") : null;
}

/** The eight 16-bit groups of an IPv6 address (a zone `%…` and brackets ignored), or null. */
function ipv6Groups(text: string): number[] | null {
  let s = text.replace(/^\[(.*)\]$/, "$1");
  s = s.replace(/%.*$/, "");
  if (!s.includes(":") || s.length > 45) return null;
  // A trailing dotted quad is two groups.
  const tail: number[] = [];
  const quad = /^(.*:)([0-9.]+)$/.exec(s);
  if (quad && quad[2]!.includes(".")) {
    const v4 = ipv4(quad[2]!);
    if (!v4) return null;
    const b = v4.split(".").map(Number);
    tail.push((b[0]! << 8) | b[1]!, (b[2]! << 8) | b[3]!);
    s = quad[1]!.endsWith("::") ? quad[1]! : quad[1]!.slice(0, -1);
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (part: string) => (part === "" ? [] : part.split(":"));
  const head = parse(halves[0]!);
  const rest = halves.length === 2 ? parse(halves[1]!) : [];
  if (![...head, ...rest].every((g) => /^[0-9A-Fa-f]{1,4}$/.test(g))) return null;
  const given = head.length + rest.length + tail.length;
  if (halves.length === 1 ? given !== 8 : given > 7) return null;
  const zeros = new Array<number>(8 - given).fill(0);
  return [
    ...head.map((g) => parseInt(g, 16)),
    ...(halves.length === 2 ? zeros : []),
    ...rest.map((g) => parseInt(g, 16)),
    ...tail,
  ];
}
