/**
 * The dashboard's charts, each a pure function of typed props: accuracy and loss per round overall
 * and per modality, trust score of every client over rounds (FedMM-X figure 1; Balija 2025,
 * arXiv:2503.19564), bytes per round, rejected updates by code, DP ε spent, and a representation
 * task's server retrieval (R@1 both ways and rsum, as FedAFD reports its server). An empty series
 * says what it waits for instead of drawing an empty frame.
 */
import type { ReactNode } from 'react';
import { Bar, BarChart, CartesianGrid, Legend, Line, LineChart, ResponsiveContainer, Tooltip, XAxis, YAxis } from 'recharts';
import { formatBytes } from '../lib/format.js';
import { MODALITY_COLOURS, categorical } from '../lib/palette.js';
import { DASHBOARD_MODALITIES, type RejectionCount, type RoundPoint, type TrustPoint } from './dashboardData.js';

const HEIGHT = 240;

/** Tooltip values to three decimals (figures arrive as full-precision floats). */
const threeDecimals = (value: unknown): string => (typeof value === 'number' ? value.toFixed(3) : String(value));
/** Client ids are long random pseudonyms; the legend shows their start, as the clients table does. */
const shortId = (id: string): string => (id.length > 12 ? `${id.slice(0, 10)}…` : id);

function ChartFrame({
  title,
  empty,
  emptyMessage,
  children,
  testId,
}: {
  title: string;
  empty: boolean;
  emptyMessage: string;
  children: ReactNode;
  testId: string;
}): ReactNode {
  return (
    <figure className="chart" data-testid={testId} data-empty={empty}>
      <figcaption>{title}</figcaption>
      {empty ? <p className="empty-chart">{emptyMessage}</p> : children}
    </figure>
  );
}

const WAITING = 'No completed rounds yet — waiting for the coordinator.';

