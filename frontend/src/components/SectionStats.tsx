import type { Stats } from "../types";

export function SectionStats({ stats }: { stats: Stats | null }) {
  return (
    <section className="stats" aria-labelledby="stats-title" data-testid="section-stats">
      <h2 id="stats-title">Availability</h2>
      {stats ? (
        <>
          <p className="stats__total">
            {stats.free} of {stats.total} seats left · {stats.held} held · {stats.reserved}{" "}
            reserved
          </p>
          <ul>
            {stats.sections.map((section) => (
              <li key={section.section_id}>
                {section.free} left in {section.name}
              </li>
            ))}
          </ul>
        </>
      ) : (
        <p>Loading…</p>
      )}
    </section>
  );
}
