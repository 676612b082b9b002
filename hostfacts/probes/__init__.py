"""One module per probe. Each exposes ``probe(ctx: ProbeContext) -> <Section>``
that never raises: a failure is a section whose ``probe.status`` says
``unknown`` or ``error`` with a one-line ``reason``; ``hostfacts.collect``
adds the time limit and the duration."""
