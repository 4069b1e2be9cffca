import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { AdapterInfoSchema } from "../../shared/protocol/node-messages.js";
import { adapterInfo, detectGpu } from "./detect-gpu.js";

/** detectGpu against navigator-shaped objects: each way a browser can lack WebGPU. */
const secure = globalThis as { isSecureContext?: boolean };
let saved: boolean | undefined;
beforeEach(() => {
  saved = secure.isSecureContext;
  secure.isSecureContext = true;
});
afterEach(() => {
  secure.isSecureContext = saved;
});

function navigatorWith(gpu: unknown): Navigator {
  return { gpu } as unknown as Navigator;
}

const swiftshaderAdapter = {
  info: { vendor: "google", architecture: "swiftshader", description: "SwiftShader device" },
  features: new Set<string>(),
  limits: {
    maxBufferSize: 268435456,
    maxStorageBufferBindingSize: 134217728,
    maxComputeWorkgroupStorageSize: 16384,
  },
};

describe("detectGpu", () => {
  it("explains an insecure page", async () => {
    secure.isSecureContext = false;
    expect(await detectGpu(navigatorWith(undefined))).toMatchObject({
      ok: false,
      reason: "insecure_context",
    });
  });

  it("explains a browser without WebGPU", async () => {
    const d = await detectGpu(navigatorWith(undefined));
    expect(d).toMatchObject({ ok: false, reason: "no_webgpu" });
  });

  it("explains WebGPU without an adapter", async () => {
    const d = await detectGpu(navigatorWith({ requestAdapter: async () => null }));
    expect(d).toMatchObject({ ok: false, reason: "no_adapter" });
  });

  it("reports the adapter, its f16 support and limits", async () => {
    const d = await detectGpu(navigatorWith({ requestAdapter: async () => swiftshaderAdapter }));
    expect(d).toEqual({
      ok: true,
      gpu: {
        vendor: "google",
        architecture: "swiftshader",
        description: "SwiftShader device",
        shaderF16: false,
        maxBufferSize: 268435456,
        maxStorageBufferBindingSize: 134217728,
        maxComputeWorkgroupStorageSize: 16384,
        isFallbackAdapter: false,
      },
    });
    if (d.ok) expect(adapterInfo(d.gpu)).not.toHaveProperty("maxComputeWorkgroupStorageSize");
  });

  it("sends adapter strings the coordinator takes: control and bidi characters removed", async () => {
    const odd = {
      ...swiftshaderAdapter,
      info: { vendor: "ven\u0000dor", architecture: "arch\n", description: "\u202eRTX 4090\u2069" },
    };
    const d = await detectGpu(navigatorWith({ requestAdapter: async () => odd }));
    if (!d.ok) throw new Error(d.message);
    const info = adapterInfo(d.gpu);
    expect(info).toMatchObject({ vendor: "vendor", architecture: "arch", description: "RTX 4090" });
    expect(AdapterInfoSchema.safeParse(info).success).toBe(true);
  });
});
