/**
 * What the headless CLI prints: on a TTY one live line per client (status, round, a training bar,
 * accuracy, last outcome), redrawn in place; otherwise one plain line per noteworthy event.
 */
import type { ClientEvent } from '../events.js';

/** A sink of client events. */
export interface ProgressView {
  update(client: number, event: ClientEvent): void;
  /** Draws the final state and stops redrawing. */
  close(): void;
}

interface Row {
  status: string;
  round: number | null;
  fraction: number;
  step: string;
  accuracy: string;
  last: string;
}

const BAR = 20;

function bar(fraction: number): string {
  const full = Math.round(Math.max(0, Math.min(1, fraction)) * BAR);
  return `${'█'.repeat(full)}${'░'.repeat(BAR - full)}`;
}

/** A view writing to `out`; `tty` selects live bars (redrawn at most every `intervalMs`). */
export function createProgressView(
  out: { write(s: string): unknown },
  numClients: number,
  options: { tty: boolean; labels?: readonly string[]; intervalMs?: number },
): ProgressView {
  const rows: Row[] = Array.from({ length: numClients }, () => ({ status: 'starting', round: null, fraction: 0, step: '', accuracy: '', last: '' }));
  const label = (i: number): string => options.labels?.[i] ?? `client ${i}`;
  let drawn = false;
  let dirty = false;
  let closed = false;
  const draw = (): void => {
    if (!dirty) return;
    dirty = false;
    const lines = rows.map((r, i) =>
      `${label(i).padEnd(24)} ${r.status.padEnd(12)} ${r.round === null ? '     ' : `r${String(r.round).padEnd(4)}`} ${bar(r.fraction)} ${r.step.padEnd(18)} ${r.accuracy.padEnd(18)} ${r.last}`.slice(
        0,
        160,
      ),
    );
    out.write(`${drawn ? `\x1b[${rows.length}A` : ''}${lines.map((l) => `\x1b[2K${l}\n`).join('')}`);
    drawn = true;
  };
  const timer = options.tty ? setInterval(draw, options.intervalMs ?? 200) : null;
  timer?.unref?.();
  const plain = (i: number, text: string): void => {
    out.write(`${label(i)}: ${text}\n`);
  };
  return {
    update(i, e) {
      const r = rows[i];
      if (!r || closed) return;
      dirty = true;
      switch (e.type) {
        case 'status':
          r.status = e.status;
          if (!options.tty && (e.status === 'failed' || e.status === 'finished' || e.status === 'disconnected'))
            plain(i, `${e.status}${e.detail ? ` (${e.detail})` : ''}`);
          break;
        case 'identity':
          if (!options.tty) plain(i, `joined as ${e.clientId}${e.resumed ? ' (resumed)' : ''}`);
          break;
        case 'round-start':
          r.round = e.serverRound;
          r.fraction = 0;
          r.step = 'selected';
          if (!options.tty) plain(i, `round ${e.serverRound} (attempt ${e.attempt}): selected`);
          break;
        case 'train':
          r.fraction = ((e.epoch - 1) * e.numBatches + e.batch) / (e.numEpochs * e.numBatches);
          r.step = `ep ${e.epoch}/${e.numEpochs} b ${e.batch}/${e.numBatches}`;
          break;
        case 'evaluate':
          r.accuracy = `${e.scope} acc ${(e.accuracy * 100).toFixed(1)}%`;
          break;
        case 'upload':
          r.step = e.bytesDone < e.bytesTotal ? `upload ${e.bytesTotal} B` : 'uploaded';
          break;
        case 'update-result':
          r.last = e.accepted ? `r${e.serverRound} accepted` : `r${e.serverRound} refused ${e.code ?? ''}`;
          if (!options.tty) plain(i, `round ${e.serverRound}: ${e.accepted ? 'update accepted' : `update refused (${e.code}: ${e.message ?? ''})`}`);
          break;
        case 'task-end':
          r.last = `task ${e.status} after ${e.completedRounds} rounds`;
          break;
        case 'error':
          r.last = `${e.protocolCode ?? e.code}`;
          if (!options.tty) plain(i, `${e.fatal ? 'fatal ' : ''}error ${e.code}${e.protocolCode ? `/${e.protocolCode}` : ''}: ${e.message}`);
          break;
        default:
          break;
      }
    },
    close() {
      if (closed) return;
      if (timer) clearInterval(timer);
      if (options.tty) {
        dirty = true;
        draw();
      }
      closed = true;
    },
  };
}
