/**
 * The demo model's architecture as packages/models defines it, with what task files need: the
 * base's name and the seed of the fresh encoders every party builds when no pretrained base ships.
 */
export {
  DIGITS_AUDIO_SAMPLES,
  DIGITS_BASE,
  DIGITS_BASE_SEED,
  DIGITS_CAPTION_TOKENS,
  DIGITS_LOG_MEL,
  buildDigitsEncoder,
  buildDigitsEncoders,
} from '@chorus/models';
