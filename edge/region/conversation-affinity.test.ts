import { describe, expect, it } from "vitest";
import { chat, streamText, useTabs } from "../../test/workerd/tab-helpers.js";

/**
 * Conversation affinity: a follow-up turn goes to the tab whose engine holds the conversation so
 * far (it prefills only the new message) when that beats every other tab's expected first token.
 */
const tabs = useTabs();

const SAN_FRANCISCO = { lat: 37.77, lon: -122.42 };
const SEATTLE = { lat: 47.61, lon: -122.33 };
const FROM_SF = { "x-tabgrid-location": `${SAN_FRANCISCO.lat},${SAN_FRANCISCO.lon}` };

describe("conversation affinity", () => {
  it("a follow-up turn lands on the idle tab that served the previous turn, not the nearer one", async () => {
    const near = await tabs.tab(["ca-model"], { loc: SAN_FRANCISCO });
    const far = await tabs.tab(["ca-model"], { loc: SEATTLE });
    // The near tab is busy, so the first turn goes to the far one.
    const otherRes = chat("ca-model", { stream: true }, FROM_SF);
    const other = await near.nextJob();
    near.accept(other);
    const question = "Tell me about tides. ".repeat(200); // a long history: ~1,000 tokens
    const firstRes = chat(
      "ca-model",
      { stream: true, messages: [{ role: "user", content: question }] },
      FROM_SF,
    );
    const first = await far.nextJob();
    far.serve(first, ["The moon pulls the sea."]);
    expect((await streamText(await firstRes)).text).toBe("The moon pulls the sea.");
    near.serve(other, ["ok"]);
    await streamText(await otherRes);

    // Both idle now; the near tab would win a fresh request. The follow-up extends the far
    // tab's conversation, so only its new message needs prefilling there.
    const followRes = chat(
      "ca-model",
      {
        stream: true,
        messages: [
          { role: "user", content: question },
          { role: "assistant", content: "The moon pulls the sea." },
          { role: "user", content: "And the sun?" },
        ],
      },
      FROM_SF,
    );
    const follow = await far.nextJob();
    far.serve(follow, ["It pulls too, less."]);
    expect((await streamText(await followRes)).text).toBe("It pulls too, less.");

    // A new conversation from the same place goes to the nearer tab.
    const freshRes = chat(
      "ca-model",
      { stream: true, messages: [{ role: "user", content: question }] },
      FROM_SF,
    );
    const fresh = await near.nextJob();
    near.serve(fresh, ["fresh"]);
    expect((await streamText(await freshRes)).text).toBe("fresh");
  });
});
