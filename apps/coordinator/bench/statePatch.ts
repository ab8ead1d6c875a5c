/**
 * Strategy-state patch benchmark (not a test): what logging a round's strategy state as a patch of
 * the last (cluster/statePatch.ts, as cluster/replicatedStore.ts does) costs and saves, for newcomer
 * probation's state over N identities with 200 clients a round (a few of them new). For each N in
 * `--identities` (default 3000,20000), over `--rounds` rounds, prints as its LAST line one JSON object:
 *
 *   state_kb_N    — the state's JSON text (what an entry carried before);
 *   patch_kb_N    — the patch's JSON text (what it carries now);
 *   export_ms_N   — the engine's own part: the strategy's export and its JSON text, per round;
 *   leader_ms_N   — the leader's extra part: parsing the new state, the diff, its text and SHA-256;
 *   replica_ms_N  — another node's part: parsing the patch, applying it to the state it holds, the
 *                   new state's text and its SHA-256 check.
 *
 * Usage: pnpm bench:state-patch [--identities 3000,20000] [--rounds 30]
 */
import { createHash } from 'node:crypto';
import { parseArgs } from 'node:util';
import { FedAvg, Probation, tensor } from '@chorus/fl-core';
import { applyJsonPatch, diffJson } from '../src/cluster/statePatch.js';
import { encodeStrategyState } from '../src/engine/checkpoint.js';

const { values: args } = parseArgs({ options: { identities: { type: 'string', default: '3000,20000' }, rounds: { type: 'string', default: '30' } } });
const sizes = args.identities.split(',').map(Number);
const rounds = Number(args.rounds);
if (sizes.some((n) => !Number.isInteger(n) || n < 200) || !Number.isInteger(rounds) || rounds < 1) {
  console.error('--identities takes integers >= 200, --rounds an integer >= 1');
  process.exit(2);
}
const sha = (text: string): string => createHash('sha256').update(text).digest('hex');
const global = [tensor('image/w', [2], new Float32Array([0, 0]))];
const id = (i: number): string => `client-${i.toString(36).padStart(8, '0')}`;
const result: Record<string, number> = {};
for (const n of sizes) {
  const probation = new Probation(new FedAvg(), 5);
  probation.aggregateFit(
    1,
    global,
    Array.from({ length: n }, (_, i) => ({ clientId: id(i), numExamples: 1, delta: global })),
    [],
  );
  const first = encodeStrategyState('t', 1, probation.exportState()).json;
  let leaderHeld: unknown = JSON.parse(first);
  let replicaHeld: unknown = JSON.parse(first);
  const ms = { export: 0, leader: 0, replica: 0 };
  let stateBytes = 0;
  let patchBytes = 0;
  for (let r = 2; r < 2 + rounds; r++) {
    // 200 clients spread over the identities and a few beyond them (newcomers).
    const clients = Array.from({ length: 200 }, (_, i) => ({ clientId: id((r * 37 + i * 13) % (n + 100)), numExamples: 1, delta: global }));
    let started = performance.now();
    probation.aggregateFit(r, global, clients, []);
    const json = encodeStrategyState('t', r, probation.exportState()).json;
    ms.export += performance.now() - started;
    started = performance.now();
    const after = JSON.parse(json) as unknown;
    const patch = JSON.stringify(diffJson(leaderHeld, after));
    const digest = sha(json);
    leaderHeld = after;
    ms.leader += performance.now() - started;
    started = performance.now();
    const rebuilt = applyJsonPatch(replicaHeld, JSON.parse(patch));
    if (sha(JSON.stringify(rebuilt)) !== digest) throw new Error(`round ${r}: the rebuilt state is not the leader's`);
    replicaHeld = rebuilt;
    ms.replica += performance.now() - started;
    stateBytes = json.length;
    patchBytes = patch.length;
  }
  const perRound = (x: number): number => Number((x / rounds).toFixed(2));
  Object.assign(result, {
    [`state_kb_${n}`]: Number((stateBytes / 1024).toFixed(1)),
    [`patch_kb_${n}`]: Number((patchBytes / 1024).toFixed(1)),
    [`export_ms_${n}`]: perRound(ms.export),
    [`leader_ms_${n}`]: perRound(ms.leader),
    [`replica_ms_${n}`]: perRound(ms.replica),
  });
  console.log(
    `${n} identities: state ${result[`state_kb_${n}`]} KB, patch ${result[`patch_kb_${n}`]} KB; per round export ${result[`export_ms_${n}`]} ms, leader +${result[`leader_ms_${n}`]} ms, other node ${result[`replica_ms_${n}`]} ms`,
  );
}
console.log(JSON.stringify(result));
