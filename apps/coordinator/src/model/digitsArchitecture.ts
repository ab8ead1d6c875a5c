/**
 * The demo model's architecture as packages/models defines it, plus what only task files need: the
 * base's name and the seed of the fresh encoders every party builds when no pretrained base ships.
 */
export { DIGITS_AUDIO_SAMPLES, DIGITS_CAPTION_TOKENS, DIGITS_LOG_MEL, buildDigitsEncoder, buildDigitsEncoders } from '@chorus/models';

/** Name of the base in task files (`model.base`). */
export const DIGITS_BASE = 'chorus-digits-v1';
/** Seed of the fresh encoders every party builds when no pretrained base is shipped (the pretraining script's). */
export const DIGITS_BASE_SEED = 0;
