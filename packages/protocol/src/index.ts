export { PROTOCOL_ERROR_CODES, ProtocolError, ackError, isProtocolErrorCode } from './errors.js';
export type { Ack, AckError, ProtocolErrorBody, ProtocolErrorCode } from './errors.js';
export {
  MODALITIES,
  PROTOCOL_VERSION,
  UPLOAD_ENCODINGS,
  authSchema,
  binarySchema,
  capabilitiesSchema,
  helloSchema,
  roundConfigSchema,
  roundEndSchema,
  roundStartSchema,
  taskEndSchema,
  updateSchema,
} from './protocol.js';
export type {
  AuthPayload,
  Capabilities,
  ClientToServerEvents,
  ConnectErrorData,
  HelloPayload,
  HelloResult,
  InterServerEvents,
  Modality,
  ParsedRoundStart,
  ParsedUpdate,
  RoundConfig,
  RoundEndPayload,
  RoundStartPayload,
  ServerToClientEvents,
  SocketData,
  TaskEndPayload,
  UpdatePayload,
  UpdateResult,
  UploadEncoding,
} from './protocol.js';
export { ADMIN_NAMESPACE, adminAuthSchema, roundCompletedSchema } from './admin.js';
export type { AdminAuthPayload, AdminClientToServerEvents, AdminServerToClientEvents, RoundCompletedPayload } from './admin.js';
