// Builds the recipe's two published forms from its one source, examples/browser/src/listener.js:
//   split-evaluation-listener.js   classic script (defines window.createFullStoryImpressionListener)
//   split-evaluation-listener.mjs  ES module (exports createFullStoryImpressionListener)
// Plain text wrapping, no bundler: the published files stay readable and keep the usage comment.
//   node examples/browser/build.mjs           write both files
//   node examples/browser/build.mjs --check   exit 1 if a committed file differs from the build
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const source = readFileSync(join(here, 'src', 'listener.js'), 'utf8');

const headerEnd = source.indexOf('*/') + 2;
if (!source.startsWith('/*') || headerEnd < 2) throw new Error('src/listener.js must start with its usage comment');
const header = source.slice(0, headerEnd);
const body = source.slice(headerEnd).trim();
const generated =
  '// Generated from examples/browser/src/listener.js by examples/browser/build.mjs: edit that file, not this one.';
const findRoot = "typeof window !== 'undefined' ? window : globalThis";
const indent = (text) => text.split('\n').map((line) => (line ? '  ' + line : line)).join('\n');

export const forms = {
  'split-evaluation-listener.js': [
    header,
    generated,
    '(function (root) {',
    "  'use strict';",
    '',
    indent(body),
    '',
    '  root.createFullStoryImpressionListener = createFullStoryImpressionListener;',
    "  if (typeof module !== 'undefined' && module.exports) {",
    '    module.exports = { createFullStoryImpressionListener: createFullStoryImpressionListener };',
    '  }',
    `})(${findRoot});`,
    '',
  ].join('\n'),
  'split-evaluation-listener.mjs': [
    header,
    generated,
    `var root = ${findRoot};`,
    '',
    body,
    '',
    'export { createFullStoryImpressionListener };',
    '',
  ].join('\n'),
};

const check = process.argv.includes('--check');
let stale = 0;
for (const [name, text] of Object.entries(forms)) {
  const path = join(here, name);
  if (!check) {
    writeFileSync(path, text);
    continue;
  }
  let committed = null;
  try {
    committed = readFileSync(path, 'utf8');
  } catch {
    // missing: reported below
  }
  if (committed !== text) {
    stale += 1;
    process.stderr.write(`examples/browser/${name} is not the build of src/listener.js: run node examples/browser/build.mjs\n`);
  }
}
process.exitCode = stale ? 1 : 0;
