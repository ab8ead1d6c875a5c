// Typed props and pure helpers of the web app, for the client runtime that will drive its components.
export { BACKEND_CANDIDATES, backendRequestFromQuery } from './lib/backendQuery.js';
export type { BackendName, BackendRequest } from './lib/backendQuery.js';
export { WEB_CLIENT_ERROR_CODES, WebClientError, isWebClientError } from './lib/errors.js';
export type { WebClientErrorCode } from './lib/errors.js';
export { IdentityStore, openIdentityStore } from './lib/identity.js';
export type { LocalIdentity, TaskCredentials } from './lib/identity.js';
export { DEMO_IMAGE_TARGET, loadOwnData } from './lib/ownData.js';
export type { DataSpec, DataSummary, LoadedSamples } from './lib/ownData.js';
export type { Contribution } from './components/ContributionHistory.js';
export type { RoundProgress, TrainingProgress, TransferProgress } from './components/ProgressBars.js';
export { DashboardApi, pickMetric, rejectionCounts, roundPoints, trustSeries } from './dashboard/dashboardData.js';
export type { ClientRow, DashboardData, RejectionCount, RoundPoint, TaskSummary, TrustPoint } from './dashboard/dashboardData.js';
export type { ExplanationView, ShapeCurve, TermContribution, ViewerSample } from './explain/explainSample.js';
