import { SELF } from "cloudflare:test";
import { afterEach, describe, expect, it } from "vitest";
import { EngineTab } from "../../test/workerd/api-tab.js";
import { jobToken } from "../../test/workerd/tab-helpers.js";
import { weatherTool } from "../../test/workerd/weather-tool.js";
import { workerdOpenAI } from "../../test/workerd/openai-client.js";

/**
 * GET /v1/jobs/:id of a tool-calling job shows what the chat response showed (its tool calls, or
 * its content), not the tool envelope the tab wrote.
 */
const ORIGIN = "http://tabgrid.test";
const client = workerdOpenAI();

const tabs: EngineTab[] = [];
afterEach(() => tabs.splice(0).forEach((t) => t.close()));

async function viewOf(response: Response): Promise<Record<string, unknown>> {
  const id = response.headers.get("x-tabgrid-job-id");
  const res = await SELF.fetch(`${ORIGIN}/v1/jobs/${id}`, { headers: jobToken(response) });
  expect(res.status).toBe(200);
  return (await res.json()) as Record<string, unknown>;
}

describe("GET /v1/jobs/:id of a tool-calling job", () => {
  it("shows the tool calls as the chat response gave them, not the envelope", async () => {
    tabs.push(await EngineTab.connect("view-tools"));
    const { data, response } = await client.chat.completions
      .create({
        model: "view-tools",
        messages: [{ role: "user", content: "Weather in Paris? call get_weather" }],
        tools: [weatherTool],
        tool_choice: "required",
      })
      .withResponse();
    const view = await viewOf(response);
    expect(view.state).toBe("done");
    expect(view.finish_reason).toBe("tool_calls");
    expect(view.tool_calls).toEqual(data.choices[0]!.message.tool_calls);
    expect(view.text).toBe("");
  });

  it("shows a direct answer's content as text", async () => {
    tabs.push(await EngineTab.connect("view-tools-text"));
    const { data, response } = await client.chat.completions
      .create({
        model: "view-tools-text",
        messages: [{ role: "user", content: "Say hello" }],
        tools: [weatherTool],
      })
      .withResponse();
    const content = data.choices[0]!.message.content;
    expect(typeof content).toBe("string");
    const view = await viewOf(response);
    expect(view.text).toBe(content);
    expect(view.finish_reason).toBe("stop");
    expect(view).not.toHaveProperty("tool_calls");
  });
});
