import { FNV_OFFSET, fmix32, fnv1a } from "../hash/hash32.js";
import { createRng, type Rng } from "../scheduling/prng.js";

/**
 * Keyed choices the tabs cannot predict: which finished job is audited, which job slot is a
 * canary, which canary prompt. Each choice is a function of a secret key (the coordinator's; never
 * sent to a tab) and public facts (job id, tab public id, a counter), so it is reproducible for the
 * coordinator and, without the key, uniform-looking to a tab. The mixer is a 32-bit keyed hash
 * (FNV-1a over key and message, finished by murmur3's fmix32): enough to make the choices
 * unguessable by a tab that never sees the key; not a MAC.
 */

export function keyedHash(key: string, ...parts: (string | number)[]): number {
  let h = FNV_OFFSET;
  const feed = (s: string) => {
    h = fnv1a(h, s);
    h ^= 0xff;
    h = Math.imul(h, 0x01000193);
  };
  feed(key);
  for (const p of parts) feed(String(p));
  feed(key);
  return fmix32(h);
}

/** Uniform in [0, 1), keyed. */
export function keyedUniform(key: string, ...parts: (string | number)[]): number {
  return keyedHash(key, ...parts) / 4294967296;
}

/** A seeded generator whose seed is keyed (for a sequence of choices about one thing). */
export function keyedRng(key: string, ...parts: (string | number)[]): Rng {
  return createRng(keyedHash(key, ...parts));
}
