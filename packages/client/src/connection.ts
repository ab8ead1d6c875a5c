/**
 * The socket layer shared by the runtime and the coordinator's scriptable test client: a typed
 * socket.io connection (`Socket<ServerToClientEvents, ClientToServerEvents>`) and the coded error
 * of a refused handshake. Browser-safe.
 */
import { io } from 'socket.io-client';
import type { ManagerOptions, Socket, SocketOptions } from 'socket.io-client';
import type { AuthPayload, ClientToServerEvents, ConnectErrorData, ServerToClientEvents } from '@chorus/protocol';
import { isProtocolErrorCode } from '@chorus/protocol';

/** A client socket speaking the Chorus protocol. */
export type ClientSocket = Socket<ServerToClientEvents, ClientToServerEvents>;

/** Error of a refused handshake, with the coordinator's code (undefined when it never answered). */
export class ConnectRefused extends Error {
  override readonly name = 'ConnectRefused';

  constructor(
    readonly data: ConnectErrorData | undefined,
    message: string,
  ) {
    super(message);
  }
}

/** The coded refusal carried by a socket.io `connect_error`, if the coordinator sent one. */
export function refusalOf(err: Error & { data?: unknown }): ConnectErrorData | undefined {
  const data = err.data as Partial<ConnectErrorData> | undefined;
  if (typeof data !== 'object' || data === null || !isProtocolErrorCode(data.code)) return undefined;
  return { code: data.code, message: typeof data.message === 'string' ? data.message : '' };
}

/** Options of {@link createSocket}. */
export interface SocketSetup {
  /** Handshake auth, or a function read at every (re)connection attempt. */
  readonly auth?: Partial<AuthPayload> | (() => Partial<AuthPayload>);
  /** Let socket.io reconnect on its own (default false). */
  readonly reconnection?: boolean;
  /** socket.io transports (default websocket only: no long-polling upgrade dance). */
  readonly transports?: readonly ('websocket' | 'polling')[];
  /** Passed through to socket.io-client. */
  readonly extra?: Partial<ManagerOptions & SocketOptions>;
}

/** A typed socket that does not connect until `socket.connect()` is called. */
export function createSocket(url: string, setup: SocketSetup = {}): ClientSocket {
  const auth = setup.auth;
  return io(url, {
    transports: [...(setup.transports ?? ['websocket'])],
    reconnection: setup.reconnection ?? false,
    forceNew: true,
    autoConnect: false,
    ...(auth === undefined ? {} : { auth: typeof auth === 'function' ? (cb: (data: object) => void) => cb(auth()) : auth }),
    ...setup.extra,
  });
}

/** Connects once (no reconnection); rejects with {@link ConnectRefused} when the handshake is refused. */
export function connectOnce(url: string, auth: Partial<AuthPayload> | undefined, extra?: SocketSetup['extra']): Promise<ClientSocket> {
  const socket = createSocket(url, { ...(auth === undefined ? {} : { auth }), ...(extra === undefined ? {} : { extra }) });
  return new Promise((resolve, reject) => {
    socket.once('connect', () => resolve(socket));
    socket.once('connect_error', (err: Error & { data?: unknown }) => {
      socket.close();
      reject(new ConnectRefused(refusalOf(err), err.message));
    });
    socket.connect();
  });
}
