/**
 * Version of the contributor channel protocol. A tab states the version it speaks in its first
 * frame (`hello`); the coordinator closes with `CloseCode.ProtocolTooOld` when the tab is older than
 * `MIN_PROTOCOL_VERSION`, so a stale cached page reloads instead of misbehaving.
 */
export const PROTOCOL_VERSION = 1;
export const MIN_PROTOCOL_VERSION = 1;
