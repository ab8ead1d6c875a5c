/**
 * Benchmark of the demo digits model (not a test). Prints human-readable lines, then as its last
 * line one JSON object:
 *   lora_step_vs_full_step — mean time of a LoRA + NAM train step ÷ a full fine-tuning step of the
 *                            same model on the same batch (same run, interleaved blocks), on the wasm
 *                            backend at batch 32 (the encoders' PortableConv2D layers train there);
 *                            the same ratio on the cpu backend at batch 8 is reported as
 *                            lora_step_vs_full_step_cpu;
 *   adapter_bytes_vs_full  — float32 bytes of one client's adapter update (all three modalities)
 *                            ÷ float32 bytes of the full model (text embedding table excluded);
 *   steps_per_s_wasm       — LoRA + NAM train steps per second at batch 32 on the wasm backend.
 * Inputs are synthetic tensors of the demo's shapes: timing and sizes do not depend on the values.
 * Usage: pnpm bench:models [--steps N]
 */
import * as tf from '@tensorflow/tfjs';
import '@tensorflow/tfjs-backend-wasm';
import { LogMelFrontend, MultimodalModel, TextEmbedder, type MultimodalBatch } from '../src/index.js';
import { DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL, DIGITS_NUM_CLASSES, buildDigitsEncoders } from '../src/demo.js';

const WASM_BATCH = 32;
// The cpu backend's kernels are plain JavaScript loops, so its extra figures use a smaller batch.
const CPU_BATCH = 8;
const stepsArg = process.argv.indexOf('--steps');
const STEPS = stepsArg > 0 ? Number(process.argv[stepsArg + 1]) : 10;

function mean(xs: number[]): number {
  return xs.reduce((a, b) => a + b, 0) / xs.length;
}

interface Phase {
  loraMs: number[];
  fullMs: number[];
  fullError: string | null;
  adapterScalars: number;
  fullScalars: number;
  perModality: Record<string, number>;
  logMelMs: number;
}

/** Builds the demo model on `backend` and times LoRA+NAM steps, then (if `fullSteps` > 0) full steps, in interleaved blocks. */
async function phase(backend: string, batchSize: number, loraSteps: number, fullSteps: number): Promise<Phase> {
  const BATCH = batchSize;
  if (!(await tf.setBackend(backend))) throw new Error(`${backend} backend failed to initialise`);
  await tf.ready();
  const vocab = 20000;
  const table = new Float32Array(vocab * 100);
  for (let i = 100; i < table.length; i++) table[i] = Math.sin(i * 0.37) * 0.5;
  const embedder = new TextEmbedder(table, 100);
  const bases = buildDigitsEncoders(1);
  const model = new MultimodalModel({
    numClasses: DIGITS_NUM_CLASSES,
    encoders: { image: { base: bases.image }, text: { base: bases.text }, audio: { base: bases.audio } },
    textEmbedder: embedder,
    conceptDim: 8,
    namHiddenUnits: 8,
    loraRank: 4,
    loraAlpha: 8,
  });
  Object.values(bases).forEach((b) => b.dispose());

  const frontend = new LogMelFrontend(DIGITS_AUDIO_SAMPLES, DIGITS_LOG_MEL);
  const pcm = tf.randomNormal([BATCH, DIGITS_AUDIO_SAMPLES], 0, 0.1, 'float32', 3);
  const t0 = performance.now();
  const logMel = frontend.compute(pcm);
  logMel.dataSync();
  const logMelMs = performance.now() - t0;
  const ids = new Int32Array(BATCH * DIGITS_CAPTION_TOKENS);
  for (let i = 0; i < ids.length; i++) ids[i] = i % DIGITS_CAPTION_TOKENS < 6 ? 2 + ((i * 7919) % (vocab - 2)) : 0;
  const batch: MultimodalBatch = {
    image: tf.randomUniform([BATCH, 28, 28, 1], 0, 1, 'float32', 1),
    text: tf.tensor2d(ids, [BATCH, DIGITS_CAPTION_TOKENS], 'int32'),
    audio: logMel,
    labels: tf.tensor1d(
      Array.from({ length: BATCH }, (_, i) => i % DIGITS_NUM_CLASSES),
      'int32',
    ),
  };
  const time = (mode: 'adapters' | 'full', n: number): number[] => {
    const out: number[] = [];
    for (let i = 0; i < n; i++) {
      const start = performance.now();
      model.trainStep(batch, { mode });
      out.push(performance.now() - start);
    }
    return out;
  };
  const loraMs: number[] = [];
  const fullMs: number[] = [];
  let fullError: string | null = null;
  time('adapters', 1);
  if (fullSteps > 0) {
    try {
      time('full', 1);
    } catch (err) {
      fullError = (err as Error).message.split('\n')[0]!;
    }
  }
  // Interleave two blocks of each so drift (thermal, GC) hits both modes alike.
  for (let b = 0; b < 2; b++) {
    loraMs.push(...time('adapters', Math.ceil(loraSteps / 2)));
    if (fullSteps > 0 && fullError === null) fullMs.push(...time('full', Math.ceil(fullSteps / 2)));
  }
  const result: Phase = {
    loraMs,
    fullMs,
    fullError,
    adapterScalars: model.adapterParameterCount(),
    fullScalars: model.fullParameterCount(),
    perModality: Object.fromEntries(model.modalities.map((m) => [m, model.adapterParameterCount([m, 'fusion'])])),
    logMelMs,
  };
  model.dispose();
  frontend.dispose();
  embedder.dispose();
  tf.dispose([pcm, ...(Object.values(batch) as tf.Tensor[])]);
  return result;
}