/** Accuracy (or loss) per round: the overall line plus one per modality that reports it. */
export function MetricPerRoundChart({ rounds, quantity }: { rounds: readonly RoundPoint[]; quantity: 'accuracy' | 'loss' }): ReactNode {
  const data = rounds.map((r) => {
    const row: Record<string, number | undefined> = { serverRound: r.serverRound, overall: r[quantity] };
    for (const m of DASHBOARD_MODALITIES) row[m] = r.perModality[m]?.[quantity];
    return row;
  });
  const series = ['overall', ...DASHBOARD_MODALITIES].filter((key) => data.some((d) => d[key] !== undefined));
  return (
    <ChartFrame
      title={quantity === 'accuracy' ? 'Accuracy per round' : 'Loss per round'}
      empty={series.length === 0}
      emptyMessage={WAITING}
      testId={`chart-${quantity}`}
    >
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="serverRound" label={{ value: 'round', position: 'insideBottomRight', offset: -2 }} />
          <YAxis domain={quantity === 'accuracy' ? [0, 1] : ['auto', 'auto']} />
          <Tooltip formatter={threeDecimals} />
          <Legend />
          {series.map((key) => (
            <Line
              key={key}
              type="monotone"
              dataKey={key}
              stroke={key === 'overall' ? '#222' : MODALITY_COLOURS[key]}
              strokeWidth={key === 'overall' ? 2.5 : 1.5}
              dot={false}
              connectNulls
              isAnimationActive={false}
            />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

/** Trust score T_k of each client over rounds (FedMM-X figure 1). */
export function TrustChart({ points, clients }: { points: readonly TrustPoint[]; clients: readonly string[] }): ReactNode {
  const data = points.map((p) => ({ serverRound: p.serverRound, ...p.trust }));
  return (
    <ChartFrame
      title="Trust score per client over rounds"
      empty={points.length === 0}
      emptyMessage="No trust scores yet — waiting for the coordinator."
      testId="chart-trust"
    >
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="serverRound" />
          <YAxis domain={[0, 'auto']} />
          <Tooltip formatter={threeDecimals} />
          <Legend formatter={(value: string) => shortId(value)} />
          {clients.map((c, i) => (
            <Line key={c} type="monotone" dataKey={c} stroke={categorical(i)} dot={false} connectNulls isAnimationActive={false} />
          ))}
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

/** Upload bytes received per round. */
export function BytesChart({ rounds }: { rounds: readonly RoundPoint[] }): ReactNode {
  const data = rounds.filter((r) => r.bytesIn !== undefined).map((r) => ({ serverRound: r.serverRound, bytesIn: r.bytesIn }));
  return (
    <ChartFrame title="Bytes uploaded per round" empty={data.length === 0} emptyMessage={WAITING} testId="chart-bytes">
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <BarChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="serverRound" />
          <YAxis tickFormatter={(v: number) => formatBytes(v)} width={72} />
          <Tooltip formatter={(v) => formatBytes(Number(v))} />
          <Bar dataKey="bytesIn" name="bytes in" fill="#0072B2" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

/** Rejected updates by protocol code. */
export function RejectionsChart({ rejections }: { rejections: readonly RejectionCount[] }): ReactNode {
  return (
    <ChartFrame title="Rejected updates by code" empty={rejections.length === 0} emptyMessage="No rejected updates." testId="chart-rejections">
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <BarChart data={[...rejections]} layout="vertical" margin={{ top: 8, right: 16, bottom: 4, left: 8 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis type="number" allowDecimals={false} />
          <YAxis type="category" dataKey="code" width={170} interval={0} tick={{ fontSize: 12 }} />
          <Tooltip />
          <Bar dataKey="count" fill="#D55E00" isAnimationActive={false} />
        </BarChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

/** A representation task's server model: image→text and text→image R@1 and their sum (rsum) per round. */
export function RetrievalChart({ rounds }: { rounds: readonly RoundPoint[] }): ReactNode {
  const data = rounds.filter((r) => r.serverRetrieval !== undefined).map((r) => ({ serverRound: r.serverRound, ...r.serverRetrieval }));
  return (
    <ChartFrame
      title="Server retrieval R@1 (%) per round"
      empty={data.length === 0}
      emptyMessage="No server retrieval figures — only representation tasks (FedAFD family) train a server model, or no round has completed."
      testId="chart-retrieval"
    >
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="serverRound" />
          <YAxis domain={[0, 'auto']} />
          <Tooltip formatter={threeDecimals} />
          <Legend />
          <Line type="monotone" dataKey="i2tR1" name="image→text R@1" stroke={categorical(0)} dot={false} connectNulls isAnimationActive={false} />
          <Line type="monotone" dataKey="t2iR1" name="text→image R@1" stroke={categorical(1)} dot={false} connectNulls isAnimationActive={false} />
          <Line type="monotone" dataKey="rsum" name="rsum" stroke={categorical(2)} strokeWidth={2} dot={false} connectNulls isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}

/** Cumulative differential-privacy ε after each round. */
export function EpsilonChart({ rounds }: { rounds: readonly RoundPoint[] }): ReactNode {
  const data = rounds.filter((r) => r.epsilon !== undefined).map((r) => ({ serverRound: r.serverRound, epsilon: r.epsilon }));
  return (
    <ChartFrame
      title="Privacy budget ε spent"
      empty={data.length === 0}
      emptyMessage="No ε reported — the task runs without differential privacy, or no round has completed."
      testId="chart-epsilon"
    >
      <ResponsiveContainer width="100%" height={HEIGHT}>
        <LineChart data={data} margin={{ top: 8, right: 16, bottom: 4, left: 0 }}>
          <CartesianGrid strokeDasharray="3 3" />
          <XAxis dataKey="serverRound" />
          <YAxis domain={[0, 'auto']} />
          <Tooltip />
          <Line type="stepAfter" dataKey="epsilon" name="ε" stroke="#CC79A7" strokeWidth={2} dot={false} isAnimationActive={false} />
        </LineChart>
      </ResponsiveContainer>
    </ChartFrame>
  );
}
