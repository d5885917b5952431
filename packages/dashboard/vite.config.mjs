// Builds the dashboard into dist/web, the static files the primary serves at /.
import preact from "@preact/preset-vite";
import { defineConfig } from "vite";

export default defineConfig({
  plugins: [preact()],
  base: "./",
  build: {
    outDir: "dist/web",
    emptyOutDir: true,
    // Everything the page needs is in these files: no CDN, no web fonts.
    assetsInlineLimit: 0,
    sourcemap: false,
    target: "es2022",
  },
  logLevel: "warn",
});
