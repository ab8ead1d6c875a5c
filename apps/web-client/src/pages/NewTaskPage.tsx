/**
 * The dashboard's "New task" page (`/dashboard/new`): the researcher picks each modality's encoder
 * files (the page reads `model.json` to offer the layers that can take adapters and to fill in the
 * input size), names the classes, picks the server's probe and test data, the strategy and the
 * limits, and creates the task; the coordinator checks everything with the task-file schema and
 * answers with the join link or every problem, named. Uses the admin token of the dashboard.
 */
import { useId, useState, type FormEvent, type ReactNode } from 'react';
import type { Modality } from '@chorus/protocol';
import { Link } from '../app/router.js';
import { checkNewTask, newTaskBody, outlineEncoder, type ChosenFile, type ModalityForm, type NewTaskForm } from '../lib/newTask.js';

const TOKEN_KEY = 'chorus.adminToken';
const MODALITIES: readonly Modality[] = ['image', 'text', 'audio'];
const STRATEGIES = ['fedmm-x', 'fedavg', 'median', 'trimmed-mean'] as const;

async function chosen(list: FileList | null): Promise<ChosenFile[]> {
  const files = Array.from(list ?? []);
  return Promise.all(files.map(async (f) => ({ path: f.webkitRelativePath || f.name, bytes: new Uint8Array(await f.arrayBuffer()) })));
}

const numbers = (text: string): number[] =>
  text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '')
    .map(Number);

interface ModalityState {
  encoderFiles: ChosenFile[];
  adapterLayers: string[];
  adapters: string[];
  inputShape: number[];
  outlineError: string | null;
  input: Record<string, string>;
  vocabulary: ChosenFile | null;
  probe: ChosenFile[];
  test: ChosenFile[];
}

const INPUT_FIELDS: Record<Modality, readonly { key: string; label: string; initial: string }[]> = {
  image: [
    { key: 'height', label: 'Height', initial: '32' },
    { key: 'width', label: 'Width', initial: '32' },
    { key: 'channels', label: 'Channels (1 or 3)', initial: '3' },
    { key: 'mean', label: 'Mean per channel', initial: '' },
    { key: 'std', label: 'Std per channel', initial: '' },
  ],
  text: [{ key: 'maxTokens', label: 'Words kept per text', initial: '16' }],
  audio: [
    { key: 'sampleRate', label: 'Sample rate (Hz)', initial: '16000' },
    { key: 'clipSamples', label: 'Samples per clip', initial: '16000' },
    { key: 'frameLength', label: 'Frame length', initial: '400' },
    { key: 'hopLength', label: 'Hop length', initial: '160' },
    { key: 'fftLength', label: 'FFT length', initial: '512' },
    { key: 'numMels', label: 'Mel bands', initial: '40' },
  ],
};

const emptyModality = (m: Modality): ModalityState => ({
  encoderFiles: [],
  adapterLayers: [],
  adapters: [],
  inputShape: [],
  outlineError: null,
  input: Object.fromEntries(INPUT_FIELDS[m].map((f) => [f.key, f.initial])),
  vocabulary: null,
  probe: [],
  test: [],
});

type Outcome =
  | { status: 'idle' }
  | { status: 'sending' }
  | { status: 'created'; joinUrl: string; taskId: string }
  | { status: 'refused'; code: string; problems: string[]; where: 'form' | 'coordinator' };

