"""Store-side reference consumer: idempotent sink, watermarks, gaps and replay requests."""
