/**
 * fashion-mm end to end: a tiny `simulate` run (3 in-process clients with their own caption/SNR
 * profiles and modality subsets, 2 rounds of FedMM-X over FLTrust) on the built-in fashion-mm benchmark, with the
 * coordinator evaluating on the test split, probing on public/probe and training its root update
 * on public/root.
 */
import { openBuiltin, publicPartIndices, readManifest } from '@chorus/datasets';
import { fileSource } from '@chorus/datasets/node';
import { describe, expect, it } from 'vitest';
import { parseTask } from '../task/loadTask.js';
import { runSimulation } from './simulate.js';

const task = parseTask({
  id: 'fashion-mm-e2e',
  dataset: { name: 'fashion-mm', modalities: ['image', 'text', 'audio'] },
  model: { base: 'chorus-digits-v1', adapterRank: 2, adapterAlpha: 4, namConcepts: 4 },
  strategy: { name: 'fedmm-x', inner: { name: 'fltrust', rootExamples: 8 } },
  evaluation: { probeExamples: 8, testExamples: 16 },
  rounds: 2,
  clientsPerRound: 3,
  minClients: 3,
  overSelection: 0,
  roundDeadlineMs: 120_000,
  localEpochs: 1,
  batchSize: 8,
  learningRate: 0.05,
  maxUpdateBytes: 4_194_304,
  seed: 3,
});

describe('fashion-mm simulation', () => {
  it('runs 2 rounds with 3 clients to the end, evaluated by the coordinator on the test split', { timeout: 240_000 }, async () => {
    // Act
    const report = await runSimulation({
      task,
      numClients: 3,
      clientArgs: ['--iid', '--max-examples', '12', '--seed', '4', '--modality-kinds', 'image+text+audio=0.67,text+audio=0.33', '--eval-examples', '8'],
      testExamples: 0,
    });
    // Assert
    expect(report.status).toBe('finished');
    expect(report.completedRounds).toBe(2);
    for (const round of report.rounds) {
      expect(round.testAccuracy).toBeGreaterThanOrEqual(0);
      expect(round.testAccuracy).toBeLessThanOrEqual(1);
      expect(round.metrics['eval.numExamples']).toBe(16);
      expect(round.metrics['rootUpdateMs']).toBeGreaterThan(0);
      expect(round.metrics['probeMs']).toBeGreaterThan(0);
      expect(round.metrics['strategy.clients:image']).toBe(2);
    }
  });

  it('offers disjoint probe and root parts of the public split', async () => {
    const source = fileSource();
    const manifest = await readManifest(source);
    const probe = publicPartIndices(manifest, 'fashion-mm', 'probe')!;
    const root = publicPartIndices(manifest, 'fashion-mm', 'root')!;
    const split = await openBuiltin(source, manifest, 'fashion-mm', 'public');

    expect(probe.length).toBeGreaterThanOrEqual(8);
    expect(root.length).toBeGreaterThanOrEqual(8);
    expect(probe.length + root.length).toBe(split.numExamples);
    expect(new Set([...probe, ...root]).size).toBe(split.numExamples);
    expect(publicPartIndices(manifest, 'digits', 'probe')).toBeNull();
  });
});
