// The site is one page (index.html) whose router picks the view from the path, so the server
// answers /jobs/<id> and /view/... with index.html (see README.md).
import { defineConfig } from 'vite';

export default defineConfig({
  base: '/',
  // amazon-cognito-identity-js (sign-in) refers to Node's `global`; in a browser it is globalThis.
  define: { global: 'globalThis' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    // The viewer chunk carries the PlayCanvas engine; it is loaded only on /view.
    chunkSizeWarningLimit: 3000,
  },
});
