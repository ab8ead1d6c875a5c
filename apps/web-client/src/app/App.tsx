/** The app shell: header navigation and the three pages, each loaded on demand (TF.js only where needed). */
import { Suspense, lazy, type ReactNode } from 'react';
import { Link, useLocation } from './router.js';

const VolunteerPage = lazy(() => import('../pages/VolunteerPage.js'));
const DashboardPage = lazy(() => import('../pages/DashboardPage.js'));
const ExplainPage = lazy(() => import('../pages/ExplainPage.js'));
const NewTaskPage = lazy(() => import('../pages/NewTaskPage.js'));

const NAV = [
  { to: '/join', label: 'Volunteer' },
  { to: '/dashboard', label: 'Dashboard' },
  { to: '/explain', label: 'Explanations' },
];

function Home(): ReactNode {
  return (
    <section aria-labelledby="home-title">
      <h1 id="home-title">Chorus</h1>
      <p className="lead">Federated learning in your browser tab: your images, texts and recordings stay on this device; only small model updates travel.</p>
      <ul className="cards">
        <li>
          <Link to="/join">Volunteer</Link>
          <p>Open the join link you were given to contribute to a task.</p>
        </li>
        <li>
          <Link to="/dashboard">Researcher dashboard</Link>
          <p>
            Watch rounds, accuracy and trust scores, or <Link to="/dashboard/new">create a task</Link> with your own model and classes (admin token required).
          </p>
        </li>
        <li>
          <Link to="/explain">Explanation viewer</Link>
          <p>See, term by term, why the model decides what it decides.</p>
        </li>
      </ul>
    </section>
  );
}

function NotFound({ path }: { path: string }): ReactNode {
  return (
    <section>
      <h1>Page not found</h1>
      <p>
        Nothing lives at <code>{path}</code>. <Link to="/">Go to the start page</Link>.
      </p>
    </section>
  );
}

/** The whole app. */
export function App(): ReactNode {
  const { path, search } = useLocation();
  const page = ((): ReactNode => {
    if (path === '/' || path === '') return <Home />;
    if (path === '/join') return <VolunteerPage search={search} />;
    if (path === '/dashboard') return <DashboardPage />;
    if (path === '/dashboard/new') return <NewTaskPage />;
    if (path === '/explain') return <ExplainPage search={search} />;
    return <NotFound path={path} />;
  })();
  return (
    <>
      <a className="skip-link" href="#main">
        Skip to content
      </a>
      <header className="site-header">
        <Link to="/" className="brand">
          Chorus
        </Link>
        <nav aria-label="Main">
          <ul>
            {NAV.map((item) => (
              <li key={item.to}>
                <Link to={item.to} aria-current={path === item.to ? 'page' : undefined}>
                  {item.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
      </header>
      <main id="main" tabIndex={-1}>
        <Suspense fallback={<p role="status">Loading…</p>}>{page}</Suspense>
      </main>
    </>
  );
}
