import {
  EMBED_CHANNEL_VERSION,
  FrameToWidgetSchema,
  type EmbedStatus,
} from "../../shared/protocol/embed-messages.js";
import type { EmbedConfig } from "./config.js";

/**
 * The contributor frame on the coordinator's origin, placed in the widget's slot. It is shown in
 * the widget, as tall as the frame says its panel is, while it asks the visitor for consent (that
 * question and its "Start contributing" button live in the frame's own document, where this page
 * cannot click for the visitor) and while it runs (its notice with Stop: where the browser can
 * tell, the frame takes no job while the notice is not in front of the visitor); hidden (no
 * height) otherwise. Messages are accepted only from that frame's window and origin, and parsed with the
 * shared schema; messages to it name its origin.
 */
export interface FrameHost {
  /** Show the frame (its question or notice) in the widget, `height` px tall, or hide it. */
  show(visible: boolean, height?: number): void;
  /** `forget`: withdrawal — the frame forgets the consent it stored for this site. */
  stop(forget: boolean): void;
  /** Ask the frame to start again (after a failure). */
  retry(): void;
}

// Hidden: no height, but the widget's width, so the frame lays its panel out at the width it
// will be shown at and reports the right height with its first question.
const HIDDEN = "display:block;width:100%;height:0;border:0;margin:0";
const shown = (height: number) =>
  `display:block;width:100%;height:${height}px;border:0;margin:0 0 4px`;

export function openFrame(
  config: EmbedConfig,
  slot: HTMLElement,
  onStatus: (s: EmbedStatus) => void,
): FrameHost {
  const frame = document.createElement("iframe");
  frame.title = "Tabgrid consent";
  frame.style.cssText = HIDDEN;
  frame.src = `${config.origin}/frame/#parent=${encodeURIComponent(location.origin)}`;
  const post = (msg: object) => frame.contentWindow?.postMessage(msg, config.origin);
  const start = () =>
    post({
      tabgrid: EMBED_CHANNEL_VERSION,
      type: "start",
      models: config.models,
      gpuShare: config.gpuShare,
    });

  let stopping: (() => void) | null = null;
  const onMessage = (event: MessageEvent) => {
    if (event.source !== frame.contentWindow || event.origin !== config.origin) return;
    const parsed = FrameToWidgetSchema.safeParse(event.data);
    if (!parsed.success) return;
    const status = parsed.data;
    if (stopping) {
      if (status.phase === "stopped") stopping();
      return;
    }
    if (status.phase === "ready") start();
    onStatus(status);
  };
  const remove = () => {
    removeEventListener("message", onMessage);
    // Removing the frame ends its runtime (socket, engine Worker) for certain.
    frame.remove();
  };
  addEventListener("message", onMessage);
  slot.append(frame);
  return {
    show(visible, height) {
      // Until the frame says how tall its panel is, room for the question.
      frame.style.cssText = visible ? shown(height || 150) : HIDDEN;
      if (visible) frame.removeAttribute("aria-hidden");
      else frame.setAttribute("aria-hidden", "true");
      frame.tabIndex = visible ? 0 : -1;
    },
    stop(forget) {
      frame.style.cssText = HIDDEN;
      if (!forget) return remove();
      // Withdrawal: let the frame forget its stored consent first (it answers "stopped"), but
      // never wait long for a frame that may be stuck.
      const timer = setTimeout(remove, 1000);
      stopping = () => {
        clearTimeout(timer);
        remove();
      };
      post({ tabgrid: EMBED_CHANNEL_VERSION, type: "stop", forget });
    },
    retry: start,
  };
}
