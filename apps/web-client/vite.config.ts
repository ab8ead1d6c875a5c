/**
 * Vite build of the web app. The WASM backend's binaries are emitted under /tfjs-wasm/ (the app calls
 * setWasmPaths with that path); the built-in dataset artifacts are not bundled — the coordinator,
 * `vite dev` and `vite preview` serve them under /data/ with Range support.
 */
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import react from '@vitejs/plugin-react';
import { defineConfig, type Plugin } from 'vite';
import { TFJS_WASM_DIST, WASM_PREFIX, assetMiddleware } from './dev/static.js';

function chorusAssets(): Plugin {
  return {
    name: 'chorus-assets',
    configureServer(server) {
      server.middlewares.use(assetMiddleware);
    },
    configurePreviewServer(server) {
      server.middlewares.use(assetMiddleware);
    },
    generateBundle() {
      for (const name of readdirSync(TFJS_WASM_DIST).filter((f) => f.endsWith('.wasm'))) {
        this.emitFile({ type: 'asset', fileName: `${WASM_PREFIX.slice(1)}${name}`, source: readFileSync(join(TFJS_WASM_DIST, name)) });
      }
    },
  };
}

export default defineConfig({
  plugins: [react(), chorusAssets()],
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // TF.js alone is over a megabyte minified; the app is one page, so a single large chunk is expected.
    chunkSizeWarningLimit: 4096,
  },
});
