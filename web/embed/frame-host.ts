import {
  EMBED_CHANNEL_VERSION,
  FrameToWidgetSchema,
  type EmbedStatus,
} from "../../shared/protocol/embed-messages.js";
import type { EmbedConfig } from "./config.js";

/**
 * The hidden contributor frame on the coordinator's origin. Messages are accepted only from that
 * frame's window and origin, and parsed with the shared schema; messages to it name its origin.
 */
export interface FrameHost {
  stop(): void;
}

export function openFrame(config: EmbedConfig, onStatus: (s: EmbedStatus) => void): FrameHost {
  const frame = document.createElement("iframe");
  frame.title = "Tabgrid contributor";
  frame.setAttribute("aria-hidden", "true");
  frame.tabIndex = -1;
  frame.style.cssText = "position:fixed;width:0;height:0;border:0;left:-10px;top:-10px";
  frame.src = `${config.origin}/frame/#parent=${encodeURIComponent(location.origin)}`;
  const post = (msg: object) => frame.contentWindow?.postMessage(msg, config.origin);

  const onMessage = (event: MessageEvent) => {
    if (event.source !== frame.contentWindow || event.origin !== config.origin) return;
    const parsed = FrameToWidgetSchema.safeParse(event.data);
    if (!parsed.success) return;
    const status = parsed.data;
    if (status.phase === "ready") {
      post({
        tabgrid: EMBED_CHANNEL_VERSION,
        type: "start",
        models: config.models,
        gpuShare: config.gpuShare,
      });
    }
    onStatus(status);
  };
  addEventListener("message", onMessage);
  document.body.append(frame);
  return {
    stop() {
      post({ tabgrid: EMBED_CHANNEL_VERSION, type: "stop" });
      removeEventListener("message", onMessage);
      // Removing the frame ends its runtime (socket, engine Worker) for certain.
      frame.remove();
    },
  };
}
