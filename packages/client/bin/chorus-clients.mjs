#!/usr/bin/env node
// Runs the TypeScript CLI through tsx's loader, so the package needs no build step.
import { register } from 'tsx/esm/api';

register();
process.argv[1] = new URL('../src/node/cli.ts', import.meta.url).pathname;
await import('../src/node/cli.ts');
