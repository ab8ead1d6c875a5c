/**
 * Node-only parts of the client runtime (entry point `@chorus/client/node`; browser bundles never
 * import it): file identity storage, the TF.js backend and model factory over files on disk, the
 * built-in data partitions, headless clients and the CLI's pieces.
 */
export { FileIdentityStorage, identityFileOf } from './storage.js';
export { DIGITS_WEIGHTS_DIR, NODE_BACKENDS, createNodeDigitsFactory, useNodeBackend } from './setup.js';
export type { NodeDigitsFactoryOptions } from './setup.js';
export { createHeadlessClients, loadShard, partitionBuiltin } from './headless.js';
export type { HeadlessClient, HeadlessClientsOptions, HeadlessShard, PartitionOptions } from './headless.js';
export { isEntryScript } from './entryScript.js';
export { createProgressView } from './progress.js';
export type { ProgressView } from './progress.js';
export { headlessOptions, parseCliArgs, parseModalityKinds, runInProcess, runInProcesses } from './cli.js';
export type { CliOptions, ClientSummary } from './cli.js';
export { loadFedAfdEvaluationData, loadFedAfdInputs, loadFedAfdShard, openFedAfdPublicDataFromFiles, partitionFedAfdBuiltin } from './fedafd.js';
export type { FedAfdBuiltinOptions, FedAfdEvaluationRange, FedAfdInputs, FedAfdInputsOptions, FedAfdShard } from './fedafd.js';
export { createFedAfdHeadlessClients, formatFedAfdKinds, parseFedAfdEvaluation, parseFedAfdKinds } from './fedafdClients.js';
export type { FedAfdHeadlessOptions } from './fedafdClients.js';
