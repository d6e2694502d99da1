// Builds the web UI into dist/: one hashed JS and CSS bundle and an index.html that names
// them. `sandlab serve` embeds dist/ at compile time (crates/sandlab-server/build.rs).
//   node build.mjs           production build (minified, source maps beside)
//   node build.mjs --watch   rebuild on change (for working on the UI against a running serve)
//   node build.mjs --unit    bundle src/**/*.test.ts for `node --test` into dist-test/
import { readdirSync, rmSync, mkdirSync, writeFileSync, readFileSync, statSync } from 'node:fs';
import { join, basename } from 'node:path';
import * as esbuild from 'esbuild';

const args = new Set(process.argv.slice(2));

function testFiles(dir) {
  return readdirSync(dir).flatMap((n) => {
    const p = join(dir, n);
    if (statSync(p).isDirectory()) return testFiles(p);
    return n.endsWith('.test.ts') ? [p] : [];
  });
}

if (args.has('--unit')) {
  rmSync('dist-test', { recursive: true, force: true });
  await esbuild.build({
    entryPoints: testFiles('src'),
    bundle: true,
    platform: 'node',
    format: 'esm',
    outdir: 'dist-test',
    outExtension: { '.js': '.mjs' },
    jsx: 'automatic',
    jsxImportSource: 'preact',
    logLevel: 'warning',
  });
  process.exit(0);
}

const options = {
  entryPoints: { app: 'src/main.tsx' },
  bundle: true,
  format: 'esm',
  target: ['chrome109', 'firefox115', 'safari16'],
  outdir: 'dist/assets',
  entryNames: '[name]-[hash]',
  chunkNames: 'chunk-[hash]',
  splitting: true,
  assetNames: '[name]-[hash]',
  loader: { '.woff2': 'file', '.svg': 'file' },
  jsx: 'automatic',
  jsxImportSource: 'preact',
  minify: !args.has('--watch'),
  sourcemap: args.has('--watch') ? 'linked' : 'external',
  metafile: true,
  legalComments: 'linked',
  logLevel: 'warning',
};

function writeIndex(meta) {
  const outs = Object.keys(meta.outputs);
  const js = outs.find((o) => /\/app-[^/]*\.js$/.test(o));
  const css = outs.find((o) => /\/app-[^/]*\.css$/.test(o));
  if (outs.some((o) => /\/chunk-[^/]*\.css$/.test(o))) {
    throw new Error('a lazily loaded module imports CSS, which nothing would load: import it from an eager module');
  }
  // Chunks the entry imports statically are fetched at once, not after the entry parses.
  const preload = meta.outputs[js].imports
    .filter((i) => i.kind === 'import-statement')
    .map((i) => `<link rel="modulepreload" href="/assets/${basename(i.path)}">`)
    .join('\n  ');
  const html = readFileSync('index.html', 'utf8')
    .replace('<!--css-->', css ? `<link rel="stylesheet" href="/assets/${basename(css)}">` : '')
    .replace('<!--js-->', `${preload}\n  <script type="module" src="/assets/${basename(js)}"></script>`);
  writeFileSync('dist/index.html', html);
}

rmSync('dist', { recursive: true, force: true });
mkdirSync('dist/assets', { recursive: true });
if (args.has('--watch')) {
  const ctx = await esbuild.context({
    ...options,
    plugins: [{ name: 'index', setup: (b) => b.onEnd((r) => r.metafile && writeIndex(r.metafile)) }],
  });
  await ctx.watch();
  console.log('watching src/ (dist/ is rebuilt on change; serve reads it with SANDLAB_WEB_DIR=web/dist)');
} else {
  const result = await esbuild.build(options);
  writeIndex(result.metafile);
  const size = Object.entries(result.metafile.outputs)
    .filter(([p]) => !p.endsWith('.map'))
    .reduce((n, [, o]) => n + o.bytes, 0);
  console.log(`web UI built into dist/ (${(size / 1024).toFixed(0)} KiB without source maps)`);
}
