/**
 * What a task asks of a client's model, beyond the global adapters: its classes, the modalities it
 * trains, and, for a task that brings its own frozen encoders, each encoder's files (with their
 * SHA-256, which the client checks before loading them), the layers that take LoRA adapters and the
 * input spec that turns raw files into the encoder's input. The coordinator serves it to join-token
 * holders as JSON at `GET /api/tasks/:id/spec`, and the files at `GET /api/tasks/:id/files/<path>`.
 *
 * The input specs are the one definition of a task's preprocessing: the task file names them, the
 * coordinator's evaluator, the headless client and the tab all read them from here.
 */
import { MODALITIES } from '@chorus/fl-core';
import { z } from 'zod';
import { MODEL_HEADS } from './protocol.js';

/** Largest image side an input spec may ask for. */
export const MAX_IMAGE_SIDE = 1024;
/** Most tokens a text input spec may keep per text. */
export const MAX_TEXT_TOKENS = 1024;
/** Most classes a task may name. */
export const MAX_CLASSES = 1000;

const positiveInt = z.number().int().positive();

/**
 * Image input: every image is resized to `height` × `width` with `channels` (1 grey, 3 RGB), scaled
 * to [0, 1], then normalised per channel as (x − mean) / std.
 */
export const imageInputSchema = z
  .strictObject({
    height: positiveInt.max(MAX_IMAGE_SIDE),
    width: positiveInt.max(MAX_IMAGE_SIDE),
    channels: z.union([z.literal(1), z.literal(3)]),
    mean: z.array(z.number().finite()).min(1).max(3).optional(),
    std: z.array(z.number().positive().finite()).min(1).max(3).optional(),
  })
  .superRefine((spec, ctx) => {
    for (const key of ['mean', 'std'] as const) {
      const values = spec[key];
      if (values && values.length !== spec.channels)
        ctx.addIssue({ code: 'custom', path: [key], message: `needs one value per channel (${spec.channels}), got ${values.length}` });
    }
  });
/** See {@link imageInputSchema}. */
export type ImageInputSpec = z.output<typeof imageInputSchema>;

/**
 * Text input: lower-cased words (split on anything that is not a letter, digit or apostrophe)
 * looked up in the task's vocabulary, the first `maxTokens` kept (unknown words dropped), embedded
 * by the task's word-vector table and mean-pooled over the words present.
 */
export const textInputSchema = z.strictObject({
  maxTokens: positiveInt.max(MAX_TEXT_TOKENS),
});
/** See {@link textInputSchema}. */
export type TextInputSpec = z.output<typeof textInputSchema>;

/**
 * Audio input: every clip is brought to mono at `sampleRate`, cropped or zero-padded to
 * `clipSamples`, and turned into a [frames, numMels] log-mel spectrogram.
 */
export const audioInputSchema = z
  .strictObject({
    sampleRate: z.number().int().min(1000).max(384_000),
    clipSamples: positiveInt.max(10_000_000),
    frameLength: positiveInt.max(65_536),
    hopLength: positiveInt.max(65_536),
    fftLength: positiveInt.max(65_536),
    numMels: positiveInt.max(512),
  })
  .superRefine((spec, ctx) => {
    if (spec.fftLength < spec.frameLength)
      ctx.addIssue({ code: 'custom', path: ['fftLength'], message: `must be ≥ frameLength (${spec.frameLength}), got ${spec.fftLength}` });
    if (spec.clipSamples < spec.frameLength)
      ctx.addIssue({ code: 'custom', path: ['clipSamples'], message: `must be ≥ frameLength (${spec.frameLength}), got ${spec.clipSamples}` });
  });
/** See {@link audioInputSchema}. */
export type AudioInputSpec = z.output<typeof audioInputSchema>;

/** Input specs by modality. */
export interface InputSpecs {
  readonly image?: ImageInputSpec;
  readonly text?: TextInputSpec;
  readonly audio?: AudioInputSpec;
}

/** A file the client fetches and checks: its path under the task's files, size and SHA-256 (hex). */
export const taskFileSchema = z.strictObject({
  path: z.string().regex(/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/, 'must be a relative path of [A-Za-z0-9._-] segments'),
  bytes: z.number().int().nonnegative(),
  sha256: z.string().regex(/^[0-9a-f]{64}$/, 'must be 64 lower-case hex digits'),
});
/** See {@link taskFileSchema}. */
export type TaskFile = z.output<typeof taskFileSchema>;

/** One of a task's own encoders as a client sees it. */
const encoderSpecSchema = z.strictObject({
  /** `model.json` first, then its weight files. */
  files: z.array(taskFileSchema).min(1).max(64),
  /** Dense / 1×1 Conv2D layers that take LoRA adapters. */
  adapters: z.array(z.string().min(1).max(200)).min(1).max(64),
});

/** See {@link taskSpecSchema}. */
export const TASK_SPEC_TYPE = 'taskSpec';

/** A task's model as clients must build it; see the module comment. */
export const taskSpecSchema = z.strictObject({
  type: z.literal(TASK_SPEC_TYPE),
  taskId: z.string().min(1).max(64),
  /** Class names in id order. */
  classes: z.array(z.string().min(1).max(200)).min(2).max(MAX_CLASSES),
  modalities: z.array(z.enum(MODALITIES)).min(1),
  /** `chorus-digits-v1` (the built-in demo encoders) or `custom` (the encoders below). */
  base: z.string().min(1).max(200),
  adapterRank: positiveInt,
  adapterAlpha: z.number().positive(),
  namConcepts: positiveInt,
  head: z.enum(MODEL_HEADS),
  /** The task's own encoders, by modality (a custom base only). */
  encoders: z.strictObject({ image: encoderSpecSchema.optional(), text: encoderSpecSchema.optional(), audio: encoderSpecSchema.optional() }).optional(),
  /** Input specs by modality (a custom base only). */
  inputs: z.strictObject({ image: imageInputSchema.optional(), text: textInputSchema.optional(), audio: audioInputSchema.optional() }).optional(),
  /** The word-vector table of a custom text encoder: a text file of `word v1 … vd` lines. */
  vocabulary: taskFileSchema.optional(),
});
/** See {@link taskSpecSchema}. */
export type TaskSpec = z.output<typeof taskSpecSchema>;
