/**
 * Where a coordinator's memory goes when it builds the demo task's model (not a test): prints
 * process.memoryUsage() (rss, heapUsed, external, arrayBuffers) and the TF.js WASM heap after each
 * stage — backend start, TaskModel.create, one probe, one evaluation — then one JSON line.
 *
 * Usage: tsx bench/taskModelMemory.ts [path to a task YAML; default tasks/demo-digits.yaml]
 */
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as tf from '@tensorflow/tfjs';
import { TaskModel, ensureWasmBackend } from '../src/model/taskModel.js';
import { readTaskFile } from '../src/task/loadTask.js';

const packageRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const taskPath = process.argv[2] ?? join(packageRoot, 'tasks', 'demo-digits.yaml');

/** Size of the WASM backend's linear memory in MB (0 when another backend is active). */
function wasmHeapMb(): number {
  const backend = tf.backend() as unknown as { wasm?: { HEAPU8?: Uint8Array } };
  return (backend.wasm?.HEAPU8?.byteLength ?? 0) / 2 ** 20;
}

const stages: Record<string, Record<string, number>> = {};
function record(stage: string): void {
  const m = process.memoryUsage();
  const row = {
    rssMb: m.rss / 2 ** 20,
    heapUsedMb: m.heapUsed / 2 ** 20,
    externalMb: m.external / 2 ** 20,
    arrayBuffersMb: m.arrayBuffers / 2 ** 20,
    wasmHeapMb: wasmHeapMb(),
    numTensors: tf.memory().numTensors,
    tensorMb: tf.memory().numBytes / 2 ** 20,
  };
  stages[stage] = Object.fromEntries(Object.entries(row).map(([k, v]) => [k, Number(v.toFixed(1))]));
  console.log(
    stage.padEnd(14),
    Object.entries(stages[stage]!)
      .map(([k, v]) => `${k}=${v}`)
      .join(' '),
  );
}

record('start');
const task = readTaskFile(taskPath);
await ensureWasmBackend();
record('wasm-ready');
const model = await TaskModel.create(task);
record('created');
const initial = model.initialParameters();
model.probe(initial);
record('probed');
model.evaluate(initial);
record('evaluated');
console.log(JSON.stringify({ task: task.id, stages }));
