import { describe, expect, it } from "vitest";
import { auditWindowStart } from "./audit-window.js";

const words = Array.from({ length: 600 }, (_, i) => `word${i}`);
const long = `You said: ${words.join(" ")}`;
const starts = (key: string, text: string, claimed = text.split(" ").length) =>
  Array.from({ length: 400 }, (_, i) => auditWindowStart(key, `job_${i}`, text, 128, claimed));

describe("auditWindowStart", () => {
  it("scores an answer that fits one window whole", () => {
    expect(starts("k", "You said: a short answer").every((s) => s === 0)).toBe(true);
    // 128 bytes can hold no more than 128 tokens, whatever the tab counted.
    expect(starts("k", "x".repeat(128), 500).every((s) => s === 0)).toBe(true);
    // Over 128 bytes: whole when the tab counted at most 128 tokens and the text is short…
    const mid = "x ".repeat(300);
    expect(starts("k", mid, 128).every((s) => s === 0)).toBe(true);
    expect(starts("k", mid, 129).some((s) => s > 0)).toBe(true);
    // …and windowed past 8 bytes a token, whatever the count says.
    expect(starts("k", "x ".repeat(513), 1).some((s) => s > 0)).toBe(true);
  });

  it("starts half the windows of a long answer at the answer's start and the rest anywhere, at a word", () => {
    const all = starts("k", long);
    const atStart = all.filter((s) => s === 0).length;
    expect(atStart).toBeGreaterThan(160);
    expect(atStart).toBeLessThan(240);
    const elsewhere = all.filter((s) => s > 0);
    for (const s of elsewhere) expect(long.slice(s)).toMatch(/^\s\S/);
    // Spread over the whole answer: some windows start in its last quarter.
    expect(elsewhere.some((s) => s > 0.75 * long.length)).toBe(true);
    expect(elsewhere.some((s) => s < 0.25 * long.length)).toBe(true);
  });

  it("is keyed: the same audit looks at the same place, another key elsewhere", () => {
    expect(starts("k", long)).toEqual(starts("k", long));
    expect(starts("other", long)).not.toEqual(starts("k", long));
  });
});

describe("auditWindowStart on text without spaces", () => {
  // Review finding: the keyed point is moved back to a whitespace before a word, and falls to 0
  // when there is none. An answer in a script written without spaces (Chinese, Japanese, Thai) —
  // or any whitespace-free run from the answer's start — is then always scored from its start, so
  // a tab can answer honestly for 128 tokens and write anything after: the hole audit windows
  // were made to close (docs/trust.md "Audit windows": half the audits start anywhere).
  it("starts some windows of a long Chinese answer past its start", () => {
    const zh = "这是一个关于安静的灰猫在温暖屋顶上的故事。".repeat(60); // 1,260 chars, 3,780 bytes
    const all = Array.from({ length: 400 }, (_, i) =>
      auditWindowStart("k", `job_${i}`, zh, 128, 1000),
    );
    expect(all.filter((s) => s > 0).length).toBeGreaterThan(100);
  });
});
