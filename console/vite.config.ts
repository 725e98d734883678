// The console is built into the Python package (src/eventrelay/console/), which `eventrelay
// serve` serves at / (index) and /console/ (assets): no CDN, no Node.js at run time.
import react from "@vitejs/plugin-react";
import { defineConfig } from "vitest/config";

export default defineConfig({
  plugins: [react()],
  base: "/console/",
  build: {
    outDir: "../src/eventrelay/console",
    emptyOutDir: true,
    chunkSizeWarningLimit: 2000,
  },
  test: { environment: "node", include: ["src/**/*.test.ts"] },
});
