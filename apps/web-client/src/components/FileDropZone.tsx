/**
 * Where a volunteer hands the tab their files: drag and drop (files or whole folders) or a folder /
 * file picker. Hands the files on as the datasets package's sources; nothing is read here.
 */
import { useEffect, useRef, useState, type DragEvent, type ReactNode } from 'react';
import { sourcesFromDataTransfer, sourcesFromFileList, type SourceFile } from '@chorus/datasets';
import { describeError } from '../lib/errors.js';

/** Drop zone + pickers; `testIdPrefix` tells several apart on one page (`drop-zone`, `folder-input`, `files-input`). */
export function FileDropZone({
  onFiles,
  onError,
  testIdPrefix = '',
}: {
  onFiles: (files: SourceFile[]) => void;
  onError: (message: string) => void;
  testIdPrefix?: string;
}): ReactNode {
  const [dragging, setDragging] = useState(false);
  const folderInput = useRef<HTMLInputElement>(null);

  useEffect(() => {
    if (folderInput.current) folderInput.current.webkitdirectory = true;
  }, []);

  const onDrop = (event: DragEvent<HTMLDivElement>): void => {
    event.preventDefault();
    setDragging(false);
    // The item list is only valid during the event: take the entries before anything awaits.
    const pending = sourcesFromDataTransfer(event.dataTransfer.items);
    void pending.then(onFiles, (err: unknown) => onError(describeError(err)));
  };

  return (
    <div
      className={`drop-zone${dragging ? ' dragging' : ''}`}
      data-testid={`${testIdPrefix}drop-zone`}
      onDragOver={(e) => {
        e.preventDefault();
        e.dataTransfer.dropEffect = 'copy';
        setDragging(true);
      }}
      onDragLeave={() => setDragging(false)}
      onDrop={onDrop}
    >
      <p>Drop files or folders here</p>
      <div className="inline">
        <label className="button">
          Choose a folder…
          <input
            ref={folderInput}
            type="file"
            multiple
            className="visually-hidden"
            data-testid={`${testIdPrefix}folder-input`}
            onChange={(e) => onFiles(sourcesFromFileList(e.currentTarget.files ?? []))}
          />
        </label>
        <label className="button">
          Choose files…
          <input
            type="file"
            multiple
            className="visually-hidden"
            data-testid={`${testIdPrefix}files-input`}
            onChange={(e) => onFiles(sourcesFromFileList(e.currentTarget.files ?? []))}
          />
        </label>
      </div>
    </div>
  );
}
