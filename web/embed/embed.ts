import type { EmbedStatus } from "../../shared/protocol/embed-messages.js";
import { Tabgrid } from "../sdk/client.js";
import * as errors from "../sdk/errors.js";
import { readConfig } from "./config.js";
import { readConsent, writeConsent } from "./consent-store.js";
import { openFrame, type FrameHost } from "./frame-host.js";
import { createWidget, type Widget } from "./widget.js";

/**
 * embed.js: the one script tag a site owner pastes (built as a small IIFE). Contribute mode shows
 * the consent widget and, only after consent, opens the contributor frame; api mode exposes
 * the SDK as `window.Tabgrid`. The host page can follow the contributor with `tabgrid:status`
 * events on `document` (detail: EmbedStatus) and stop it with `Tabgrid.contributor.stop()`.
 */
declare global {
  interface Window {
    Tabgrid?: unknown;
  }
}

const script = document.currentScript as HTMLScriptElement | null;
if (script?.src) {
  const config = readConfig(script);
  let frame: FrameHost | null = null;
  let last: EmbedStatus | null = null;

  const emit = (status: EmbedStatus) => {
    last = status;
    document.dispatchEvent(new CustomEvent("tabgrid:status", { detail: status }));
  };
  const describe = (s: EmbedStatus): string => {
    switch (s.phase) {
      case "loading":
        return `Tabgrid: loading ${s.model ?? "a model"}… ${Math.round((s.progress ?? 0) * 100)}%`;
      case "contributing":
        return `Tabgrid: contributing (${s.model}) · ${s.jobsServed} answered`;
      case "unsupported":
      case "failed":
        return `Tabgrid: ${s.detail ?? "cannot contribute here"}`;
      case "consent":
        return "Tabgrid: waiting for your confirmation";
      default:
        return "Tabgrid: starting…";
    }
  };

  let widget: Widget;
  const stop = (forget: boolean) => {
    frame?.stop(forget);
    frame = null;
  };
  // Only the frame's own consent (phase "consent" → a click there) lets it run; this page's stored
  // choice just says whether to open the frame without being asked first.
  const onStatus = (s: EmbedStatus) => {
    emit(s);
    if (!frame) return;
    switch (s.phase) {
      case "consent":
        frame.show(true, s.height);
        widget.confirming();
        return;
      case "declined":
        writeConsent("no");
        stop(false);
        widget.declined();
        return;
      case "failed": {
        frame.show(false);
        const f = frame;
        widget.failed(describe(s), () => {
          widget.running("Tabgrid: starting…");
          f.retry();
        });
        return;
      }
      case "ready":
        return;
      default: {
        const runs = s.phase === "loading" || s.phase === "contributing";
        if (runs) writeConsent("yes");
        // While it runs, the frame shows its own notice with Stop (and, where the browser can
        // tell, takes no job while that notice is not visible).
        frame.show(runs, s.height);
        widget.running(describe(s));
      }
    }
  };
  const start = () => {
    if (frame) return;
    widget.running("Tabgrid: starting…");
    frame = openFrame(config, widget.frameSlot, onStatus);
  };
  const showWidget = () => {
    widget = createWidget(config, {
      consent: start,
      decline() {
        writeConsent("no");
        widget.declined();
      },
      withdraw() {
        writeConsent("no");
        stop(true);
        widget.declined();
      },
    });
    const consent = readConsent();
    if (consent === "yes") start();
    else if (consent === "no") widget.declined();
    else widget.ask();
  };

  const api: Record<string, unknown> = {};
  if (config.mode.api) {
    Object.assign(api, errors, {
      Tabgrid,
      /** A client for this coordinator. */
      client: (opts: ConstructorParameters<typeof Tabgrid>[0] = {}) =>
        new Tabgrid({ baseURL: `${config.origin}/v1`, ...opts }),
    });
  }
  if (config.mode.contribute) {
    api.contributor = {
      /** Stop contributing on this page view (the visitor's stored choice is kept). */
      stop() {
        stop(false);
        widget.declined();
      },
      get status() {
        return last;
      },
    };
    // An async script can run before <body> exists.
    if (document.body) showWidget();
    else addEventListener("DOMContentLoaded", showWidget, { once: true });
  }
  window.Tabgrid = api;
}
