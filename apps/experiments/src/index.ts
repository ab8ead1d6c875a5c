export { EXPERIMENTS_ERROR_CODES, ExperimentsError, isExperimentsError } from './errors.js';
export type { ExperimentsErrorCode } from './errors.js';
export type { Check, ExperimentContext, Figure, SectionEntry, SectionResult } from './section.js';
export { formatMeanStd, formatPaired, markdownTable, meanStd, pairedDifference, pairedReading, tQuantile975 } from './stats.js';
export type { PairedDifference, SeededValue } from './stats.js';
export {
  CARVED_VALIDATION_EXAMPLES,
  EXPERIMENT_DATASETS,
  describeSplits,
  drawSubset,
  experimentDataset,
  loadEvaluationSplits,
  stratifiedHoldout,
} from './evaluationSplits.js';
export type { EvaluationSplitInfo, EvaluationSplits, ExperimentDataset } from './evaluationSplits.js';
export { checkDisjointSeeds, chooseOnValidation, formatHyperparameters, gridCandidates, sameHyperparameters, tuneOnValidation, tuningTable } from './tuning.js';
export type { CandidateScore, Hyperparameters, TuningGrid, TuningRecord } from './tuning.js';
export { BASE_TASK, experimentTask } from './tasks.js';
export { barChart, escapeXml, lineChart, niceTicks } from './svg.js';
export type { BarChartOptions, BarSeries, LineChartOptions, LinePoint, LineSeries } from './svg.js';
export { checkSections, renderReport, storedSection, writeReport } from './report.js';
export type { RunInfo, StoredSection } from './report.js';
export { evaluateByModality, restrictModalities, trainOnUnion, unionBatch, unionEpoch } from './centralized.js';
export type { TrainingMode, TrainingRun, UnionExample, UnionTrainingOptions } from './centralized.js';
export {
  FEDMMX_FULL,
  FEDMMX_QUICK,
  chosenFor,
  fedMmxChecks,
  fedMmxMethods,
  fedMmxSection,
  fedMmxTask,
  fedMmxVerifySpec,
  interpretability,
  renderFedMmx,
  runFedMmx,
} from './fedmmx.js';
export type { BoundsRun, FederatedRun, FedMmxMeasurements, FedMmxMethod, FedMmxSectionOptions, FedMmxSettings, ModelScores } from './fedmmx.js';
export { ROBUSTNESS_VERIFY, runRobustness } from './robustness.js';
export { FEDUMM_FULL, FEDUMM_QUICK, FEDUMM_TUNED, fedUmmSection, runFedUmm } from './fedumm.js';
export type { FedUmmSectionOptions, FedUmmSettings } from './fedumm.js';
export { SPLIT_SECTION, SPLIT_VERIFY, clientsAt, runCell, runSplit, splitRuns } from './split.js';
export type { SplitRuns, SplitSteps } from './split.js';
export {
  MAIN_INTERFACE,
  SPLIT_ENGINE,
  SPLIT_FULL,
  SPLIT_METHODS,
  SPLIT_QUICK,
  checkSplitSettings,
  evaluationSeeds,
  runEpsilon,
  splitCacheKey,
  splitPlan,
  splitSettingsKey,
  splitTaskOf,
  trafficOf,
} from './splitGrid.js';
export type { DeviceTiming, InterfaceVariant, Scored, SplitCell, SplitMethod, SplitRun, SplitSettings, Traffic } from './splitGrid.js';
export {
  SPLIT_METHOD_LABELS,
  bytesFigures,
  costsAndBuys,
  deviceMsPerExample,
  estimateFullMinutes,
  gridEdgeSentence,
  intervalReading,
  noiseRows,
  splitChecks,
  splitReport,
} from './splitReport.js';
export type { BytesFigures, SplitReportInput } from './splitReport.js';
export {
  InProcessSplitLink,
  createEdge,
  evaluateGlobal,
  initialGlobal,
  roundStartOf,
  simulateFederated,
  splitGlobal,
  timeLocalTraining,
  trainCentralizedSplit,
} from './splitTraining.js';
export type { CentralizedSplitOptions, ClientRoundFigures, FederatedSimulationOptions, FederatedSimulationResult, SimulatedClient } from './splitTraining.js';
export { DEFAULT_SEEDS, parseExperimentsArgs, parseVerify } from './args.js';
export type { ExperimentsArgs } from './args.js';
export { REPORT_NOTES, SECTIONS, main, runExperiments, runVerify } from './cli.js';
export { VERIFY_EXCLUDED_FIELDS, differences, firstDifference, selectRuns, storedRuns, verifySection } from './verify.js';
export type { Recomputer, StoredRun, VerifySpec } from './verify.js';
