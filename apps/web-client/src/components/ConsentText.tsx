/** The short consent text a volunteer accepts before choosing data. */
import { useId, type ReactNode } from 'react';

/** Consent text with an explicit checkbox; nothing is loaded until it is ticked. */
export function ConsentText({ accepted, onChange }: { accepted: boolean; onChange: (accepted: boolean) => void }): ReactNode {
  const id = useId();
  return (
    <section className="panel" aria-labelledby={`${id}-title`}>
      <h2 id={`${id}-title`}>Before you start</h2>
      <ul className="consent">
        <li>Training runs in this tab. The files you choose are read here and never uploaded.</li>
        <li>
          Each round, the tab sends a small model update (adapter weights and a few figures such as the number of examples and local accuracy) to the
          coordinator.
        </li>
        <li>The coordinator may reject or down-weight updates that look unreliable; your contribution history shows what happened to each.</li>
        <li>You can pause or leave at any time by closing the tab. A pseudonymous id is kept in this browser so a reload resumes.</li>
      </ul>
      <label className="check">
        <input type="checkbox" checked={accepted} onChange={(e) => onChange(e.currentTarget.checked)} data-testid="consent" /> I understand and want to take
        part
      </label>
    </section>
  );
}
