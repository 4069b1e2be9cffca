import { defineConfig } from "vite";

/**
 * The contributor page: web/ is the Vite root, the build goes to dist/ (served by wrangler's static
 * assets), public/ is copied as-is. The engine Worker is emitted under a fixed name,
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
  },
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
