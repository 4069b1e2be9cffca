/**
 * What a site owner sets on the script tag:
 *   <script src="https://<coordinator>/embed.js" async
 *     data-mode="contribute|api|both" data-models="id1,id2" data-gpu-share="50"
 *     data-position="bottom-right|bottom-left" data-theme="auto|light|dark"></script>
 */
export interface EmbedConfig {
  origin: string;
  mode: { contribute: boolean; api: boolean };
  models: string[];
  gpuShare: number;
  position: "bottom-right" | "bottom-left";
  theme: "auto" | "light" | "dark";
}

export function readConfig(script: HTMLScriptElement): EmbedConfig {
  const d = script.dataset;
  const mode = d.mode === "api" || d.mode === "both" ? d.mode : "contribute";
  const share = Number(d.gpuShare);
  return {
    origin: new URL(script.src).origin,
    mode: { contribute: mode !== "api", api: mode !== "contribute" },
    models: (d.models ?? "")
      .split(",")
      .map((m) => m.trim())
      .filter(Boolean)
      .slice(0, 32),
    gpuShare: Number.isInteger(share) && share >= 1 && share <= 100 ? share : 50,
    position: d.position === "bottom-left" ? "bottom-left" : "bottom-right",
    theme: d.theme === "light" || d.theme === "dark" ? d.theme : "auto",
  };
}
