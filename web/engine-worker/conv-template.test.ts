import { describe, expect, it } from "vitest";
import { modelBaseUrl, renderContinuation, type ConvTemplate } from "./conv-template.js";

// The Llama-3 template as published in mlc-ai's mlc-chat-config.json files.
const llama3: ConvTemplate = {
  system_template: "<|start_header_id|>system<|end_header_id|>\n\n{system_message}<|eot_id|>",
  system_message: "You are a helpful, respectful and honest assistant.",
  roles: { user: "<|start_header_id|>user", assistant: "<|start_header_id|>assistant" },
  seps: ["<|eot_id|>"],
  role_content_sep: "<|end_header_id|>\n\n",
  role_empty_sep: "<|end_header_id|>\n\n",
  stop_str: [],
  stop_token_ids: [128001, 128009],
};

describe("renderContinuation", () => {
  it("renders system, turns and the partial assistant reply like WebLLM's conversation", () => {
    const prompt = renderContinuation(
      llama3,
      [
        { role: "system", content: "Be brief." },
        { role: "user", content: "Hi" },
        { role: "assistant", content: "Hello!" },
        { role: "user", content: "Count to five" },
      ],
      "1, 2,",
    );
    expect(prompt).toBe(
      "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nHi<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\nHello!<|eot_id|>" +
        "<|start_header_id|>user<|end_header_id|>\n\nCount to five<|eot_id|>" +
        "<|start_header_id|>assistant<|end_header_id|>\n\n1, 2,",
    );
  });

  it("uses the template's default system message, role templates and alternating seps", () => {
    const conv: ConvTemplate = {
      system_template: "[SYS]{system_message}\n",
      system_message: "default",
      roles: { user: "USER", assistant: "ASSISTANT" },
      role_templates: { user: "<<{user_message}>>" },
      seps: [" ", "</s>"],
      stop_str: ["</s>"],
      stop_token_ids: [2],
    };
    const prompt = renderContinuation(
      conv,
      [
        { role: "user", content: "a" },
        { role: "assistant", content: "b" },
        { role: "user", content: "c" },
      ],
      "d",
    );
    expect(prompt).toBe("[SYS]default\nUSER: <<a>> ASSISTANT: b</s>USER: <<c>> ASSISTANT: d");
  });

  it("drops an empty system prompt when the template says not to render it", () => {
    const conv: ConvTemplate = {
      system_template: "{system_message}",
      system_message: "",
      roles: { user: "U", assistant: "A" },
      seps: ["\n"],
      role_empty_sep: ":",
      stop_str: [],
      stop_token_ids: [],
      render_empty_system_message: false,
    };
    expect(renderContinuation(conv, [{ role: "user", content: "q" }], "")).toBe("U: q\nA:");
  });
});

describe("modelBaseUrl", () => {
  it("follows WebLLM's Hugging Face layout", () => {
    expect(modelBaseUrl("https://huggingface.co/mlc-ai/M")).toBe(
      "https://huggingface.co/mlc-ai/M/resolve/main/",
    );
    expect(modelBaseUrl("https://host/x/resolve/v1/")).toBe("https://host/x/resolve/v1/");
  });
});
