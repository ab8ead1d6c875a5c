import { spawn } from 'node:child_process';
import { FakeClient } from './src/testing/fakeClient.js';
const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts', '--task', '/tmp/memcheck/task.yaml', '--data-dir', '/tmp/memcheck/data', '--port', '0', '--log-level', 'warn'], { env: { ...process.env, CHORUS_ADMIN_TOKEN: 'a', CHORUS_JOIN_TOKENS: 'mem=j' }, stdio: ['ignore', 'pipe', 'inherit'] });
const url: string = await new Promise((r) => { let out = ''; child.stdout!.on('data', (d) => { out += d; const m = /CHORUS_READY (.+)/.exec(out); if (m) r(JSON.parse(m[1]!).url); }); });
const rss = async () => { const t = await (await fetch(`${url}/metrics`)).text(); return Number(/chorus_process_resident_memory_bytes (\d+)/.exec(t)![1]) / 2 ** 20; };
process.on('uncaughtException', (e) => { console.error(e); child.kill('SIGKILL'); process.exit(1); });
console.log('idle rss MB', (await rss()).toFixed(1));
const clients: FakeClient[] = [];
for (const n of [500, 1000, 2000]) {
  while (clients.length < n) {
    const batch = await Promise.all(Array.from({ length: 50 }, () => FakeClient.connect(url, { taskId: 'mem', token: 'j' })));
    await Promise.all(batch.map((c) => c.hello({ backend: 'cpu', modalities: ['image'], numExamples: 1 })));
    clients.push(...batch);
    await new Promise((r) => setTimeout(r, 550));
  }
  await new Promise((r) => setTimeout(r, 1000));
  console.log(n, 'clients rss MB', (await rss()).toFixed(1));
}
for (const c of clients) c.close();
child.kill('SIGKILL');
process.exit(0);
