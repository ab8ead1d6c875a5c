import { describe, expect, it } from 'vitest';
import { sourceFromBytes, sourceFromText } from '@chorus/datasets';
import { corruptPng, digitOnePng, sineWav } from '../../test/fixtures.js';
import { DEMO_IMAGE_TARGET, loadOwnData } from './ownData.js';

describe('loadOwnData', () => {
  it('loads images from class folders and names every skipped file with its code', async () => {
    // Arrange
    const files = [sourceFromBytes('3/good.png', digitOnePng()), sourceFromBytes('3/broken.png', corruptPng()), sourceFromBytes('loose.png', digitOnePng())];

    // Act
    const summary = await loadOwnData(files, { modality: 'image', target: DEMO_IMAGE_TARGET });

    // Assert
    expect(summary.numFiles).toBe(3);
    expect(summary.numLoaded).toBe(1);
    expect(summary.classNames).toEqual(['3']);
    expect(summary.perClass).toEqual([1]);
    expect(summary.skipped.map((s) => [s.path, s.code])).toEqual([
      ['3/broken.png', 'LOADER_CORRUPT'],
      ['loose.png', 'LOADER_BAD_LABEL'],
    ]);
    const loaded = summary.loaded;
    if (loaded.modality !== 'image') throw new Error('expected images');
    const pixels = loaded.samples[0]!.pixels;
    expect(pixels).toHaveLength(28 * 28);
    expect(pixels[10 * 28 + 13]).toBeCloseTo(1, 6); // inside the bar
    expect(pixels[0]).toBe(0); // background
  });

  it('uses the task classes for label ids and counts samples per class', async () => {
    // Arrange
    const files = [sourceFromBytes('7/a.png', digitOnePng()), sourceFromBytes('7/b.png', digitOnePng()), sourceFromBytes('2/c.png', digitOnePng())];

    // Act
    const summary = await loadOwnData(files, { modality: 'image', target: DEMO_IMAGE_TARGET, classNames: ['0', '1', '2', '3', '4', '5', '6', '7', '8', '9'] });

    // Assert
    expect(summary.perClass).toEqual([0, 0, 1, 0, 0, 0, 0, 2, 0, 0]);
    expect(summary.skipped).toEqual([]);
  });

  it('loads labelled text rows and reports the empty one by file and line', async () => {
    // Arrange
    const files = [sourceFromText('mail.csv', 'text,label\nwin money now,spam\n,ham\nsee you at lunch,ham\n')];

    // Act
    const summary = await loadOwnData(files, { modality: 'text', textColumn: 'text', labelColumn: 'label' });

    // Assert
    expect(summary.numLoaded).toBe(2);
    expect(summary.classNames).toEqual(['ham', 'spam']);
    expect(summary.perClass).toEqual([1, 1]);
    expect(summary.skipped.map((s) => [s.path, s.code])).toEqual([['mail.csv:3', 'LOADER_EMPTY']]);
  });

  it('loads WAV clips at 16 kHz mono and skips a file that is not a WAV', async () => {
    // Arrange
    const files = [sourceFromBytes('yes/a.wav', sineWav(440, 16000, 0.5)), sourceFromBytes('yes/b.wav', new TextEncoder().encode('not a riff file'))];

    // Act
    const summary = await loadOwnData(files, { modality: 'audio' });

    // Assert
    expect(summary.numLoaded).toBe(1);
    const loaded = summary.loaded;
    if (loaded.modality !== 'audio') throw new Error('expected audio');
    expect(loaded.samples[0]!.samples).toHaveLength(8000);
    expect(Math.max(...loaded.samples[0]!.samples)).toBeCloseTo(0.5, 3);
    expect(summary.skipped.map((s) => s.path)).toEqual(['yes/b.wav']);
  });
});
