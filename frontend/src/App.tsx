import { EventPage } from "./pages/EventPage";
import { EventsPage } from "./pages/EventsPage";

// Two pages, chosen once from the path: Django serves this app for both, and links between
// them are plain page loads, so no client-side router is needed.
export function App({ pathname }: { pathname: string }) {
  const event = /^\/events\/(\d+)\/?$/.exec(pathname);
  if (event) return <EventPage eventId={Number(event[1])} />;
  if (pathname === "/" || pathname === "") return <EventsPage />;
  return (
    <main className="page page--narrow">
      <h1>Page not found</h1>
      <a href="/">All events</a>
    </main>
  );
}
