import type { ChatMessage } from "../../shared/protocol/job.js";

/**
 * Failover support: continuing an answer another tab started. WebLLM's chat API refuses a
 * conversation that ends with the assistant (MessageOrderError), but its raw completion API takes a
 * prompt as-is. So the conversation is rendered here exactly as WebLLM renders it for a fresh chat
 * (its `Conversation.getPromptArray`, from the model's `conv_template` in mlc-chat-config.json),
 * followed by the assistant header and the text the client already received; the model then
 * continues from the same point the first tab reached.
 */

/** The fields of WebLLM's ConvTemplateConfig this rendering uses. */
export interface ConvTemplate {
  system_template: string;
  system_message: string;
  roles: { user: string; assistant: string; tool?: string };
  role_templates?: Partial<Record<"user" | "assistant" | "tool", string>>;
  seps: string[];
  role_content_sep?: string;
  role_empty_sep?: string;
  stop_str: string[];
  stop_token_ids: number[];
  add_role_after_system_message?: boolean;
  render_empty_system_message?: boolean;
}

const PLACEHOLDER = {
  user: "{user_message}",
  assistant: "{assistant_message}",
  tool: "{tool_message}",
} as const;

/** The prompt that makes the model continue `partial` as the assistant's reply to `messages`. */
export function renderContinuation(
  conv: ConvTemplate,
  messages: readonly ChatMessage[],
  partial: string,
): string {
  if (conv.seps.length === 0) throw new Error("conv_template has no seps");
  // WebLLM takes a leading system message as the system prompt, replacing the template's default.
  const [first, ...others] = messages;
  const hasSystem = first?.role === "system";
  const systemMessage = hasSystem ? first.content : conv.system_message;
  const turns = hasSystem ? others : [...messages];
  const systemPrompt =
    systemMessage === "" && conv.render_empty_system_message === false
      ? ""
      : conv.system_template.replace("{system_message}", systemMessage);
  const contentSep = conv.role_content_sep ?? ": ";
  const parts: string[] = systemPrompt ? [systemPrompt] : [];
  turns.forEach((m, i) => {
    const role = m.role === "system" ? "user" : m.role;
    const template = conv.role_templates?.[role];
    const text = (template ? template.replace(PLACEHOLDER[role], m.content) : m.content).replace(
      "{function_string}",
      "",
    );
    const prefix =
      conv.add_role_after_system_message === false && systemPrompt !== "" && i === 0
        ? ""
        : `${conv.roles[role] ?? role}${contentSep}`;
    parts.push(prefix + text + conv.seps[i % conv.seps.length]);
  });
  // A fresh reply starts with the assistant header and the empty-message separator; the text
  // generated so far follows it directly.
  parts.push(`${conv.roles.assistant}${conv.role_empty_sep ?? ": "}${partial}`);
  return parts.join("");
}

/** WebLLM's rule for where a model's files live (https://huggingface.co/U/M → …/resolve/main/). */
export function modelBaseUrl(modelUrl: string): string {
  let url = modelUrl.endsWith("/") ? modelUrl : `${modelUrl}/`;
  if (!/.+\/resolve\/.+\//.test(url)) url += "resolve/main/";
  return new URL(url).href;
}
