import { defineConfig } from "vite";
import { embedBundles } from "./web/embed/vite-plugin.js";

/**
 * The contributor page: web/ is the Vite root, the build goes to dist/ (served by wrangler's static
 * assets), public/ is copied as-is to dist/'s root (the favicon; every file there is served, so it
 * holds nothing else). The engine Worker is emitted under a fixed name,
 * assets/engine-worker.js, so the browser test can route exactly that file to its deterministic
 * engine build; the page itself keeps hashed names for caching.
 */
export default defineConfig({
  root: "web",
  publicDir: "../public",
  build: {
    outDir: "../dist",
    emptyOutDir: true,
    target: "es2022",
    // The contributor page, and the headless frame that embed.js opens after consent.
    rolldownOptions: {
      input: {
        index: new URL("./web/index.html", import.meta.url).pathname,
        frame: new URL("./web/frame/index.html", import.meta.url).pathname,
        // The public status page at /status (web/status/).
        status: new URL("./web/status/index.html", import.meta.url).pathname,
        // The embed frame's consent window, where the frame cannot see its own visibility.
        consent: new URL("./web/consent/index.html", import.meta.url).pathname,
      },
    },
  },
  // embed.js and the SDK bundles (web/embed/vite-plugin.ts).
  plugins: [embedBundles()],
  worker: {
    format: "es",
    rolldownOptions: {
      output: {
        entryFileNames: (chunk) =>
          chunk.name === "engine-worker" ? "assets/engine-worker.js" : "assets/[name]-[hash].js",
      },
    },
  },
});
