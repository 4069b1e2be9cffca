import type { ControllerView } from "../control/controller.js";
import type { ContributorView } from "../runtime/tab-status.js";

/**
 * The tab's state in plain words, for the headline of the dashboard: "serving
 * Qwen2.5-1.5B-Instruct-q4f32_1-MLC to a client in Frankfurt, DE", "paused: on battery",
 * "reloading … : the GPU device was lost".
 */
const CODE_WORDS: Record<string, string> = {
  device_lost: "the GPU device was lost",
  worker_crashed: "the engine stopped unexpectedly",
  not_loaded: "the model was dropped from the GPU",
};

function reasonWords(reason: string | null): string | null {
  if (!reason) return null;
  const code = reason.split(":")[0] ?? "";
  return CODE_WORDS[code] ?? reason;
}

export function stateWords(
  v: ContributorView | null,
  c: ControllerView | null,
  selectedModel: string | null,
): string {
  if (!v)
    return selectedModel
      ? `Not contributing yet. Ready to serve ${selectedModel} once you agree.`
      : "Not contributing yet.";
  if (v.error && v.state !== "busy" && !v.model) return `stopped: ${v.error}`;
  const model = v.model ?? selectedModel ?? "the model";
  let words: string;
  switch (v.state) {
    case "loading":
      words = v.reason
        ? `reloading ${model}: ${reasonWords(v.reason)}`
        : `loading ${model} onto the GPU…`;
      break;
    case "busy": {
      const place = v.serving?.clientPlace;
      words = `serving ${v.serving?.model ?? model}${place ? ` to a client in ${place}` : ""}`;
      break;
    }
    case "idle":
      words =
        v.trust?.state === "quarantined"
          ? `quarantined: this tab gets no requests (see Trust under Status)`
          : `ready: waiting for requests for ${model}`;
      break;
    case "paused":
      words = `paused: ${c?.headline ?? reasonWords(v.reason) ?? "paused"}`;
      break;
  }
  if (v.connection === "reconnecting" || v.connection === "connecting")
    words += " (connecting to the network…)";
  return words;
}

/** True while the GPU is doing work for Tabgrid (loading a model counts: it compiles shaders). */
export function gpuWorking(v: ContributorView | null, benchmarking: boolean): boolean {
  return benchmarking || v?.state === "busy" || v?.state === "loading";
}
