export { FL_CORE_ERROR_CODES, FlCoreError, isFlCoreError } from './errors.js';
export type { FlCoreErrorCode } from './errors.js';
export { createRng, dirichlet, gamma, gaussian, shuffled } from './rng.js';
export type { Rng } from './rng.js';
export {
  add,
  allFinite,
  assertFinite,
  assertSameLayout,
  axpy,
  cloneParameters,
  cosineSimilarity,
  dot,
  flatten,
  groupOf,
  groupsOf,
  layoutOf,
  norm,
  numElements,
  parameterCount,
  sameLayout,
  scale,
  splitByGroup,
  squaredDistance,
  squaredNorm,
  sub,
  tensor,
  unflatten,
  zerosLike,
} from './params.js';
export type { Layout, Parameters, Tensor } from './params.js';
