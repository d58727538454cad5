import { defineConfig, type Plugin } from 'vite';
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

// Writes dist/sw.js from src/sw.js with the list of every built file (the app
// shell) and a version made from their contents, so a new build replaces the cache.
function serviceWorker(): Plugin {
  let outDir = 'dist';
  return {
    name: 'babysync-service-worker',
    apply: 'build',
    configResolved(c) {
      outDir = c.build.outDir;
    },
    writeBundle() {
      const files: string[] = [];
      const walk = (dir: string) => {
        for (const name of readdirSync(dir)) {
          const p = join(dir, name);
          if (statSync(p).isDirectory()) walk(p);
          else if (name !== 'sw.js') files.push(relative(outDir, p).split('\\').join('/'));
        }
      };
      walk(outDir);
      files.sort();
      const hash = createHash('sha256');
      for (const f of files) hash.update(f).update(readFileSync(join(outDir, f)));
      const template = readFileSync(fileURLToPath(new URL('./src/sw.js', import.meta.url)), 'utf8');
      const sw = template
        .replace('__VERSION__', JSON.stringify(hash.digest('hex').slice(0, 16)))
        .replace('__SHELL__', JSON.stringify(['./', ...files]));
      writeFileSync(join(outDir, 'sw.js'), sw);
    },
  };
}

export default defineConfig({
  base: './',
  // The SDK is used from its source (no build step, no dist/ needed in a fresh clone).
  resolve: { alias: { '@babysync/client': fileURLToPath(new URL('../typescript/src/index.ts', import.meta.url)) } },
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  server: { fs: { allow: ['..'] } },
  plugins: [serviceWorker()],
});
