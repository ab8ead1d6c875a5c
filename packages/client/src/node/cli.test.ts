import { describe, expect, it } from 'vitest';
import { createDigitsModelFactory } from '../models.js';
import { headlessOptions, parseCliArgs } from './cli.js';
import { formatFedAfdKinds } from './fedafdClients.js';

describe('parseCliArgs', () => {
  it('reads every flag, the token from the environment first', () => {
    // Act
    const cli = parseCliArgs(
      [
        '--url',
        'http://127.0.0.1:1',
        '--task',
        'demo',
        '--clients',
        '6',
        '--modalities',
        'image,text',
        '--alpha',
        '0.3',
        '--modality-prob',
        'image=0.8,text=0.5',
        '--max-examples',
        '50',
        '--seed',
        '9',
        '--adversarial',
        'sign-flip:0.2',
        '--adversarial',
        'scaling:0.1:5',
        '--processes',
        '--token',
        'cli-token',
      ],
      { CHORUS_JOIN_TOKEN: 'env-token' },
    );
    // Assert
    expect(cli).toMatchObject({
      url: 'http://127.0.0.1:1',
      taskId: 'demo',
      token: 'env-token',
      numClients: 6,
      modalities: ['image', 'text'],
      scheme: 'dirichlet',
      alpha: 0.3,
      modalityProbabilities: { image: 0.8, text: 0.5 },
      maxExamplesPerClient: 50,
      seed: 9,
      processes: true,
    });
    expect(cli.adversarial.map((a) => [a.behaviour.kind, a.fraction])).toEqual([
      ['sign-flip', 0.2],
      ['scaling', 0.1],
    ]);
    expect(parseCliArgs(['--url', 'u', '--task', 't', '--iid', '--modality-kinds', 'image+text=0.5,text=0.5']).modalityKinds).toEqual([
      { modalities: ['image', 'text'], fraction: 0.5 },
      { modalities: ['text'], fraction: 0.5 },
    ]);
    const fedafd = parseCliArgs(['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier:cnn=0.5,image-text-retrieval:cnn+bag-mlp=0.5']);
    expect(fedafd.fedafdKinds).toEqual([
      { kind: 'image-classifier', arch: 'cnn', share: 0.5 },
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 0.5 },
    ]);
    // A task's mix written for the flag reads back as it was (the demo coordinator passes its task's mix this way).
    const mix = [
      { kind: 'image-classifier', arch: 'cnn', share: 0.25 },
      { kind: 'text-classifier', arch: 'bag-mlp', share: 0.25 },
      { kind: 'image-text-retrieval', arch: 'cnn+bag-mlp', share: 1 / 6 },
      { kind: 'audio-text-retrieval', arch: 'pool-mlp+conv1d', share: 1 / 3 },
    ] as const;
    expect(formatFedAfdKinds(mix)).toBe(
      'image-classifier:cnn=0.25,text-classifier:bag-mlp=0.25,image-text-retrieval:cnn+bag-mlp=0.16666666666666666,audio-text-retrieval:pool-mlp+conv1d=0.3333333333333333',
    );
    expect(parseCliArgs(['--url', 'u', '--task', 't', '--fedafd-kinds', formatFedAfdKinds(mix)]).fedafdKinds).toEqual(mix);
    expect(
      headlessOptions(fedafd, 'cpu', createDigitsModelFactory({ loadBase: async () => null, loadEmbeddings: () => Promise.reject(new Error('unused')) }))
        .fedafd,
    ).toEqual({
      kinds: fedafd.fedafdKinds,
    });
    // --fedafd-eval: the held-out range FedAFD clients are scored on reaches the headless options.
    const scored = parseCliArgs(['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier:cnn=1', '--fedafd-eval', 'test:1000:256']);
    expect(scored.fedafdEvaluation).toEqual({ split: 'test', start: 1000, count: 256 });
    expect(
      headlessOptions(scored, 'cpu', createDigitsModelFactory({ loadBase: async () => null, loadEmbeddings: () => Promise.reject(new Error('unused')) })).fedafd
        ?.evaluation,
    ).toEqual({ split: 'test', start: 1000, count: 256 });
  });

  it('refuses bad flags with CLIENT_BAD_CONFIG naming the flag', () => {
    const cases: [string[], RegExp][] = [
      [['--task', 't'], /--url/],
      [['--url', 'u'], /--task/],
      [['--url', 'u', '--task', 't', '--clients', '0'], /--clients/],
      [['--url', 'u', '--task', 't', '--dataset', 'cifar'], /--dataset/],
      [['--url', 'u', '--task', 't', '--modalities', 'video'], /--modalities/],
      [['--url', 'u', '--task', 't', '--alpha', '-1'], /--alpha/],
      [['--url', 'u', '--task', 't', '--adversarial', 'nope:0.1'], /--adversarial/],
      [['--url', 'u', '--task', 't', '--modality-prob', 'image=2'], /--modality-prob/],
      [['--url', 'u', '--task', 't', '--bogus'], /bogus/],
      [['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier=0.5'], /--fedafd-kinds/],
      [['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier:cnn=1', '--modalities', 'image'], /--fedafd-kinds/],
      [['--url', 'u', '--task', 't', '--fedafd-eval', 'test:0:10'], /--fedafd-eval/],
      [['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier:cnn=1', '--fedafd-eval', 'exam:0:10'], /--fedafd-eval/],
      [['--url', 'u', '--task', 't', '--fedafd-kinds', 'image-classifier:cnn=1', '--fedafd-eval', 'test:0'], /--fedafd-eval/],
      // Several nodes: each client needs a process of its own to join its own node.
      [['--url', 'http://a,http://b', '--task', 't'], /--processes/],
    ];
    for (const [argv, message] of cases) {
      expect(() => parseCliArgs(argv), argv.join(' ')).toThrow(
        expect.objectContaining({ code: 'CLIENT_BAD_CONFIG', message: expect.stringMatching(message) as string }) as Error,
      );
    }
  });
});
