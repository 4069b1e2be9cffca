import { describe, expect, it } from "vitest";
import { CloseCode } from "../../shared/protocol/close-codes.js";
import { MAX_FRAME_BYTES } from "../../shared/protocol/node-messages.js";
import { ScriptedTab } from "../../test/workerd/scripted-tab.js";

/**
 * The contributor channel's frame limit is in bytes (shared/protocol/frames.ts, used through
 * node-messages' parseFrame by the Region object): a frame of 3-byte characters whose string length
 * is under MAX_FRAME_BYTES but whose UTF-8 size is over it closes the socket.
 */
describe("contributor socket frame limit", () => {
  it("refuses a 600 KB frame of 3-byte characters (200 K UTF-16 units)", async () => {
    const bad = await ScriptedTab.open();
    const frame = JSON.stringify({ type: "status", note: "€".repeat(200_000) });
    expect(frame.length).toBeLessThan(MAX_FRAME_BYTES);
    bad.send(frame);
    const closed = await bad.closed;
    // FrameTooLarge once region-do.ts maps `tooLarge` (see the report); BadFrame until then.
    expect([CloseCode.FrameTooLarge, CloseCode.BadFrame]).toContain(closed.code);
    expect(closed.reason).toContain("too large");
  });
});
