/**
 * A cluster node as its own process, for tests and benchmarks (clusterFixture.ts's NodeProcess):
 * reads its {@link NodeConfig} from `CHORUS_NODE_CONFIG`, starts, and prints `NODE_READY <url>`.
 * SIGTERM closes it (releasing its leases); SIGKILL is a crash.
 */
import type { NodeConfig } from './clusterFixture.js';
import { startNode } from './clusterFixture.js';

const config = JSON.parse(process.env['CHORUS_NODE_CONFIG'] ?? '{}') as NodeConfig;
const node = await startNode(config);
process.stdout.write(`NODE_READY ${node.coordinator.url}\n`);
process.on('SIGTERM', () => {
  node.close().then(
    () => process.exit(0),
    () => process.exit(1),
  );
});
