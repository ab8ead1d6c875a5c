/**
 * The built-in datasets as the browser sees them: artifacts fetched with Range requests from the
 * origin's /data/ (served by the coordinator, `vite dev` and `vite preview`), checksum-verified by
 * the datasets package's readers. Only the records asked for are downloaded.
 */
import { httpSource, loadEmbeddings, openBuiltin, readManifest, type BuiltinDataset, type ByteSource, type Embeddings, type Manifest } from '@chorus/datasets';

/** URL of the data root: `VITE_CHORUS_DATA_URL` at build time, else /data/ on this origin. */
export function dataRootUrl(): string {
  const configured = import.meta.env['VITE_CHORUS_DATA_URL'] as string | undefined;
  return configured && configured.length > 0 ? configured : `${import.meta.env.BASE_URL}data/`;
}

/** A byte source over {@link dataRootUrl} using the page's fetch. */
export function browserDataSource(): ByteSource {
  return httpSource(dataRootUrl(), (url, init) => fetch(url, init));
}

/** What the viewer reads from the built-in data. */
export interface DemoData {
  readonly manifest: Manifest;
  readonly embeddings: Embeddings;
  /** The spoken & written digits' test split (image, caption and spoken digit per sample). */
  readonly digitsTest: BuiltinDataset<'digits'>;
}

/** Fetches the manifest, the word-embedding table and the digits test split's labels. */
export async function loadDemoData(source: ByteSource = browserDataSource()): Promise<DemoData> {
  const manifest = await readManifest(source);
  const [embeddings, digitsTest] = await Promise.all([loadEmbeddings(source, manifest), openBuiltin(source, manifest, 'digits', 'test')]);
  return { manifest, embeddings, digitsTest };
}
