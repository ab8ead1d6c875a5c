/**
 * A minimal history-API router: three routes do not need a routing library. Paths are matched
 * exactly; unknown paths render the not-found page, and the coordinator serves index.html for them.
 */
import { useEffect, useState, type AnchorHTMLAttributes, type MouseEvent, type ReactNode } from 'react';

/** The current location's path and query string. */
export interface Location {
  readonly path: string;
  readonly search: string;
}

const listeners = new Set<() => void>();

function current(): Location {
  return { path: window.location.pathname, search: window.location.search };
}

/** Goes to `to` (a path with optional query) without reloading. */
export function navigate(to: string): void {
  window.history.pushState(null, '', to);
  for (const listener of listeners) listener();
}

/** The current location, updated on navigation and back/forward. */
export function useLocation(): Location {
  const [location, setLocation] = useState(current);
  useEffect(() => {
    const update = (): void => setLocation(current());
    listeners.add(update);
    window.addEventListener('popstate', update);
    return () => {
      listeners.delete(update);
      window.removeEventListener('popstate', update);
    };
  }, []);
  return location;
}

/** An anchor that navigates in-app on a plain left click and behaves as a link otherwise. */
export function Link({ to, children, ...rest }: { to: string; children: ReactNode } & AnchorHTMLAttributes<HTMLAnchorElement>): ReactNode {
  const onClick = (event: MouseEvent<HTMLAnchorElement>): void => {
    if (event.button !== 0 || event.metaKey || event.ctrlKey || event.shiftKey || event.altKey) return;
    event.preventDefault();
    navigate(to);
  };
  return (
    <a href={to} onClick={onClick} {...rest}>
      {children}
    </a>
  );
}
