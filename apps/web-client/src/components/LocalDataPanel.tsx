/** What the tab trains on once it has joined: the source, the modalities the data holds and how long preparing it took. */
import type { ReactNode } from 'react';
import type { Modality } from '@chorus/models';

/** The local data of a running tab. */
export interface LocalDataInfo {
  /** The built-in demo slice or the volunteer's own files. */
  readonly source: 'demo' | 'own';
  readonly numExamples: number;
  /** Modalities every example holds; the task's global model decides which of them train. */
  readonly modalities: readonly Modality[];
  /** Milliseconds spent reading the data and computing features (log-mel for speech) in this tab. */
  readonly prepareMs: number;
}

/** One line on the local data, with machine-readable attributes for the browser tests. */
export function LocalDataPanel({ data }: { data: LocalDataInfo }): ReactNode {
  return (
    <p data-testid="local-data" data-source={data.source} data-modalities={data.modalities.join(',')} data-prepare-ms={Math.round(data.prepareMs)}>
      Local data: {data.numExamples} {data.source === 'demo' ? 'built-in' : 'own'} example{data.numExamples === 1 ? '' : 's'} with {data.modalities.join(', ')},
      prepared in this tab in {(data.prepareMs / 1000).toFixed(1)} s.
    </p>
  );
}
