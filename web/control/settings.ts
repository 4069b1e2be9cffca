/**
 * The contributor's choices, persisted in the ledger database (web/ledger/) so they survive reloads.
 */
export interface ControlSettings {
  /** Share of wall time the GPU may work, 0.1..1: after a job of d ms the tab rests d·(1−s)/s ms. */
  gpuShare: number;
  /** Pause while the machine runs on battery; resume when it is charging again. */
  pauseOnBattery: boolean;
  /** Pause while the contributor is using this page (pointer or keyboard in the last minute). */
  pauseWhileActive: boolean;
}

export const DEFAULT_SETTINGS: ControlSettings = {
  gpuShare: 1,
  pauseOnBattery: true,
  pauseWhileActive: false,
};

export function normalizeSettings(raw: Partial<ControlSettings> | undefined): ControlSettings {
  const share = Number(raw?.gpuShare);
  return {
    gpuShare: Number.isFinite(share)
      ? Math.min(1, Math.max(0.1, share))
      : DEFAULT_SETTINGS.gpuShare,
    pauseOnBattery:
      typeof raw?.pauseOnBattery === "boolean"
        ? raw.pauseOnBattery
        : DEFAULT_SETTINGS.pauseOnBattery,
    pauseWhileActive:
      typeof raw?.pauseWhileActive === "boolean"
        ? raw.pauseWhileActive
        : DEFAULT_SETTINGS.pauseWhileActive,
  };
}

/** Rest after a job so the GPU works at most `share` of the time. */
export function restAfter(jobMs: number, share: number): number {
  const s = Math.min(1, Math.max(0.1, share));
  return Math.max(0, Math.round((jobMs * (1 - s)) / s));
}