async function main(): Promise<void> {
  const wasm = await phase('wasm', WASM_BATCH, STEPS, STEPS);
  const cpu = await phase('cpu', CPU_BATCH, 2, 2);
  for (const [name, p] of [
    ['wasm', wasm],
    ['cpu', cpu],
  ] as const)
    if (p.fullError !== null) throw new Error(`full fine-tuning failed on ${name}: ${p.fullError}`);
  const ratio = mean(wasm.loraMs) / mean(wasm.fullMs);
  const ratioCpu = mean(cpu.loraMs) / mean(cpu.fullMs);
  console.log(
    `wasm, batch ${WASM_BATCH}: LoRA+NAM step ${mean(wasm.loraMs).toFixed(1)} ms, full fine-tuning step ${mean(wasm.fullMs).toFixed(1)} ms (${wasm.loraMs.length} + ${wasm.fullMs.length} steps)`,
  );
  console.log(
    `cpu, batch ${CPU_BATCH}: LoRA+NAM step ${mean(cpu.loraMs).toFixed(1)} ms, full fine-tuning step ${mean(cpu.fullMs).toFixed(1)} ms (${cpu.loraMs.length} + ${cpu.fullMs.length} steps)`,
  );
  console.log(`log-mel front end on wasm: ${wasm.logMelMs.toFixed(1)} ms per batch (computed once per dataset, outside the step)`);
  console.log(
    `full model ${wasm.fullScalars} scalars (${((wasm.fullScalars * 4) / 1e6).toFixed(2)} MB float32); adapter update ${wasm.adapterScalars} scalars; single-modality clients: ${JSON.stringify(wasm.perModality)}`,
  );
  console.log(
    JSON.stringify({
      lora_step_vs_full_step: Number(ratio.toFixed(4)),
      adapter_bytes_vs_full: Number((wasm.adapterScalars / wasm.fullScalars).toFixed(5)),
      steps_per_s_wasm: Number((1000 / mean(wasm.loraMs)).toFixed(3)),
      ratio_backend: 'wasm',
      ratio_batch: WASM_BATCH,
      lora_step_ms_wasm: Number(mean(wasm.loraMs).toFixed(1)),
      full_step_ms_wasm: Number(mean(wasm.fullMs).toFixed(1)),
      lora_step_vs_full_step_cpu: Number(ratioCpu.toFixed(4)),
      lora_step_ms_cpu: Number(mean(cpu.loraMs).toFixed(1)),
      full_step_ms_cpu: Number(mean(cpu.fullMs).toFixed(1)),
      cpu_batch: CPU_BATCH,
      adapter_bytes: wasm.adapterScalars * 4,
      full_model_bytes: wasm.fullScalars * 4,
    }),
  );
}

await main();
