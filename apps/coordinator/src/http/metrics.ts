/**
 * Prometheus metrics of one coordinator, in its own registry (several coordinators in one process —
 * tests — must not share counters). Label values are task ids and protocol codes: closed, small sets.
 */
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

/** The coordinator's metrics and the registry that serves them. */
export class CoordinatorMetrics {
  readonly registry = new Registry();
  readonly rounds: Counter<'task' | 'status'>;
  readonly participants: Gauge<'task'>;
  readonly updates: Counter<'task'>;
  readonly rejections: Counter<'task' | 'code'>;
  readonly bytesIn: Counter<'task'>;
  readonly bytesOut: Counter<'task'>;
  readonly aggregationSeconds: Histogram<'task'>;
  readonly trust: Histogram<'task'>;
  readonly connectionsRefused: Counter<'code'>;
  readonly epsilon: Gauge<'task'>;
  readonly probeSeconds: Histogram<'task'>;
  readonly controls: Counter<'task' | 'action' | 'outcome'>;

  constructor(options: { readonly defaultMetrics?: boolean } = {}) {
    const registers = [this.registry];
    if (options.defaultMetrics ?? true) collectDefaultMetrics({ register: this.registry, prefix: 'chorus_' });
    this.rounds = new Counter({
      name: 'chorus_rounds_total',
      help: 'Round attempts by outcome (completed, retry).',
      labelNames: ['task', 'status'],
      registers,
    });
    this.participants = new Gauge({ name: 'chorus_participants', help: 'Clients connected and joined to a task.', labelNames: ['task'], registers });
    this.updates = new Counter({ name: 'chorus_updates_accepted_total', help: 'Updates accepted for aggregation.', labelNames: ['task'], registers });
    this.rejections = new Counter({ name: 'chorus_rejections_total', help: 'Updates refused, by protocol code.', labelNames: ['task', 'code'], registers });
    this.bytesIn = new Counter({ name: 'chorus_update_bytes_in_total', help: 'Update bytes received.', labelNames: ['task'], registers });
    this.bytesOut = new Counter({ name: 'chorus_model_bytes_out_total', help: 'Global model bytes sent to clients.', labelNames: ['task'], registers });
    this.aggregationSeconds = new Histogram({
      name: 'chorus_aggregation_seconds',
      help: 'Time to aggregate a round.',
      labelNames: ['task'],
      buckets: [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
      registers,
    });
    this.trust = new Histogram({
      name: 'chorus_trust_score',
      help: 'Distribution of per-client trust scores T_k.',
      labelNames: ['task'],
      buckets: [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1],
      registers,
    });
    this.epsilon = new Gauge({ name: 'chorus_dp_epsilon', help: "Differential-privacy ε spent so far (at the task's δ).", labelNames: ['task'], registers });
    this.probeSeconds = new Histogram({
      name: 'chorus_probe_seconds_per_candidate',
      help: 'Server-side probe evaluation time per candidate update (trust scoring).',
      labelNames: ['task'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
      registers,
    });
    this.controls = new Counter({
      name: 'chorus_task_controls_total',
      help: 'Researcher actions on a task (start, pause, resume, stop), applied or refused.',
      labelNames: ['task', 'action', 'outcome'],
      registers,
    });
    this.connectionsRefused = new Counter({
      name: 'chorus_connections_refused_total',
      help: 'Handshakes refused, by protocol code.',
      labelNames: ['code'],
      registers,
    });
  }
}
