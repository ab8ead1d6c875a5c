/**
 * The task file's schema and types. Their one home is `@chorus/protocol` (taskFile.ts), which the
 * dashboard's New task form shares; re-exported here for the coordinator's modules.
 */
export {
  CUSTOM_BASE,
  DEFAULT_ADMISSION,
  MAX_UPDATE_BYTES_CAP,
  REPRESENTATION_TASK_MODEL,
  admissionSchema,
  isCustomTask,
  isRepresentationStrategy,
  isRepresentationTask,
  representationTaskSchema,
  strategySchema,
  taskSchema,
} from '@chorus/protocol';
export type {
  BaseStrategyConfig,
  ClipStrategyConfig,
  CustomData,
  CustomEncoders,
  DpStrategyConfig,
  RepresentationStrategyTaskConfig,
  RepresentationTask,
  RepresentationTaskConfig,
  StrategyConfig,
  TaskConfig,
  TrustStrategyConfig,
} from '@chorus/protocol';
