import { describe, expect, it } from "vitest";
import { utf8ByteLength } from "../../shared/protocol/frames.js";
import { closeReason, closeSocket } from "./socket.js";

function fakeSocket(throws = false) {
  const calls: Array<[number | undefined, string | undefined]> = [];
  const ws = {
    close(code?: number, reason?: string) {
      calls.push([code, reason]);
      if (throws) throw new TypeError("WebSocket already closed");
    },
  } as unknown as WebSocket;
  return { ws, calls };
}

describe("closeSocket", () => {
  it("never throws on a socket that is already closed", () => {
    const { ws, calls } = fakeSocket(true);
    expect(() => closeSocket(ws, 4000, "bad")).not.toThrow();
    expect(calls).toEqual([[4000, "bad"]]);
  });

  it("echoes 1005/1006/1015 (which cannot be sent) as a normal close", () => {
    for (const code of [1005, 1006, 1015]) {
      const { ws, calls } = fakeSocket();
      closeSocket(ws, code, "");
      expect(calls[0]?.[0]).toBe(1000);
    }
  });

  it("cuts the reason to 123 UTF-8 bytes without splitting a character", () => {
    const reason = closeReason("€".repeat(100));
    expect(utf8ByteLength(reason)).toBeLessThanOrEqual(123);
    expect(reason).toBe("€".repeat(41));
    expect(closeReason("short")).toBe("short");
  });
});
