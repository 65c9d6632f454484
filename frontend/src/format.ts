// Prices, dates and the hold countdown. The UI is in English, so numbers are formatted the
// English way too (€50.00), whatever the browser's locale.

const LOCALE = "en";

export function priceFormat(currency: string): (amount: string | number) => string {
  let format: Intl.NumberFormat;
  try {
    format = new Intl.NumberFormat(LOCALE, { style: "currency", currency });
  } catch {
    // An unknown currency code: still show the amount.
    format = new Intl.NumberFormat(LOCALE, { minimumFractionDigits: 2 });
  }
  return (amount) => format.format(typeof amount === "number" ? amount : Number(amount));
}

const DATE = new Intl.DateTimeFormat(LOCALE, { dateStyle: "full", timeStyle: "short" });

export function formatDate(iso: string): string {
  const date = new Date(iso);
  return Number.isNaN(date.getTime()) ? iso : DATE.format(date);
}

/** mm:ss of what is left, never negative. */
export function countdownText(remainingMs: number): string {
  const seconds = Math.max(0, Math.ceil(remainingMs / 1000));
  const mm = Math.floor(seconds / 60);
  const ss = seconds % 60;
  return `${String(mm).padStart(2, "0")}:${String(ss).padStart(2, "0")}`;
}
