/**
 * Version of the contributor channel protocol. A tab states the version it speaks in its first
 * frame (`hello`); the coordinator closes with `CloseCode.ProtocolTooOld` when the tab is older than
 * `MIN_PROTOCOL_VERSION`, so a stale cached page reloads instead of misbehaving.
 */
export const PROTOCOL_VERSION = 3;
export const MIN_PROTOCOL_VERSION = 1;

/**
 * What each version added, so both sides send a newer frame only to a peer that speaks it.
 * 2: `job.progress` (tab → coordinator) while a job prefills.
 * 3: embedding jobs: `job.assign` with input kind "embedding", answered by `job.vectors`. Only a
 *    tab that loaded an embedding model gets one, and only a protocol-3 page loads one as such
 *    (older pages drop `model_type` from the catalog record and would ask WebLLM for a chat model).
 */
export const PROGRESS_SINCE_PROTOCOL = 2;

/** Whether the coordinator can talk to a tab that speaks `version`. */
export function protocolCompatibility(version: number): "ok" | "too_old" | "too_new" {
  if (version < MIN_PROTOCOL_VERSION) return "too_old";
  if (version > PROTOCOL_VERSION) return "too_new";
  return "ok";
}
