/** Entry point of `pnpm experiments` (see cli.ts for the flags). */
import { isExperimentsError } from './errors.js';
import { main } from './cli.js';

main(process.argv.slice(2)).catch((err: unknown) => {
  process.stderr.write(`experiments failed: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(isExperimentsError(err, 'EXPERIMENTS_BAD_ARGS') ? 2 : 1);
});
