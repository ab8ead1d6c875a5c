import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseCliArgs } from '@chorus/client/node';
import { describe, expect, it } from 'vitest';
import { demoClientArgs } from './demoClients.js';
import { readTaskFile } from './task/loadTask.js';

const tasksDir = join(dirname(fileURLToPath(import.meta.url)), '..', 'tasks');
const options = { url: 'http://127.0.0.1:8787', numClients: 3, maxExamples: 300 };

describe('demoClientArgs', () => {
  it("gives a weight task's demo clients its modalities, as many clients as asked", () => {
    // Act
    const { numClients, args } = demoClientArgs(readTaskFile(join(tasksDir, 'demo-digits.yaml')), options);
    const cli = parseCliArgs(args, {});
    // Assert
    expect(numClients).toBe(3);
    expect(cli).toMatchObject({
      taskId: 'demo-digits',
      numClients: 3,
      dataset: 'digits',
      scheme: 'dirichlet',
      maxExamplesPerClient: 300,
      fedafdKinds: undefined,
    });
    expect(cli.modalities).toEqual(readTaskFile(join(tasksDir, 'demo-digits.yaml')).dataset.modalities);
  });

  it("gives a representation task's demo clients the task's client mix, at least one client per kind", () => {
    // Arrange
    const task = readTaskFile(join(tasksDir, 'fedafd-digits.yaml'));
    // Act
    const { numClients, args } = demoClientArgs(task, options);
    const cli = parseCliArgs(args, {});
    // Assert: four kinds, so four clients where three were asked for; the mix reads back as the task holds it.
    expect(numClients).toBe(4);
    expect(cli).toMatchObject({ taskId: 'fedafd-digits', numClients: 4, scheme: 'dirichlet', modalities: undefined });
    expect(cli.fedafdKinds).toEqual(task.representation!.clientKinds);
    expect(demoClientArgs(task, { ...options, numClients: 6 }).numClients).toBe(6);
  });
});
