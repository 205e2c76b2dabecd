// The self-contained scene page (standalone.html): one HTML file with every script and style
// inlined, written beside the site's build as dist/standalone.html; the scene goes into its slot.
import { defineConfig } from 'vite';
import { viteSingleFile } from 'vite-plugin-singlefile';
import site from './vite.config.js';

export default defineConfig({
  plugins: [viteSingleFile()],
  // The same code as the site's (its viewer imports the sign-in module): the same definitions.
  define: site.define,
  build: {
    outDir: 'dist',
    emptyOutDir: false,
    chunkSizeWarningLimit: 5000,
    rollupOptions: { input: 'standalone.html' },
  },
});
