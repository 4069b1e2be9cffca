import { describe, expect, it } from "vitest";
import { z } from "zod";
import { frameTooLarge, parseFrame, utf8ByteLength } from "./frames.js";
import { CoordinatorMessageSchema, MAX_FRAME_BYTES, TabMessageSchema } from "./node-messages.js";
import { parseFrame as parseNodeFrame } from "./node-messages.js";

describe("utf8ByteLength", () => {
  it("matches TextEncoder for 1-, 2-, 3- and 4-byte characters and lone surrogates", () => {
    for (const s of ["", "abc", "é", "€", "😀", "a€😀é", "\ud800", "x\udc00y", "€".repeat(1000)]) {
      expect(utf8ByteLength(s)).toBe(new TextEncoder().encode(s).byteLength);
    }
  });
});

describe("parseFrame (byte limit)", () => {
  const Msg = z.object({ type: z.literal("m"), text: z.string() });

  it("counts bytes, not UTF-16 units", () => {
    const frame = JSON.stringify({ type: "m", text: "€".repeat(400) });
    expect(frame.length).toBeLessThan(1024);
    const r = parseFrame(Msg, frame, 1024);
    expect(r).toMatchObject({ ok: false, tooLarge: true });
    expect(parseFrame(Msg, JSON.stringify({ type: "m", text: "€".repeat(300) }), 1024).ok).toBe(
      true,
    );
  });

  it("binary frames are measured by byteLength, then refused as binary", () => {
    expect(frameTooLarge(new ArrayBuffer(2048), 1024)).toBe(true);
    expect(parseFrame(Msg, new ArrayBuffer(8), 1024)).toMatchObject({ ok: false });
  });

  it("node-messages' parseFrame limits what tabs send (600 KB of 3-byte characters)", () => {
    const frame = JSON.stringify({ type: "status", note: "€".repeat(200_000) });
    expect(frame.length).toBeLessThan(MAX_FRAME_BYTES);
    expect(parseNodeFrame(TabMessageSchema, frame)).toMatchObject({ ok: false, tooLarge: true });
  });

  it("but not what the coordinator sends (a job carries the whole request)", () => {
    const big = JSON.stringify({ type: "job.cancel", jobId: "€".repeat(200_000) });
    const r = parseNodeFrame(CoordinatorMessageSchema, big);
    expect(r.ok || !("tooLarge" in r && r.tooLarge)).toBe(true);
  });
});
