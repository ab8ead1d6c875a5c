/**
 * postinstall: rebuilds the install-time artifacts (Fashion-MNIST) when missing or stale.
 *   tsx scripts/ensure.ts [--data DIR]
 */
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';

import { ensureInstallArtifacts } from '../src/generate/ensure.js';
import { DEFAULT_DATA_DIR } from '../src/node.js';

const { values } = parseArgs({ options: { data: { type: 'string', default: DEFAULT_DATA_DIR } } });
if (!existsSync(join(values.data, 'manifest.json'))) {
  // Only a checkout that has never run build:data lacks the manifest; installing must still work there.
  console.warn('@chorus/datasets: no data/manifest.json yet; run `pnpm --filter @chorus/datasets build:data`');
  process.exit(0);
}
const started = process.hrtime.bigint();
try {
  const result = ensureInstallArtifacts(values.data);
  const seconds = (Number(process.hrtime.bigint() - started) / 1e9).toFixed(1);
  console.log(
    result.rebuilt.length === 0
      ? `@chorus/datasets: ${result.upToDate.length} install-time artifacts up to date (${seconds} s)`
      : `@chorus/datasets: rebuilt ${result.rebuilt.length} install-time artifacts (${seconds} s)`,
  );
} catch (err) {
  console.error(`@chorus/datasets: ${(err as Error).message}`);
  process.exit(1);
}
