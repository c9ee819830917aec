// Builds the static page into dist/: app.js (src/main.js bundled with LiteRT.js by esbuild),
// index.html, style.css, and LiteRT.js's wasm files in dist/wasm/ (served by the page itself,
// never from a CDN). Run by `npm run build` after `npm ci`.
import {cpSync, mkdirSync, rmSync} from 'node:fs';
import {dirname, join} from 'node:path';
import {fileURLToPath} from 'node:url';

import {build} from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, 'dist');
rmSync(dist, {recursive: true, force: true});
mkdirSync(dist, {recursive: true});
await build({
  entryPoints: [join(here, 'src', 'main.js')],
  bundle: true,
  format: 'esm',
  target: 'es2022',
  outfile: join(dist, 'app.js'),
  sourcemap: true,
  logLevel: 'warning',
});
for (const file of ['index.html', 'style.css']) cpSync(join(here, 'src', file), join(dist, file));
cpSync(join(here, 'node_modules', '@litertjs', 'core', 'wasm'), join(dist, 'wasm'), {recursive: true});
console.log(`built ${dist}`);
