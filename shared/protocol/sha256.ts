import { sha256 } from "@noble/hashes/sha2.js";
import { bytesToHex, utf8ToBytes } from "@noble/hashes/utils.js";

/**
 * SHA-256 of a string's UTF-8 bytes, synchronously, as lowercase hex. WebCrypto's digest is
 * asynchronous: a tab would have to reorder its frames around it, and the coordinator would open
 * its input to other frames while it waited. Checkpoint batches (`job.checkpoint`, protocol 7) are a
 * few kilobytes, so a synchronous hash costs microseconds on either side. `@noble/hashes` is an
 * audited, dependency-free implementation that runs the same in the browser and in workerd; checked
 * against WebCrypto in sha256.test.ts.
 */
export function sha256Hex(text: string): string {
  // utf8ToBytes is TextEncoder: lone surrogates become U+FFFD, as the tab's own encoder makes them.
  return bytesToHex(sha256(utf8ToBytes(text)));
}
