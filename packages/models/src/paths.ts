/**
 * Where this package's shipped files are on disk (entry point `@chorus/models/paths`). Kept apart from
 * `@chorus/models/node`, which loads TF.js: a process that only serves the files (the coordinator)
 * does not load the engine for a path.
 */
import { fileURLToPath } from 'node:url';

/** Folder of the shipped pretrained digits encoders (packages/models/weights/digits). */
export const DIGITS_WEIGHTS_DIR = fileURLToPath(new URL('../weights/digits', import.meta.url));