/** `/dashboard/new` */
export default function NewTaskPage(): ReactNode {
  const id = useId();
  const [token, setToken] = useState<string>(() => sessionStorage.getItem(TOKEN_KEY) ?? '');
  const [taskId, setTaskId] = useState('');
  const [name, setName] = useState('');
  const [classes, setClasses] = useState('');
  const [parts, setParts] = useState<Partial<Record<Modality, ModalityState>>>({});
  const [strategy, setStrategy] = useState<string>('fedmm-x');
  const [limits, setLimits] = useState<Record<string, string>>({
    rounds: '10',
    clientsPerRound: '2',
    minClients: '2',
    localEpochs: '1',
    batchSize: '16',
    learningRate: '0.01',
    roundDeadlineS: '120',
    probeExamples: '32',
    testExamples: '128',
    maxUpdateMb: '8',
    adapterRank: '4',
    adapterAlpha: '8',
    namConcepts: '6',
  });
  const [outcome, setOutcome] = useState<Outcome>({ status: 'idle' });

  const update = (m: Modality, change: (s: ModalityState) => ModalityState): void => setParts((p) => ({ ...p, [m]: change(p[m] ?? emptyModality(m)) }));
  const toggle = (m: Modality, on: boolean): void =>
    setParts((p) => {
      const next = { ...p };
      if (on) next[m] = p[m] ?? emptyModality(m);
      else delete next[m];
      return next;
    });

  const chooseEncoder = async (m: Modality, list: FileList | null): Promise<void> => {
    const files = await chosen(list);
    const modelJson = files.find((f) => f.path.endsWith('model.json'));
    update(m, (s) => {
      if (!modelJson) return { ...s, encoderFiles: files, outlineError: 'choose model.json together with its weight files' };
      try {
        const outline = outlineEncoder(new TextDecoder().decode(modelJson.bytes));
        const input = { ...s.input };
        if (m === 'image' && outline.inputShape.length === 3) {
          const [h, w, c] = outline.inputShape;
          Object.assign(input, { height: String(h), width: String(w), channels: String(c) });
        }
        if (m === 'audio' && outline.inputShape.length === 2) input['numMels'] = String(outline.inputShape[1]);
        // model.json first, as the task lists it.
        const ordered = [modelJson, ...files.filter((f) => f !== modelJson)];
        return {
          ...s,
          encoderFiles: ordered,
          adapterLayers: [...outline.adapterLayers],
          adapters: [...outline.adapterLayers],
          inputShape: [...outline.inputShape],
          input,
          outlineError: null,
        };
      } catch (err) {
        return { ...s, encoderFiles: files, outlineError: (err as Error).message };
      }
    });
  };

  const submit = (event: FormEvent): void => {
    event.preventDefault();
    const n = (key: string): number => Number(limits[key]);
    const modalities: Partial<Record<Modality, ModalityForm>> = {};
    for (const m of MODALITIES) {
      const s = parts[m];
      if (!s) continue;
      const input: Record<string, number | number[]> = {};
      for (const f of INPUT_FIELDS[m]) {
        const text = s.input[f.key] ?? '';
        if (f.key === 'mean' || f.key === 'std') {
          if (text.trim() !== '') input[f.key] = numbers(text);
        } else input[f.key] = Number(text);
      }
      modalities[m] = {
        encoderFiles: s.encoderFiles,
        adapters: s.adapters,
        input,
        ...(s.vocabulary ? { vocabulary: s.vocabulary } : {}),
        probe: s.probe,
        test: s.test,
      };
    }
    const form: NewTaskForm = {
      id: taskId.trim(),
      name: name.trim(),
      classes: classes
        .split(/[\n,]/)
        .map((c) => c.trim())
        .filter((c) => c !== ''),
      modalities,
      strategy,
      rounds: n('rounds'),
      clientsPerRound: n('clientsPerRound'),
      minClients: n('minClients'),
      localEpochs: n('localEpochs'),
      batchSize: n('batchSize'),
      learningRate: n('learningRate'),
      roundDeadlineMs: Math.round(n('roundDeadlineS') * 1000),
      probeExamples: n('probeExamples'),
      testExamples: n('testExamples'),
      maxUpdateBytes: Math.round(n('maxUpdateMb') * 1024 * 1024),
      adapterRank: n('adapterRank'),
      adapterAlpha: n('adapterAlpha'),
      namConcepts: n('namConcepts'),
    };
    const body = newTaskBody(form);
    // The task-file schema first, here: nothing is sent while the task itself is wrong.
    const problems = checkNewTask(body);
    if (problems.length > 0) return setOutcome({ status: 'refused', code: 'TASK_INVALID', problems, where: 'form' });
    setOutcome({ status: 'sending' });
    sessionStorage.setItem(TOKEN_KEY, token);
    void (async () => {
      try {
        const res = await fetch(`${window.location.origin}/api/tasks`, {
          method: 'POST',
          headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
          body: JSON.stringify(body),
        });
        const answer = (await res.json().catch(() => ({}))) as {
          taskId?: string;
          joinPath?: string;
          error?: { code?: string; message?: string; issues?: string[] };
        };
        if (res.ok && answer.joinPath && answer.taskId)
          setOutcome({ status: 'created', taskId: answer.taskId, joinUrl: `${window.location.origin}${answer.joinPath}` });
        else
          setOutcome({
            status: 'refused',
            code: answer.error?.code ?? `HTTP ${res.status}`,
            problems: answer.error?.issues && answer.error.issues.length > 0 ? answer.error.issues : [answer.error?.message ?? 'no answer'],
            where: 'coordinator',
          });
      } catch (err) {
        setOutcome({ status: 'refused', code: 'NETWORK', problems: [(err as Error).message], where: 'coordinator' });
      }
    })();
  };

  const limit = (key: string, label: string, step = '1'): ReactNode => (
    <label key={key}>
      {label}{' '}
      <input
        type="number"
        step={step}
        value={limits[key]}
        onChange={(e) => {
          const value = e.currentTarget.value;
          setLimits((l) => ({ ...l, [key]: value }));
        }}
        data-testid={`limit-${key}`}
        size={6}
      />
    </label>
  );

  return (
    <div className="page">
      <h1>New task</h1>
      <p className="lead">
        Bring your own frozen encoders (TF.js LayersModel: <code>model.json</code> and its weight files), your classes and your server-side data. Volunteers
        then choose their own files on the join page. <Link to="/dashboard">Back to the dashboard</Link>
      </p>
      <form className="panel" onSubmit={submit} aria-labelledby={`${id}-title`} data-testid="new-task-form">
        <h2 id={`${id}-title`}>Task</h2>
        <div className="inline">
          <label>
            Admin token{' '}
            <input type="password" autoComplete="off" value={token} onChange={(e) => setToken(e.currentTarget.value)} data-testid="new-task-token" required />
          </label>
          <label>
            Id <input value={taskId} onChange={(e) => setTaskId(e.currentTarget.value)} data-testid="new-task-id" required size={16} />
          </label>
          <label>
            Name <input value={name} onChange={(e) => setName(e.currentTarget.value)} data-testid="new-task-name" size={24} />
          </label>
        </div>
        <label>
          Classes, in id order (one per line or comma-separated)
          <textarea value={classes} onChange={(e) => setClasses(e.currentTarget.value)} rows={3} data-testid="new-task-classes" />
        </label>
        <fieldset className="inline">
          <legend>Modalities</legend>
          {MODALITIES.map((m) => (
            <label key={m}>
              <input
                type="checkbox"
                checked={parts[m] !== undefined}
                onChange={(e) => toggle(m, e.currentTarget.checked)}
                data-testid={`new-task-modality-${m}`}
              />{' '}
              {m}
            </label>
          ))}
        </fieldset>
        {MODALITIES.filter((m) => parts[m]).map((m) => {
          const s = parts[m]!;
          return (
            <fieldset key={m} data-testid={`new-task-${m}`}>
              <legend>{m}</legend>
              <label>
                Encoder files (model.json and its weights){' '}
                <input type="file" multiple onChange={(e) => void chooseEncoder(m, e.currentTarget.files)} data-testid={`encoder-files-${m}`} />
              </label>
              {s.outlineError ? (
                <p className="error" role="alert">
                  {s.outlineError}
                </p>
              ) : null}
              {s.adapterLayers.length > 0 ? (
                <fieldset className="inline" data-testid={`adapters-${m}`}>
                  <legend>Layers that take adapters (input [{s.inputShape.join(', ')}])</legend>
                  {s.adapterLayers.map((layer) => (
                    <label key={layer}>
                      <input
                        type="checkbox"
                        checked={s.adapters.includes(layer)}
                        onChange={(e) => {
                          const on = e.currentTarget.checked;
                          update(m, (x) => ({ ...x, adapters: on ? [...x.adapters, layer] : x.adapters.filter((a) => a !== layer) }));
                        }}
                      />{' '}
                      {layer}
                    </label>
                  ))}
                </fieldset>
              ) : null}
              <div className="inline">
                {INPUT_FIELDS[m].map((f) => (
                  <label key={f.key}>
                    {f.label}{' '}
                    <input
                      value={s.input[f.key] ?? ''}
                      onChange={(e) => {
                        const value = e.currentTarget.value;
                        update(m, (x) => ({ ...x, input: { ...x.input, [f.key]: value } }));
                      }}
                      data-testid={`input-${m}-${f.key}`}
                      size={8}
                    />
                  </label>
                ))}
              </div>
              {m === 'text' ? (
                <label>
                  Word vectors (<code>word v1 … vd</code> lines){' '}
                  <input
                    type="file"
                    onChange={(e) => void chosen(e.currentTarget.files).then((f) => update(m, (x) => ({ ...x, vocabulary: f[0] ?? null })))}
                    data-testid="vocabulary-file"
                  />
                </label>
              ) : null}
              {(['probe', 'test'] as const).map((split) => (
                <div key={split}>
                  <label>
                    {split === 'probe' ? 'Probe data (trust probing)' : 'Test data (evaluation)'}:{' '}
                    {m === 'text' ? 'CSV / JSONL files with text and label columns' : 'a folder of class folders'}{' '}
                    <input
                      type="file"
                      multiple
                      ref={(el) => {
                        if (el && m !== 'text') el.webkitdirectory = true;
                      }}
                      onChange={(e) => void chosen(e.currentTarget.files).then((f) => update(m, (x) => ({ ...x, [split]: f })))}
                      data-testid={`${split}-${m}`}
                    />
                  </label>
                </div>
              ))}
            </fieldset>
          );
        })}
        <fieldset className="inline">
          <legend>Training</legend>
          <label>
            Strategy{' '}
            <select value={strategy} onChange={(e) => setStrategy(e.currentTarget.value)} data-testid="new-task-strategy">
              {STRATEGIES.map((s) => (
                <option key={s} value={s}>
                  {s}
                </option>
              ))}
            </select>
          </label>
          {limit('rounds', 'Rounds')}
          {limit('clientsPerRound', 'Clients per round')}
          {limit('minClients', 'At least')}
          {limit('localEpochs', 'Local epochs')}
          {limit('batchSize', 'Batch size')}
          {limit('learningRate', 'Learning rate', 'any')}
          {limit('roundDeadlineS', 'Round deadline (s)')}
        </fieldset>
        <fieldset className="inline">
          <legend>Model and limits</legend>
          {limit('adapterRank', 'Adapter rank')}
          {limit('adapterAlpha', 'Adapter α', 'any')}
          {limit('namConcepts', 'Concepts per modality')}
          {limit('probeExamples', 'Probe examples')}
          {limit('testExamples', 'Test examples')}
          {limit('maxUpdateMb', 'Largest update (MB)', 'any')}
        </fieldset>
        <button type="submit" className="button" disabled={outcome.status === 'sending'} data-testid="create-task">
          {outcome.status === 'sending' ? 'Checking and creating…' : 'Create task'}
        </button>
      </form>
      <div aria-live="polite">
        {outcome.status === 'created' ? (
          <section className="panel" data-testid="task-created" data-task={outcome.taskId}>
            <h2>Task {outcome.taskId} is open</h2>
            <p>
              Share this join link with volunteers:{' '}
              <a href={outcome.joinUrl} data-testid="join-link">
                {outcome.joinUrl}
              </a>
            </p>
          </section>
        ) : null}
        {outcome.status === 'refused' ? (
          <section className="panel" role="alert" data-testid="task-refused" data-code={outcome.code} data-where={outcome.where}>
            <h2>
              {outcome.where === 'form'
                ? `The task is not valid yet (${outcome.code}); nothing was sent`
                : `The coordinator refused the task (${outcome.code})`}
            </h2>
            <ul>
              {outcome.problems.map((p, i) => (
                <li key={i} data-testid="task-problem">
                  {p}
                </li>
              ))}
            </ul>
          </section>
        ) : null}
      </div>
    </div>
  );
}
