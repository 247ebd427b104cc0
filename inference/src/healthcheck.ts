// The image's HEALTHCHECK: healthy when /health answers 200 (model loaded), within 2 s.
const port = process.env.PORT ?? '8070';
try {
  const res = await fetch(`http://127.0.0.1:${port}/health`, { signal: AbortSignal.timeout(2000) });
  process.exit(res.status === 200 ? 0 : 1);
} catch {
  process.exit(1);
}
