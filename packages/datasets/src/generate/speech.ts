/**
 * Spoken digits synthesized with espeak-ng and converted by SoX to 16 kHz mono int16 with leading and
 * trailing silence trimmed. `sox -R` makes dither and resampling repeatable, and every espeak-ng
 * option that changes the waveform is pinned, so the same speaker and word give the same samples.
 */

import { execFileSync, spawn } from 'node:child_process';

import { DatasetError } from '../errors.js';

/** Output sample rate of every clip. */
export const SAMPLE_RATE = 16_000;
/** Clips longer than this are cut (a slow speaker saying "seven" stays well under it). */
export const MAX_CLIP_SAMPLES = 24_000;

/** espeak-ng settings that define one synthetic speaker. */
export interface VoiceSettings {
  readonly voice: string;
  readonly variant: string;
  /** Words per minute. */
  readonly speed: number;
  /** 0..99. */
  readonly pitch: number;
}

/** The exact espeak-ng arguments used for `word` (exported so the README and tests can show them). */
export function espeakArgs(settings: VoiceSettings, word: string): string[] {
  return ['-v', `${settings.voice}+${settings.variant}`, '-s', String(settings.speed), '-p', String(settings.pitch), '-a', '100', '-g', '0', '--stdout', word];
}

const SOX_ARGS = [
  '-R',
  '-t',
  'wav',
  '-',
  '-t',
  'raw',
  '-r',
  String(SAMPLE_RATE),
  '-e',
  'signed-integer',
  '-b',
  '16',
  '-c',
  '1',
  '-L',
  '-',
  // Trim leading silence, reverse, trim again (the trailing silence), reverse back.
  'silence',
  '1',
  '0.01',
  '0.5%',
  'reverse',
  'silence',
  '1',
  '0.01',
  '0.5%',
  'reverse',
];

/** Versions of the two tools, for the manifest (audio is only reproducible with the same ones). */
export function synthesizerVersions(): string {
  try {
    const espeak = execFileSync('espeak-ng', ['--version'], { encoding: 'utf8' })
      .split(/\s+Data at/)[0]!
      .trim();
    const sox = execFileSync('sox', ['--version'], { encoding: 'utf8' })
      .trim()
      .replace(/^sox:\s*/, '');
    return `${espeak}; ${sox}`;
  } catch {
    throw new DatasetError('GENERATOR_FAILED', 'espeak-ng and sox must be installed (apt-get install espeak-ng sox)');
  }
}

/** Synthesizes `word` with `settings`; resolves to 16 kHz mono int16 samples, silence trimmed. */
export function synthesize(settings: VoiceSettings, word: string): Promise<Int16Array> {
  return new Promise((resolve, reject) => {
    const espeak = spawn('espeak-ng', espeakArgs(settings, word), { stdio: ['ignore', 'pipe', 'pipe'] });
    const sox = spawn('sox', SOX_ARGS, { stdio: ['pipe', 'pipe', 'pipe'] });
    espeak.stdout.pipe(sox.stdin);
    const out: Buffer[] = [];
    const errors: string[] = [];
    sox.stdout.on('data', (b: Buffer) => out.push(b));
    espeak.stderr.on('data', (b: Buffer) => errors.push(b.toString()));
    sox.stderr.on('data', (b: Buffer) => errors.push(b.toString()));
    const failed = (why: string): void =>
      reject(new DatasetError('GENERATOR_FAILED', `synthesize ${JSON.stringify(word)} (${settings.voice}+${settings.variant}): ${why}`));
    espeak.on('error', (err) => failed(err.message));
    sox.on('error', (err) => failed(err.message));
    espeak.on('close', (code) => {
      if (code !== 0) failed(`espeak-ng exited ${String(code)}: ${errors.join('')}`);
    });
    sox.on('close', (code) => {
      if (code !== 0) return failed(`sox exited ${String(code)}: ${errors.join('')}`);
      const bytes = Buffer.concat(out);
      const n = Math.min(Math.floor(bytes.length / 2), MAX_CLIP_SAMPLES);
      if (n === 0) return failed('empty clip');
      const samples = new Int16Array(n);
      for (let i = 0; i < n; i++) samples[i] = bytes.readInt16LE(2 * i);
      resolve(samples);
    });
  });
}
