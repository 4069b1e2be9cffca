/**
 * A fast 32-bit string hash for spreading things evenly (shards by address, keyed audit choices):
 * FNV-1a over the UTF-16 units, finished by murmur3's fmix32 so every output bit depends on every
 * input unit. Not cryptographic: never use it where a stranger must not find collisions on purpose.
 */
export const FNV_OFFSET = 0x811c9dc5;

/** Feed `text` into an FNV-1a state `h` (start from FNV_OFFSET); returns the new state. */
export function fnv1a(h: number, text: string): number {
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  return h;
}

/** murmur3's final avalanche, as an unsigned 32-bit integer. */
export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** FNV-1a of one string, finished by fmix32. */
export function hash32(text: string): number {
  return fmix32(fnv1a(FNV_OFFSET, text));
}
